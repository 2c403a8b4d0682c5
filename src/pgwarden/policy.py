"""The policy: what the user wants, loaded from TOML and validated with errors that name file, line and key."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from pgwarden.errors import PolicyError

#: PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes; we refuse them instead.
MAX_IDENTIFIER_BYTES = 63

AccessLevel = Literal["readwrite", "readonly"]
#: authoritative: what the policy does not say is revoked; additive: grant and create what is
#: missing, never revoke, drop or move what exists (plan lists that apart, as `withheld`).
Mode = Literal["authoritative", "additive"]
MODES: tuple[Mode, ...] = ("authoritative", "additive")

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min|h)?\s*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


def check_identifier(value: str, what: str = "name") -> str:
    """Refuse names PostgreSQL would truncate or reject, before anything is sent."""
    if not value:
        raise ValueError(f"{what} must not be empty")
    if "\x00" in value:
        raise ValueError(f"{what} must not contain a NUL character")
    size = len(value.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{what} {value!r} is {size} bytes long; PostgreSQL identifiers are at most "
            f"{MAX_IDENTIFIER_BYTES} bytes (longer names would be silently truncated)"
        )
    return value


def _role_name(value: str) -> str:
    check_identifier(value, "role name")
    if value.lower() in ("public", "none") or value.startswith("pg_"):
        raise ValueError(f"role name {value!r} is reserved by PostgreSQL")
    if value.lower() in ("current_user", "session_user", "current_role"):
        raise ValueError(f"role name {value!r} is a reserved keyword")
    return value


def _schema_name(value: str) -> str:
    check_identifier(value, "schema name")
    if value.startswith("pg_") or value == "information_schema":
        raise ValueError(f"schema name {value!r} is reserved by PostgreSQL")
    return value


def _database_name(value: str) -> str:
    check_identifier(value, "database name")
    if value in ("template0", "template1"):
        raise ValueError(f"database {value!r} is a template; pgwarden manages application databases")
    return value


def check_duration(value: str) -> str:
    """A PostgreSQL duration such as '5s', '500ms', '1min' (raises ValueError otherwise)."""
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like '5s', '500ms' or '1min'")
    return value.strip()


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


RoleName = Annotated[str, AfterValidator(_role_name)]
SchemaName = Annotated[str, AfterValidator(_schema_name)]
DatabaseName = Annotated[str, AfterValidator(_database_name)]
Duration = Annotated[str, AfterValidator(check_duration)]
EnvName = Annotated[str, AfterValidator(_env_name)]


def password_env_for(role: str) -> str:
    """The environment variable `init` names for a role's password: PGWARDEN_PASSWORD_<ROLE>."""
    return "PGWARDEN_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", role.upper())


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DatabaseSpec(_Model):
    """The database the policy manages and its managed schemas."""

    name: DatabaseName
    schemas: tuple[SchemaName, ...] = ("public",)

    @model_validator(mode="after")
    def _unique_schemas(self) -> DatabaseSpec:
        if not self.schemas:
            raise ValueError("schemas must list at least one schema")
        if len(set(self.schemas)) != len(self.schemas):
            raise ValueError("schemas lists the same schema twice")
        return self


class OwnerSpec(_Model):
    """The role that owns the database and every object in it; the only one that runs migrations."""

    name: RoleName
    login: bool = True
    createdb: bool = True
    createrole: bool = False
    password_env: EnvName | None = None
    deploy_logins: tuple[RoleName, ...] = ()


class AccessSpec(_Model):
    """An access role: reads and writes rows (readwrite) or only reads (readonly)."""

    name: RoleName
    level: AccessLevel
    login: bool = True
    password_env: EnvName | None = None


class HardeningSpec(_Model):
    """Hardening beyond the seed procedure; each switch is on by default."""

    revoke_public_connect: bool = True
    revoke_public_execute: bool = True


class GuardSpec(_Model):
    """An event trigger that refuses, at DDL time, objects the owner would not own (docs/guard.md)."""

    enabled: bool = False


class IgnoreSpec(_Model):
    """Roles whose privileges pgwarden leaves alone (a monitoring or BI role, say)."""

    roles: tuple[RoleName, ...] = ()


class ApplySpec(_Model):
    """How `apply` behaves against live traffic."""

    lock_timeout: Duration = "5s"


class Policy(_Model):
    """Desired state: one database, its owner, its access roles, hardening switches."""

    version: Literal[1] = 1
    mode: Mode = "authoritative"
    database: DatabaseSpec
    owner: OwnerSpec
    access: tuple[AccessSpec, ...] = Field(default=())
    hardening: HardeningSpec = HardeningSpec()
    guard: GuardSpec = GuardSpec()
    ignore: IgnoreSpec = IgnoreSpec()
    apply: ApplySpec = ApplySpec()

    @model_validator(mode="after")
    def _distinct_roles(self) -> Policy:
        seen: dict[str, str] = {self.owner.name: "owner"}
        for deploy in self.owner.deploy_logins:
            if deploy in seen:
                raise ValueError(f"role {deploy!r} is both {seen[deploy]} and a deploy login")
            seen[deploy] = "deploy login"
        for access in self.access:
            if access.name in seen:
                raise ValueError(f"role {access.name!r} is both {seen[access.name]} and an access role")
            seen[access.name] = "access role"
        for ignored in self.ignore.roles:
            if ignored in seen:
                raise ValueError(f"role {ignored!r} is {seen[ignored]} and cannot be ignored")
        return self

    @property
    def role_names(self) -> tuple[str, ...]:
        """Every role the policy manages: owner, deploy logins, access roles."""
        return (self.owner.name, *self.owner.deploy_logins, *(a.name for a in self.access))

    def login_roles(self) -> list[tuple[str, str | None]]:
        """(role, password environment variable) for every LOGIN role of the policy."""
        out: list[tuple[str, str | None]] = []
        if self.owner.login:
            out.append((self.owner.name, self.owner.password_env))
        out.extend((d, password_env_for(d)) for d in self.owner.deploy_logins)
        out.extend((a.name, a.password_env) for a in self.access if a.login)
        return out

    def to_toml(self) -> str:
        return render_toml(self)


def build_policy(
    *,
    database: str,
    owner: str,
    app: Sequence[str] = (),
    readonly: Sequence[str] = (),
    schemas: Sequence[str] = (),
) -> Policy:
    """Build a policy from `init`'s arguments (validated like a file)."""
    data: dict[str, Any] = {
        "database": {"name": database, "schemas": list(schemas) or ["public"]},
        "owner": {"name": owner, "password_env": password_env_for(owner)},
        "access": [
            {"name": name, "level": level, "password_env": password_env_for(name)}
            for level, names in (("readwrite", app), ("readonly", readonly))
            for name in names
        ],
    }
    try:
        return Policy.model_validate(_tuples(data))
    except ValidationError as exc:
        raise PolicyError(_format_errors(exc, None, None)) from None


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file; every problem becomes a PolicyError naming file:line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(
            f"policy file {path} not found",
            hint="create one with `pgwarden init --database DB --owner ROLE --app ROLE`, or pass -c FILE",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 has no exc.lineno: the position is only in the text, "... (at line 7, column 7)"
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", str(exc))
        at = _TOML_AT.search(msg)
        if at:
            line = line or int(at.group(1))
            msg = msg[: at.start()].rstrip()
        where = f"{source}:{line}" if line else source
        raise PolicyError(f"{where}: invalid TOML: {msg}") from None
    try:
        return Policy.model_validate(_tuples(data))
    except ValidationError as exc:
        raise PolicyError(_format_errors(exc, text, source)) from None


def _tuples(value: Any) -> Any:
    """TOML arrays arrive as lists; the frozen model stores tuples (strict mode wants exact types)."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _format_errors(exc: ValidationError, text: str | None, source: str | None) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        key = _dotted(loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"].endswith("_type") or err["type"] == "literal_error":
            msg = f"{msg} (got {json.dumps(err.get('input'), default=str)})"
        where = source or "policy"
        if text is not None:
            line = locate_key(text, loc)
            if line:
                where = f"{where}:{line}"
        lines.append(f"{where}: {key}: {msg}" if key else f"{where}: {msg}")
    return "; ".join(lines)


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


def locate_key(text: str, loc: Sequence[int | str]) -> int | None:
    """Best-effort line number (1-based) of a key path such as ('access', 1, 'level') in TOML text."""
    parts = [p for p in loc if isinstance(p, str)]
    index = next((p for p in loc if isinstance(p, int)), None)
    if not parts:
        return None
    section: str | None = None
    counts: dict[str, int] = {}
    table_line: int | None = None
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        header = _HEADER.match(raw)
        if header:
            section = header.group(2).strip()
            if header.group(1) == "[[":
                counts[section] = counts.get(section, -1) + 1
            continue
        key = _KEYLINE.match(raw)
        if not key:
            continue
        name = key.group(1).strip("\"'")
        if section is None:
            if len(parts) >= 1 and name == parts[0]:
                return number
            continue
        if section == parts[0] and (index is None or counts.get(section, 0) == index):
            if table_line is None:
                table_line = number
            if len(parts) > 1 and name == parts[1]:
                return number
    if table_line is not None:
        return table_line
    for number, raw in enumerate(lines, start=1):
        header = _HEADER.match(raw)
        if header and header.group(2).strip() == parts[0]:
            return number
    return None


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def render_toml(policy: Policy) -> str:
    """Render a policy as a commented TOML file that loads back to the same policy."""
    o = policy.owner
    out = [
        "# pgwarden policy: one owner runs migrations and owns everything;",
        "# access roles read and write rows (readwrite) or only read (readonly).",
        "# Reference: docs/policy.md",
        "version = 1",
        "# authoritative: what this file does not say is revoked. additive: grant and create what is",
        "# missing, never revoke, drop or move what exists (for adopting pgwarden step by step).",
        f"mode = {_toml_str(policy.mode)}",
        "",
        "[database]",
        f"name = {_toml_str(policy.database.name)}",
        "# Schemas whose objects pgwarden manages (ownership, grants, default privileges).",
        f"schemas = {_toml_list(policy.database.schemas)}",
        "",
        "[owner]",
        "# Owns the database and every object in it; the only role that runs migrations.",
        f"name = {_toml_str(o.name)}",
        f"login = {str(o.login).lower()}",
        f"createdb = {str(o.createdb).lower()}",
        "# CREATEROLE is off: on PostgreSQL 14-15 it is nearly superuser (docs/policy.md).",
        f"createrole = {str(o.createrole).lower()}",
    ]
    if o.password_env:
        out.append("# The password is read from this environment variable (never stored here).")
        out.append(f"password_env = {_toml_str(o.password_env)}")
    if o.deploy_logins:
        out.append(f"deploy_logins = {_toml_list(o.deploy_logins)}")
    out += _access_toml(policy)
    return "\n".join(out + _switches_toml(policy))


def _access_toml(policy: Policy) -> list[str]:
    out: list[str] = []
    for a in policy.access:
        out += [
            "",
            "[[access]]",
            f"name = {_toml_str(a.name)}",
            f"level = {_toml_str(a.level)}",
            f"login = {str(a.login).lower()}",
        ]
        if a.password_env:
            out.append(f"password_env = {_toml_str(a.password_env)}")
    return out


def _switches_toml(policy: Policy) -> list[str]:
    """[hardening], [guard], [ignore] and [apply], each key with a comment saying what it does."""
    h = policy.hardening
    return [
        "",
        "[hardening]",
        "# REVOKE CONNECT, TEMPORARY ON DATABASE ... FROM PUBLIC; CONNECT for the policy's roles only.",
        f"revoke_public_connect = {str(h.revoke_public_connect).lower()}",
        "# REVOKE EXECUTE on functions in managed schemas FROM PUBLIC; EXECUTE for access roles.",
        f"revoke_public_execute = {str(h.revoke_public_execute).lower()}",
        "",
        "[guard]",
        "# Refuse, when the DDL runs, any object in the managed schemas that the owner would not own",
        "# (a migration run by the wrong login). An event trigger: needs a superuser admin. docs/guard.md",
        f"enabled = {str(policy.guard.enabled).lower()}",
        "",
        "[ignore]",
        "# Roles whose privileges pgwarden leaves alone (monitoring, BI, ...).",
        f"roles = {_toml_list(policy.ignore.roles)}",
        "",
        "[apply]",
        "# apply never waits longer than this for a lock held by live traffic.",
        f"lock_timeout = {_toml_str(policy.apply.lock_timeout)}",
        "",
    ]
