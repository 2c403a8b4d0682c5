"""Hazard checks about settings: a schema on a policy role's search_path that another role can create in."""

from __future__ import annotations

import re
from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.outside import repairable
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.snapshot import Snapshot

_ITEM = re.compile(r'\s*("(?:[^"]|"")*"|[^,]+?)\s*(?:,|$)')


def parse_search_path(value: str, role: str) -> list[str]:
    """The schema names of a search_path value, `$user` replaced by `role` (as the server reads it)."""
    names = []
    for m in _ITEM.finditer(value.strip()):
        item = m.group(1)
        if not item:
            continue
        name = item[1:-1].replace('""', '"') if item.startswith('"') else item.lower()
        names.append(role if name == "$user" else name)
    return names


def stored_path(snap: Snapshot, role_oid: int) -> tuple[str, str] | None:
    """(value, where it comes from) of the search_path a role's sessions start with in this database,
    when a stored setting gives one, in PostgreSQL's order: role in database, role, database, then
    every role (ALTER ROLE ALL SET)."""
    if snap.database is None:
        return None
    db = snap.database.oid
    levels = ((role_oid, db, "role in database"), (role_oid, 0, "role"), (0, db, "database"), (0, 0, "every role"))
    for role, database, where in levels:
        for s in snap.role_settings:
            if s.role == role and s.database == database:
                for setting in s.settings:
                    key, _, value = setting.partition("=")
                    if key.strip().lower() == "search_path":
                        return value, f"{where} setting"
    return None


@reports(
    Rule(
        "settings.writable-search-path",
        "high",
        "A schema on the owner's or an access role's search_path that another role can create in",
        "Unqualified names resolve through the search_path (database and role settings, `$user`, "
        'the server\'s default "$user", public): a role that can create in one of those schemas can '
        "put a function or table there that a migration or the application then uses by mistake, "
        "and runs its code with their rights (CVE-2018-1058).",
        "REVOKE CREATE ON SCHEMA ... FROM the other roles, or take the schema off the search_path "
        "(ALTER ROLE ... IN DATABASE ... SET search_path).",
    ),
)
def check_search_path(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """settings.writable-search-path: every schema on the search_path of the owner, a deploy login or an
    access role, but the managed ones (create.schema and the plan cover those), in which another role
    can create objects: its objects then resolve the role's unqualified names. One finding per schema."""
    if not hz.schema_create or snap.database is None:
        return
    schemas = {r.name: r for r in hz.schema_create}
    db_owner = snap.database.owner
    default = str(hz.schema_create[0].default_path or "")
    deploy = set(policy.owner.deploy_logins)
    access = set(policy.row_roles)
    # CREATE the plan revokes (an access role's direct grant) is drift, reported once, by the plan
    revoked = {(g.oid, g.grantee) for g in snap.outside if g.kind == "schema" and repairable(snap, access, g)}
    victims: dict[str, list[tuple[str, str, str]]] = {}  # schema -> (role, where its path comes from, path)
    creators_of: dict[str, set[int]] = {}
    # a deploy login's sessions act as the owner ($user is the owner) with the login's own settings
    sessions = [(policy.owner.name, policy.owner.name), *((n, n) for n in policy.row_roles)]
    sessions += [(d, policy.owner.name) for d in policy.owner.deploy_logins]
    for name, user in sessions:
        role = snap.role_by_name.get(name)
        if role is None or role.superuser:
            continue
        value, where = stored_path(snap, role.oid) or (default, "server default")
        trusted = {snap.role_by_name[n].oid for n in {name, policy.owner.name, *deploy} if n in snap.role_by_name}
        for schema in parse_search_path(value, user):
            row = schemas.get(schema)
            if row is None or schema in policy.database.schemas:
                continue
            found = {int(g) for g in row.grantees} | {int(c) for c in row.creators} | {int(row.owner)}
            # pg_database_owner (15+: owner of public) is whoever owns the database
            found = {db_owner if snap.role_name(o) == "pg_database_owner" else o for o in found}
            found = {
                o
                for o in found
                if o not in trusted
                and (int(row.oid), o) not in revoked
                and not (o in snap.roles and snap.roles[o].superuser)
            }
            if found:
                victims.setdefault(schema, []).append((name, where, value))
                creators_of.setdefault(schema, set()).update(found)
    for schema, roles in victims.items():
        creators = sorted(creators_of[schema])
        names = ", ".join("PUBLIC" if o == 0 else (snap.role_name(o) or str(o)) for o in creators)
        direct = {int(g) for g in schemas[schema].grantees}
        yield finding(
            "settings.writable-search-path",
            f"schema {schema}",
            roles[0][0],
            f"schema {schema} is on the search_path of {', '.join(f'{r} ({w})' for r, w, _ in roles)} and "
            f"{names} can create objects in it: an unqualified name they use can resolve to such an object "
            "(detect-only: apply does not change schemas the policy does not manage)",
            _fix(policy, snap, schema, creators, direct, roles, _owner_of(snap, schemas[schema].owner)),
        )


def _fix(
    policy: Policy,
    snap: Snapshot,
    schema: str,
    creators: list[int],
    direct: set[int],
    roles: list[tuple[str, str, str]],
    owner: int,
) -> str:
    """The smallest change that takes the hazard away and nothing else: REVOKE CREATE from the direct
    grantees (a role that can create through PUBLIC or a granted role loses it with them). Only when
    a creator gets CREATE from owning the schema (or from membership in its owner), which is not the
    admin's to take, is the schema taken off those roles' search_path, every other entry kept as
    written (`$user` stays `$user`, so that public and its extensions still resolve)."""
    statements = []
    grantees = [o for o in creators if o in direct]
    if grantees:
        who = sql.SQL(", ").join(
            sql.SQL("PUBLIC") if o == 0 else sql.Identifier(snap.role_name(o) or "") for o in grantees
        )
        statements.append(
            sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(sql.Identifier(schema), who).as_string(None)
        )
    if any(not _revoke_suffices(snap, o, direct, owner) for o in creators):
        for role, _, value in roles:
            user = policy.owner.name if role in policy.owner.deploy_logins else role
            path = [item for item, name in _items(value, user) if name != schema]
            statements.append(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}")
                .format(
                    sql.Identifier(role),
                    sql.Identifier(policy.database.name),
                    sql.SQL(", ").join(sql.Identifier(s) for s in path) if path else sql.Literal(""),
                )
                .as_string(None)
            )
    return "; ".join(statements)


def _owner_of(snap: Snapshot, oid: object) -> int:
    """The schema owner's oid; pg_database_owner (15+) stands for the database's owner."""
    owner = int(str(oid))
    if snap.role_name(owner) == "pg_database_owner" and snap.database is not None:
        return snap.database.owner
    return owner


def _items(value: str, user: str) -> list[tuple[str, str]]:
    """(the entry as the setting names it, the schema it stands for) for each search_path entry."""
    return list(zip(parse_search_path(value, "$user"), parse_search_path(value, user), strict=True))


def _revoke_suffices(snap: Snapshot, role: int, direct: set[int], owner: int) -> bool:
    """Whether `role` can create only through a direct grant (its own, PUBLIC's or a role's it is a
    member of), so that revoking those takes it away; not when it owns the schema or is a member of
    its owner."""
    seen, todo = {role}, [role]
    while todo:
        member = todo.pop()
        for m in snap.memberships:
            if m.member == member and m.role not in seen:
                seen.add(m.role)
                todo.append(m.role)
    if owner in seen:
        return False
    return bool(seen & direct) or 0 in direct
