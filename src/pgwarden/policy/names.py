"""Names and values a policy may hold, checked before anything is sent to the server."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator

from pgwarden.kinds import ProfileField

#: PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes; we refuse them instead.
MAX_IDENTIFIER_BYTES = 63

AccessLevel = Literal["readwrite", "readonly"]
#: authoritative: what the policy does not say is revoked; additive: grant and create what is
#: missing, never revoke, drop or move what exists (plan lists that apart, as `withheld`).
Mode = Literal["authoritative", "additive"]
MODES: tuple[Mode, ...] = ("authoritative", "additive")

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min|h)?\s*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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

#: A grant's role may be PUBLIC, written so: what every role holds through it (init --from-database).
PUBLIC_GRANTEE = "PUBLIC"


def _grant_role(value: str) -> str:
    return value if value == PUBLIC_GRANTEE else _role_name(value)


GrantRole = Annotated[str, AfterValidator(_grant_role)]
SchemaName = Annotated[str, AfterValidator(_schema_name)]
DatabaseName = Annotated[str, AfterValidator(_database_name)]
Duration = Annotated[str, AfterValidator(check_duration)]
EnvName = Annotated[str, AfterValidator(_env_name)]


def password_env_for(role: str) -> str:
    """The environment variable `init` names for a role's password: PGWARDEN_PASSWORD_<ROLE>."""
    return "PGWARDEN_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", role.upper())


_SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _qualified(value: str) -> str:
    """A relation named `schema.table` (both parts as they are stored: no quoting)."""
    schema, dot, table = value.partition(".")
    if not dot or not schema or not table:
        raise ValueError(f"{value!r} must name a table as schema.table")
    _schema_name(schema)
    check_identifier(table, "table name")
    return value


def split_qualified(value: str) -> tuple[str, str]:
    schema, _, table = value.partition(".")
    return schema, table


def _routine(value: str) -> str:
    """A routine named `schema.name(argument types)`, the arguments as PostgreSQL prints them
    (pg_get_function_identity_arguments: `app.total(integer, text)`, `app.refresh()`)."""
    schema, dot, rest = value.partition(".")
    name, paren, args = rest.partition("(")
    if not dot or not schema or not name or not paren or not args.endswith(")"):
        raise ValueError(f"{value!r} must name a routine as schema.name(argument types), such as app.total(integer)")
    _schema_name(schema)
    check_identifier(name, "routine name")
    return value


def same_routine(listed: str, name: str) -> bool:
    """Whether `listed` (schema.name(identity arguments), argument names included) is `name`,
    which may give the argument types alone: `app.f(a integer)` is `app.f(integer)`."""
    if listed == name:
        return True
    head, _, args = listed.partition("(")
    other_head, _, other_args = name.partition("(")
    if head != other_head:
        return False
    mine = [a.strip() for a in args.rstrip(")").split(",") if a.strip()]
    theirs = [a.strip() for a in other_args.rstrip(")").split(",") if a.strip()]
    return len(mine) == len(theirs) and all(m == t or m.endswith(" " + t) for m, t in zip(mine, theirs, strict=True))


def _column_name(value: str) -> str:
    return check_identifier(value, "column name")


def _setting_name(value: str) -> str:
    if not _SETTING.match(value):
        raise ValueError(f"{value!r} is not a setting name (such as statement_timeout)")
    if value.lower() in ("role", "session_authorization"):
        raise ValueError(f"setting {value!r} is pgwarden's own (deploy logins) or cannot be stored on a role")
    return value


def _valid_until(value: str) -> str:
    """A date or timestamp (ISO 8601), or 'infinity'."""
    if value == "infinity":
        return value
    try:
        datetime.fromisoformat(value) if ("T" in value or " " in value) else date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date such as '2027-01-01' (or 'infinity')") from None
    return value


QualifiedName = Annotated[str, AfterValidator(_qualified)]
ColumnName = Annotated[str, AfterValidator(_column_name)]
RoutineName = Annotated[str, AfterValidator(_routine)]
#: The kinds of objects default privileges are set for (a grant's `defaults`).
DefaultKind = ProfileField
#: What a grant may give on the database (CREATE is the owner's).
DatabasePrivilege = Literal["CONNECT", "TEMPORARY"]
#: What a grant's `grant_option` may name: the privileges grants give (objects, schema USAGE, the database)
GrantablePrivilege = Literal[
    "SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN", "USAGE", "EXECUTE",
    "CONNECT", "TEMPORARY",
]  # fmt: skip
SettingName = Annotated[str, AfterValidator(_setting_name)]
ValidUntil = Annotated[str, AfterValidator(_valid_until)]


class LocatedError(ValueError):
    """A validation problem at a key below the one pydantic reports (`loc` is relative to it)."""

    def __init__(self, message: str, *loc: int | str) -> None:
        super().__init__(message)
        self.loc = loc
