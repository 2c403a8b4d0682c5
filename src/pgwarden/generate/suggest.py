"""A smaller policy than the exact one (init --from-database --suggest) and what it would change,
as a diff of effective privileges: each role's privilege on each object, widened (+) or narrowed (-)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from pgwarden.generate.assemble import Generated
from pgwarden.generate.catalog import LiveObject
from pgwarden.generate.fit import FITTED_KINDS, TYPE_PROFILE, TYPE_PROFILE_SPEC, nearest_builtin
from pgwarden.kinds import ordered
from pgwarden.policy import Policy
from pgwarden.scopes import COLUMN_PRIVILEGES, Scopes


def smaller(gen: Generated) -> Generated:
    """One built-in profile per role and schema: custom profiles become the nearest built-in one,
    grants on listed tables and routines become grants on their schemas (where the role has no
    schema grant there) and `defaults` are dropped (every kind). What the exact file excepts stays
    excepted (tables, routines, columns), and grants on listed columns stay on those columns:
    an exception is never widened."""
    data = copy.deepcopy(gen.data)
    custom = data.get("profiles", {})

    def builtin(profile: str) -> str:
        spec = custom.get(profile)
        if spec is None:
            return profile
        return nearest_builtin({k: frozenset(spec.get(k, ())) for k in FITTED_KINDS}).name

    typed = False
    for db in data["databases"]:
        # the owner's defaults on types say nothing of objects: kept as they are, never broadened
        typed_grants = [g for g in db["grants"] if g["profile"] == TYPE_PROFILE]
        typed = typed or bool(typed_grants)
        exact = db["grants"]
        db["grants"] = [g for g in exact if g["profile"] != TYPE_PROFILE]
        chosen = _schema_grants(db, builtin)
        kept = typed_grants + _listed(db, chosen, builtin)
        _columns_stay_out(db, chosen)
        db["grants"] = _keep_usage_and_database(exact, _as_grants(db, chosen) + kept)
    data["profiles"] = {TYPE_PROFILE: {k: sorted(v) for k, v in TYPE_PROFILE_SPEC.items()}} if typed else {}
    header = [
        "Suggested by `pgwarden init --from-database --suggest`: fewer, broader grants than the",
        "database has; `pgwarden plan` shows what applying it would grant and revoke.",
    ]
    comments = {k: v for k, v in gen.comments.items() if k == "hardening" or not k.startswith(("grant.", "profile."))}
    return Generated(data, comments, header + gen.header, gen.hazards)


#: role -> schema -> the grant suggested there
Chosen = dict[str, dict[str, dict[str, Any]]]


def _schema_grants(db: dict[str, Any], builtin: Callable[[str], str]) -> Chosen:
    """The exact file's schema grants, with a built-in profile; what they except stays excepted."""
    chosen: Chosen = {}
    for g in db["grants"]:  # schema grants first: they say what most objects hold
        for schema in g.get("schemas", ()):
            grant = chosen.setdefault(g["role"], {}).setdefault(schema, {"profile": builtin(g["profile"])})
            _options(grant, g)
            for key in ("except_tables", "except_routines"):
                names = [n for n in g.get(key, ()) if n.partition(".")[0] == schema]
                grant.setdefault(key, []).extend(names)
            for table, cols in g.get("except_columns", {}).items():
                if table.partition(".")[0] == schema:
                    grant.setdefault("except_columns", {})[table] = cols
    return chosen


def _listed(db: dict[str, Any], chosen: Chosen, builtin: Callable[[str], str]) -> list[dict[str, Any]]:
    """Listed tables and routines become their schema's grant (in `chosen`); the grants kept as they
    are (listed columns, and grants on no object) are returned."""
    kept: list[dict[str, Any]] = []
    for g in db["grants"]:
        for name in (*g.get("tables", ()), *g.get("routines", ())):
            grant = chosen.setdefault(g["role"], {}).setdefault(
                name.partition(".")[0], {"profile": builtin(g["profile"])}
            )
            _options(grant, g)
        if g.get("columns"):
            kept.append({"role": g["role"], "profile": builtin(g["profile"]), "columns": g["columns"]})
            _options(kept[-1], g)
        if not g.get("schemas") and not g.get("tables") and not g.get("routines") and not g.get("columns"):
            kept.append({"role": g["role"], "profile": g["profile"]})
    return kept


def _columns_stay_out(db: dict[str, Any], chosen: Chosen) -> None:
    """A table the role holds some columns of: its other columns stay out of the schema grant."""
    for g in db["grants"]:
        for table in g.get("columns", {}):
            target = chosen.get(g["role"], {}).get(table.partition(".")[0])
            if target is not None:
                target.setdefault("except_tables", []).append(table)


def _as_grants(db: dict[str, Any], chosen: Chosen) -> list[dict[str, Any]]:
    listed = {(g["role"], n) for g in db["grants"] for n in (*g.get("tables", ()), *g.get("routines", ()))}
    for role, schemas in chosen.items():  # a listed object takes its schema's profile, not nothing
        for grant in schemas.values():
            for key in ("except_tables", "except_routines"):
                grant[key] = [n for n in grant.get(key, ()) if (role, n) not in listed]
    grants: list[dict[str, Any]] = []
    for role, schemas in chosen.items():
        for schema in db["schemas"]:
            if schema in schemas:
                extra = {k: list(dict.fromkeys(v)) if isinstance(v, list) else v
                         for k, v in schemas[schema].items() if k != "profile" and v}  # fmt: skip
                grants.append({"role": role, "profile": schemas[schema]["profile"], "schemas": [schema], **extra})
    return grants


def _options(grant: dict[str, Any], exact: dict[str, Any]) -> None:
    """The exact grant's grant options, on the grant that takes its place (kept where held, never granted)."""
    if exact.get("grant_option"):
        grant["grant_option"] = list(ordered({*grant.get("grant_option", ()), *exact["grant_option"]}))


def _keep_usage_and_database(exact: list[dict[str, Any]], grants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """USAGE only where the exact grants give it, and each role's own database privileges as they
    were: the suggestion broadens grants on objects, nothing else."""
    usage: dict[str, set[str]] = {}
    database: dict[str, set[str]] = {}
    for g in exact:
        reached = {*g.get("schemas", ()), *(n.partition(".")[0] for k in ("tables", "routines", "columns")
                                            for n in g.get(k, ()))}  # fmt: skip
        given = g.get("usage", True)
        mine = usage.setdefault(g["role"], set())
        mine |= reached if given is True else set(given or ())
        if g.get("database") is not None:
            database.setdefault(g["role"], set()).update(g["database"])
    seen: set[str] = set()
    for g in grants:
        reached = {*g.get("schemas", ()), *(n.partition(".")[0] for n in g.get("columns", ()))}
        held = usage.get(g["role"], set())
        if reached and not reached <= held:
            g["usage"] = sorted(reached & held) or False
        if g["role"] in database and g["role"] not in seen:
            g["database"] = sorted(database[g["role"]])
        seen.add(g["role"])
    return grants


def effective(scopes: Scopes, role: str, obj: LiveObject) -> set[tuple[str, str | None]]:
    """(privilege, column or None) that `role` holds on `obj` under a policy; on a table whose
    columns carry grants, column privileges are counted per column so both policies compare."""
    if obj.kind == "routine":
        privileges = scopes.objects(role, "routine", obj.schema, f"{obj.name}({obj.args or ''})")
    else:
        privileges = scopes.objects(role, obj.kind, obj.schema, obj.name, obj.table)
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
    for role in roles:  # USAGE on the schemas and the role's own database privileges
        places = [(f"schema {s}", before.schema(role, s), after.schema(role, s)) for s in exact.database.schemas]
        places.append((f"database {exact.database.name}", before.database(role), after.database(role)))
        for where, old_privs, new_privs in places:
            lines += [f"+ {role} {p} on {where}" for p in sorted(new_privs - old_privs)]
            lines += [f"- {role} {p} on {where}" for p in sorted(old_privs - new_privs)]
    return lines
