"""A smaller policy than the exact one (init --from-database --suggest) and what it would change,
as a diff of effective privileges: each role's privilege on each object, widened (+) or narrowed (-)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pgwarden.generate.assemble import Generated
from pgwarden.generate.catalog import LiveObject
from pgwarden.generate.fit import FITTED_KINDS, nearest_builtin
from pgwarden.policy import Policy
from pgwarden.scopes import COLUMN_PRIVILEGES, Scopes


def smaller(gen: Generated) -> Generated:
    """One built-in profile per role and schema, on whole schemas: custom profiles become the
    nearest built-in one, grants on listed tables become grants on their schemas (where the role
    has no schema grant there), and exceptions are dropped."""
    data = copy.deepcopy(gen.data)
    custom = data.get("profiles", {})
    builtin_of = {
        name: nearest_builtin({k: frozenset(spec.get(k, ())) for k in FITTED_KINDS}).name
        for name, spec in custom.items()
    }
    for db in data["databases"]:
        chosen: dict[str, dict[str, str]] = {}  # role -> schema -> profile
        for g in db["grants"]:  # schema grants first: they say what most objects hold
            for schema in g.get("schemas", ()):
                chosen.setdefault(g["role"], {})[schema] = builtin_of.get(g["profile"], g["profile"])
        for g in db["grants"]:
            for table in g.get("tables", ()):
                schema = table.partition(".")[0]
                chosen.setdefault(g["role"], {}).setdefault(schema, builtin_of.get(g["profile"], g["profile"]))
        grants: list[dict[str, Any]] = []
        for role, schemas in chosen.items():
            by_profile: dict[str, list[str]] = {}
            for schema in db["schemas"]:
                if schema in schemas:
                    by_profile.setdefault(schemas[schema], []).append(schema)
            grants += [{"role": role, "profile": p, "schemas": s} for p, s in by_profile.items()]
        db["grants"] = grants
    data["profiles"] = {}
    header = [
        "Suggested by `pgwarden init --from-database --suggest`: fewer, broader grants than the",
        "database has; `pgwarden plan` shows what applying it would grant and revoke.",
    ]
    comments = {k: v for k, v in gen.comments.items() if k == "hardening" or not k.startswith(("grant.", "profile."))}
    return Generated(data, comments, header + gen.header, gen.hazards)


def effective(scopes: Scopes, role: str, obj: LiveObject) -> set[tuple[str, str | None]]:
    """(privilege, column or None) that `role` holds on `obj` under a policy; on a table whose
    columns carry grants, column privileges are counted per column so both policies compare."""
    if obj.kind == "routine":
        privileges = scopes.objects(role, "routine", obj.schema)
    else:
        privileges = scopes.objects(role, obj.kind, obj.schema, obj.name)
    if obj.kind != "table" or not obj.columns:
        return {(p, None) for p in privileges}
    columns = [name for name, _ in obj.columns]
    out: set[tuple[str, str | None]] = {(p, None) for p in privileges - COLUMN_PRIVILEGES}
    out |= {(p, c) for p in privileges & COLUMN_PRIVILEGES for c in columns}
    for c in columns:
        out |= {(p, c) for p in scopes.on_column(role, obj.schema, obj.name, c)}
    return out


def privilege_diff(exact: Policy, suggested: Policy, objects: Iterable[LiveObject], routines: bool) -> list[str]:
    """`+ role PRIVILEGE on kind name` for what `suggested` gives beyond `exact`, `-` for less."""
    before, after = Scopes.of(exact), Scopes.of(suggested)
    roles = list(dict.fromkeys([*before.holders, *after.holders]))
    lines: list[str] = []
    for obj in objects:
        if obj.extension or (obj.kind == "routine" and not routines):
            continue
        where = f"{obj.qualified}({obj.args or ''})" if obj.kind == "routine" else obj.qualified
        for role in roles:
            old, new = effective(before, role, obj), effective(after, role, obj)
            for sign, changed in (("+", new - old), ("-", old - new)):
                for privilege, column in sorted(changed, key=lambda pc: (pc[1] or "", pc[0])):
                    target = f"column {where}.{column}" if column else f"{obj.kind} {where}"
                    lines.append(f"{sign} {role} {privilege} on {target}")
    return lines
