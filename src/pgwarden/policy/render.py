"""Policies as TOML text: commented files that load back to the same policy."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pgwarden.kinds import PROFILE_FIELDS

if TYPE_CHECKING:  # annotations only: policy.model imports this module for Policy.to_toml
    from pgwarden.policy.model import AccessSpec, MembershipSpec, MemberSpec, OwnerSpec, Policy
    from pgwarden.policy.refresh import RefreshSpec


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def render_toml(policy: Policy) -> str:
    """Render a policy as a commented TOML file that loads back to the same policy."""
    if policy.version == 2:
        return render_toml_v2(policy)
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
        *_refresh_toml(policy.database.refresh),
        "",
    ]
    out += _owner_toml(o, "database")
    out += _access_toml(policy)
    return "\n".join(out + _labels_toml(policy) + _switches_toml(policy))


def _refresh_toml(refresh: tuple[RefreshSpec, ...]) -> list[str]:
    """Materialized views roles may refresh (docs/policy.md#materialized-views-a-role-refreshes)."""
    if not refresh:
        return []
    entries = ", ".join(_toml_value(r.model_dump()) for r in refresh)
    return [
        "# Materialized views a role may refresh (MAINTAIN on 17+, a refresh routine before).",
        f"refresh = [{entries}]",
    ]


def _labels_toml(policy: Policy) -> list[str]:
    if not policy.labels:
        return []
    out = ["", "# Sensitive columns (schema.table.column, * matches any name): docs/policy.md", "[labels]"]
    return out + [f"{_toml_key(name)} = {_toml_list(patterns)}" for name, patterns in policy.labels.items()]


def _owner_toml(o: OwnerSpec, databases: str) -> list[str]:
    """The [owner] table; `databases` is the word for what it owns ("database" in version 1)."""
    them = "it" if databases == "database" else "them"
    out = [
        "[owner]",
        f"# Owns the {databases} and every object in {them}; the only role that runs migrations.",
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
    return out


def _access_toml(policy: Policy) -> list[str]:
    out: list[str] = []
    for a in policy.access:
        out += [
            "",
            "[[access]]",
            f"name = {_toml_str(a.name)}",
            f"level = {_toml_str(a.level or 'readonly')}",
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
        *(
            []
            if h.revoke_public_create
            else [
                "# PUBLIC keeps CREATE on schema public, which the policy does not manage (check reports it).",
                "revoke_public_create = false",
            ]
        ),
        *(
            []
            if h.protect_bookkeeping
            else [
                "# Migration bookkeeping tables are plain tables: profiles may write them.",
                "protect_bookkeeping = false",
            ]
        ),
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
    ] + _time_bound_toml(policy)


def _time_bound_toml(policy: Policy) -> list[str]:
    """[break_glass] and [[temporary]], when the policy has them (docs/change-control.md)."""
    out: list[str] = []
    if policy.break_glass.roles:
        out += ["[break_glass]", "# Emergency roles: NOLOGIN but for `pgwarden break-glass open`."]
        out += [f"roles = {_toml_list(policy.break_glass.roles)}", ""]
    for t in policy.temporary:
        out += ["[[temporary]]", f"role = {_toml_str(t.role)}", f"group = {_toml_str(t.group)}"]
        out += [f"until = {t.until.isoformat()}", f"reason = {_toml_str(t.reason)}"]
        out += [f"inherit = {str(t.inherit).lower()}", f"set = {str(t.set).lower()}", ""]
    return out


# --- version 2 ------------------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_str(str(value))


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) and key.isascii() else _toml_str(key)


def _attributes_toml(spec: object) -> list[str]:
    out = []
    for key in ("connection_limit", "valid_until", "comment", "settings", "database_settings"):
        value = getattr(spec, key)
        if value is not None:
            out.append(f"{key} = {_toml_value(value)}")
    return out


def render_toml_v2(policy: Policy, comments: dict[str, list[str]] | None = None) -> str:
    """A version 2 file for `policy` and every database it lists (`policy.databases`).
    `comments` maps a role, `database.NAME`, `grant.DB.ROLE.PROFILE` or `profile.NAME` to comment
    lines written above it, and `hardening` to lines written under `[hardening]`."""
    notes = comments or {}
    o = policy.owner
    out = [
        "# pgwarden policy: one owner runs migrations and owns everything; the other roles get",
        "# profiles (readwrite, readonly, append or your own) on schemas and tables.",
        "# Reference: docs/policy.md",
        "version = 2",
        "# authoritative: what this file does not say is revoked. additive: grant and create what is",
        "# missing, never revoke, drop or move what exists (for adopting pgwarden step by step).",
        f"mode = {_toml_str(policy.mode)}",
        "",
    ]
    out += _owner_toml(o, "databases")
    out += _attributes_toml(o)
    out += _roles_toml(policy, notes)
    for name, spec in policy.profiles.items():
        out += ["", *(f"# {line}" for line in notes.get(f"profile.{name}", [])), f"[profiles.{_toml_key(name)}]"]
        out += [f"{k} = {_toml_list(getattr(spec, k))}" for k in PROFILE_FIELDS if getattr(spec, k)]
    out += _labels_toml(policy)
    for db in policy.databases or (policy.database,):
        out += ["", *(f"# {line}" for line in notes.get(f"database.{db.name}", [])), "[[databases]]"]
        out += [f"name = {_toml_str(db.name)}", f"schemas = {_toml_list(db.schemas)}"]
        if db.expected:  # names a migration will create (docs/policy.md#names-a-migration-will-create)
            out.append(f"expected = {_toml_list(db.expected)}")
        out += _refresh_toml(db.refresh)
        out.append("grants = [")
        said: set[str] = set()  # a role's grants of one profile share their comment: written once
        for grant in db.grants:
            key = f"grant.{db.name}.{grant.role}.{grant.profile}"
            out += [f"  # {line}" for line in (notes.get(key, []) if key not in said else [])]
            said.add(key)
            fields = grant.model_dump(exclude_defaults=True)
            out.append("  " + _toml_value(fields) + ",")
        out.append("]")
    if policy.retired:
        out += ["", "# Roles apply drops, after reassigning what they own to the owner in every database."]
        out += [
            "retired = [" + ", ".join(_toml_value(r.model_dump(exclude_defaults=True)) for r in policy.retired) + "]"
        ]
    switches = _switches_toml(policy) + _systems_toml(policy)
    if notes.get("hardening"):  # why a switch is off (init --from-database)
        at = switches.index("[hardening]") + 1
        switches[at:at] = [f"# {line}" for line in notes["hardening"]]
    return "\n".join(out + switches)


def _membership(m: MembershipSpec) -> dict[str, object]:
    out = m.model_dump()
    if not m.admin:
        out.pop("admin")  # written only where the database has it
    return out


def _roles_toml(policy: Policy, notes: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    specs: list[AccessSpec | MemberSpec] = [*policy.access, *policy.members]
    for spec in specs:
        out += ["", *(f"# {line}" for line in notes.get(spec.name, [])), "[[roles]]", f"name = {_toml_str(spec.name)}"]
        out.append(f"login = {str(spec.login).lower()}")
        if spec.password_env:
            out.append(f"password_env = {_toml_str(spec.password_env)}")
        for key in ("member_of", "also_member_of"):
            members = getattr(spec, key, ())
            if members:
                plain = all(m.inherit and m.set and not m.admin for m in members)
                value = [m.role for m in members] if plain else [_membership(m) for m in members]
                out.append(f"{key} = {_toml_value(value)}")
        out += _attributes_toml(spec)
    return out


def _systems_toml(policy: Policy) -> list[str]:
    """[[leased]] and [pgbouncer], when the policy has them (docs/leased-logins.md, docs/pgbouncer.md)."""
    out: list[str] = []
    for lease in policy.leased:
        out += ["", "[[leased]]", *(f"{k} = {_toml_value(v)}" for k, v in lease.model_dump(exclude_none=True).items())]
    if policy.pgbouncer is not None:
        out += ["", "[pgbouncer]"]
        out += [f"{k} = {_toml_value(v)}" for k, v in policy.pgbouncer.model_dump().items()]
    return out
