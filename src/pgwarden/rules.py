"""Hazard rules: pure functions over (policy, snapshot, hazard data) -> findings; the rule catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from psycopg import sql

from pgwarden.findings import Finding, Severity, display_name
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.snapshot import Snapshot


@dataclass(frozen=True)
class Rule:
    """A catalog entry: stable id, severity, a title, why it matters and how to fix it (docs/rules.md)."""

    id: str
    severity: Severity
    title: str
    why: str
    how: str


CATALOG: tuple[Rule, ...] = (
    Rule(
        "access.member-of-owner",
        "critical",
        "Access role is a member of the owner",
        "A member of the owner (directly or through other roles) can SET ROLE to it or inherit its "
        "rights: it can alter and drop every table and bypass row level security.",
        "REVOKE the membership (the fix names the direct grant to remove).",
    ),
    Rule(
        "access.member-of-privileged",
        "high",
        "Access role is a member of a powerful role",
        "Predefined roles such as pg_write_all_data, pg_read_server_files, pg_write_server_files, "
        "pg_execute_server_program, pg_signal_backend and pg_maintain (17+) act on every database "
        "of the cluster or on the server itself; membership of a superuser role gives everything.",
        "REVOKE the membership.",
    ),
    Rule(
        "access.attribute",
        "critical",
        "Access role has a powerful attribute",
        "SUPERUSER bypasses every check, BYPASSRLS every row policy, CREATEROLE (14-15) takes over "
        "other roles, CREATEDB and REPLICATION reach beyond the application's data.",
        "ALTER ROLE ... NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS.",
    ),
    Rule(
        "access.owns-objects",
        "high",
        "Access role owns objects in the database",
        "An owner can alter, drop and grant its objects whatever the policy says.",
        "ALTER ... OWNER TO the owner (or REASSIGN OWNED BY the access role TO the owner).",
    ),
    Rule(
        "ownership.not-owner",
        "high",
        "Object in a managed schema not owned by the owner",
        "The classic 'migration ran as the wrong login': the owner cannot change the object and the "
        "access roles often get no grant on it.",
        "ALTER ... OWNER TO the owner (`pgwarden apply` does it).",
    ),
    Rule(
        "ownership.escaped-owner",
        "high",
        "Object owned by a deploy login",
        "A deploy login created objects without SET ROLE to the owner: they escaped the owner and "
        "its default privileges.",
        "ALTER ... OWNER TO the owner; run migrations with `SET ROLE owner` (PGOPTIONS=-c role=owner).",
    ),
    Rule(
        "defaults.wrong-role",
        "medium",
        "Default privileges for a role that does not create objects",
        "ALTER DEFAULT PRIVILEGES only applies to objects created by the role it names: entries for "
        "another role (the application, a deploy login) are never used for the owner's objects, and "
        "can give privileges on objects that role creates.",
        "ALTER DEFAULT PRIVILEGES FOR ROLE <that role> REVOKE ... (or DROP OWNED BY it).",
    ),
    Rule(
        "create.schema",
        "high",
        "CREATE on a managed schema for PUBLIC or an access role",
        "Whoever may create objects in a schema owns them, and can shadow the owner's objects.",
        "REVOKE CREATE ON SCHEMA ... FROM PUBLIC / the access role.",
    ),
    Rule(
        "create.database",
        "high",
        "CREATE on the database for PUBLIC or an access role",
        "CREATE on the database lets a role create schemas (and trusted extensions) it then owns.",
        "REVOKE CREATE ON DATABASE ... FROM PUBLIC / the access role.",
    ),
    Rule(
        "temp.public",
        "medium",
        "TEMPORARY on the database for PUBLIC",
        "Temporary tables are searched first for relations: with TEMPORARY a role can hijack "
        "unqualified table names in SECURITY DEFINER code, and fill the disk.",
        "REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC.",
    ),
    Rule(
        "owner.superuser",
        "high",
        "The owner is a superuser",
        "Migrations then run with every power of the server; row level security is bypassed.",
        "ALTER ROLE owner NOSUPERUSER.",
    ),
    Rule(
        "owner.createrole",
        "medium",
        "The owner has CREATEROLE on PostgreSQL 14-15",
        "Before 16, CREATEROLE can alter any non-superuser role and grant itself "
        "pg_execute_server_program: it is practically a superuser.",
        "ALTER ROLE owner NOCREATEROLE; create roles as an administrator.",
    ),
    Rule(
        "function.security-definer",
        "high",
        "SECURITY DEFINER routine without a fixed search_path",
        "It runs with its owner's rights; an access role that can create temporary tables or objects "
        "in a schema on the search_path can make it use its own objects (CVE-2018-1058 style).",
        "ALTER FUNCTION ... SET search_path = pg_catalog, pg_temp (and schema-qualify names), or "
        "REVOKE EXECUTE from PUBLIC and the access roles.",
    ),
    Rule(
        "rls.not-forced",
        "high",
        "Row level security not forced on a table an access role can bypass",
        "The table owner, and every member of it, bypasses row level security unless it is forced.",
        "ALTER TABLE ... FORCE ROW LEVEL SECURITY, and remove the membership.",
    ),
    Rule(
        "rls.view-bypass",
        "high",
        "View over a row-level-security table runs as its owner",
        "A view reads its tables with its owner's rights: when the owner bypasses row level "
        "security, every reader of the view sees every row.",
        "ALTER VIEW ... SET (security_invoker = true) (15+).",
    ),
    Rule(
        "login.no-password",
        "medium",
        "LOGIN role of the policy without a password",
        "The role cannot log in with password authentication, or logs in without one under trust.",
        "Set the password environment variable and run `pgwarden apply`.",
    ),
    Rule(
        "login.md5-password",
        "medium",
        "LOGIN role of the policy with an MD5 password",
        "MD5 verifiers are replayable and deprecated (warned about on 18).",
        "Set the password again as SCRAM-SHA-256 (`pgwarden apply` does it).",
    ),
)

#: Drift rule ids: one per plan action, with the severity of what the step would repair.
DRIFT_SEVERITY: dict[str, Severity] = {
    "create-role": "high",
    "alter-role": "high",
    "set-password": "low",
    "revoke-membership": "high",
    "grant-membership": "medium",
    "create-database": "high",
    "create-schema": "medium",
    "alter-owner": "high",
    "grant": "medium",
    "revoke": "high",
    "revoke-grant-option": "high",
    "default-privileges": "medium",
    "role-setting": "low",
}
DRIFT_CATALOG: tuple[Rule, ...] = tuple(
    Rule(
        f"drift.{action}",
        sev,
        f"`apply` would run: {action}",
        "The database differs from the policy; the step `plan` shows repairs it.",
        "Run `pgwarden apply`.",
    )
    for action, sev in DRIFT_SEVERITY.items()
)
RULES: dict[str, Rule] = {r.id: r for r in CATALOG + DRIFT_CATALOG}

_ATTRIBUTES = (
    ("superuser", "SUPERUSER", "NOSUPERUSER"),
    ("createdb", "CREATEDB", "NOCREATEDB"),
    ("createrole", "CREATEROLE", "NOCREATEROLE"),
    ("replication", "REPLICATION", "NOREPLICATION"),
    ("bypassrls", "BYPASSRLS", "NOBYPASSRLS"),
)

Check = Callable[[Policy, Snapshot, HazardData], Iterator[Finding]]


def _q(*parts: str) -> str:
    return display_name(*parts)


def _finding(
    rule: str,
    obj: str,
    role: str | None,
    message: str,
    fix: sql.Composable | str | None = None,
    severity: Severity | None = None,
) -> Finding:
    text = fix.as_string(None) if isinstance(fix, sql.Composable) else fix
    return Finding(rule, severity or RULES[rule].severity, obj, role, message, text)


def _access(policy: Policy, snap: Snapshot) -> list[tuple[str, int]]:
    return [(a.name, snap.role_by_name[a.name].oid) for a in policy.access if a.name in snap.role_by_name]


def _revoke_membership(snap: Snapshot, member: int, target: int) -> sql.Composable:
    """REVOKE the direct grants on the path from member to target (the first hop is enough to cut it)."""
    direct = [m.role for m in snap.memberships if m.member == member]
    hop = target if target in direct else next(iter(direct), target)
    return sql.SQL("REVOKE {} FROM {}").format(
        sql.Identifier(snap.role_name(hop) or ""), sql.Identifier(snap.role_name(member) or "")
    )


def check_memberships(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    owners = {owner.oid} if owner else set()
    owners |= {snap.role_by_name[d].oid for d in policy.owner.deploy_logins if d in snap.role_by_name}
    dangerous = set(snap.caps.dangerous_predefined_roles)
    for name, oid in _access(policy, snap):
        for target in sorted(hz.member_of.get(oid, ())):
            role = snap.roles.get(target)
            if role is None:
                continue
            fix = _revoke_membership(snap, oid, target)
            how = "directly" if target in {m.role for m in snap.memberships if m.member == oid} else "indirectly"
            if target in owners:
                yield _finding(
                    "access.member-of-owner",
                    f"role {role.name}",
                    name,
                    f"{name} is {how} a member of {role.name}: it can act as the owner "
                    "(alter or drop every table, bypass row level security)",
                    fix,
                )
            elif role.name in dangerous or role.superuser:
                what = "a superuser" if role.superuser else "a predefined role with cluster-wide rights"
                yield _finding(
                    "access.member-of-privileged",
                    f"role {role.name}",
                    name,
                    f"{name} is {how} a member of {role.name}, {what}",
                    fix,
                )


def check_attributes(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    for name, oid in _access(policy, snap):
        role = snap.roles[oid]
        for attr, word, negation in _ATTRIBUTES:
            if getattr(role, attr):
                yield _finding(
                    "access.attribute",
                    f"role {name}",
                    name,
                    f"access role {name} has {word}",
                    sql.SQL("ALTER ROLE {} " + negation).format(sql.Identifier(name)),
                    severity="critical" if attr in ("superuser", "bypassrls") else "high",
                )


def check_access_owns(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = dict((oid, name) for name, oid in _access(policy, snap))
    for row in hz.owned:
        name = access.get(int(row["role"]))
        if name is None:
            continue
        fix = sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(name), sql.Identifier(policy.owner.name))
        yield _finding(
            "access.owns-objects",
            row["object"],
            name,
            f"access role {name} owns {row['object']}: it can alter, drop and grant it",
            fix,
        )


def check_ownership(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    if owner is None:
        return
    access = {oid for _, oid in _access(policy, snap)}
    deploy = {snap.role_by_name[d].oid for d in policy.owner.deploy_logins if d in snap.role_by_name}
    ignored = {snap.role_by_name[r].oid for r in policy.ignore.roles if r in snap.role_by_name}
    schemas = {s.oid: s for s in snap.schemas}

    def finding(kind: str, schema: str, name: str | None, by: int, count: int = 1) -> Finding | None:
        if by == owner.oid or by in access or by in ignored:  # access roles: access.owns-objects
            return None
        who = snap.role_name(by) or str(by)
        if kind == "schema":
            obj, target = (
                f"schema {schema}",
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(owner.name)),
            )
        elif name is not None:
            # the words pg_describe_object uses, so that hazard_owned rows can be matched
            obj = f"{kind} {_q(schema, name) if '(' not in name else _q(schema) + '.' + name}"
            target = sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(who), sql.Identifier(owner.name))
        else:
            obj = f"{count} {kind}(s) in schema {schema}"
            target = sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(who), sql.Identifier(owner.name))
        if by in deploy:
            return _finding(
                "ownership.escaped-owner",
                obj,
                who,
                f"{obj} is owned by the deploy login {who}, not by {owner.name}: "
                "the migration did not SET ROLE to the owner",
                target,
            )
        return _finding("ownership.not-owner", obj, who, f"{obj} is owned by {who}, not by {owner.name}", target)

    seen: set[str] = set()
    managed_oids = {s.oid for s in snap.schemas if s.name in policy.database.schemas}
    for s in snap.schemas:
        if s.name in policy.database.schemas and not s.extension and snap.roles.get(s.owner) is not None:
            if snap.roles[s.owner].name == "pg_database_owner":
                continue  # 15+: public belongs to whoever owns the database
            f = finding("schema", s.name, None, s.owner)
            if f:
                seen.add(f.object)
                yield f
    for g in snap.objects:
        if g.extension or g.owner == owner.oid or g.schema not in schemas:
            continue
        if g.objects is None:
            f = finding(g.kind, schemas[g.schema].name, None, g.owner, g.count)
            if f:
                yield f
            continue
        for o in g.objects:
            label = o.name if g.kind != "routine" else f"{_q(o.name)}({o.args or ''})"
            f = finding(_describe(g.kind, o.subkind), schemas[g.schema].name, label, g.owner)
            if f:
                seen.add(f.object)
                yield f
    # Objects a deploy login owns elsewhere (a schema it created, objects outside the managed schemas).
    by_oid = {
        oid: name
        for name, oid in ((d, snap.role_by_name[d].oid) for d in policy.owner.deploy_logins if d in snap.role_by_name)
    }
    for row in hz.owned:
        who = by_oid.get(int(row["role"]))
        managed = row["namespace"] is not None and int(row["namespace"]) in managed_oids
        covered = row["catalog"] in ("pg_class", "pg_proc", "pg_namespace") and managed
        if who is None or covered or row["object"] in seen:
            continue
        yield _finding(
            "ownership.escaped-owner",
            row["object"],
            who,
            f"{row['object']} is owned by the deploy login {who}, not by {owner.name}: "
            "the migration did not SET ROLE to the owner",
            sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(who), sql.Identifier(owner.name)),
        )


_RELKIND_WORD = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}
_PROKIND_WORD = {"f": "function", "p": "procedure", "a": "aggregate", "w": "function"}


def _describe(kind: str, subkind: str) -> str:
    """The word pg_describe_object uses for an object of the snapshot."""
    return (_PROKIND_WORD if kind == "routine" else _RELKIND_WORD).get(subkind, kind)


_DEFACL_WORD = {"r": "TABLES", "S": "SEQUENCES", "f": "ROUTINES", "T": "TYPES", "n": "SCHEMAS", "L": "LARGE OBJECTS"}


def check_default_acls(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    ignored = {snap.role_by_name[r].oid for r in policy.ignore.roles if r in snap.role_by_name}
    schemas = {s.oid: s.name for s in snap.schemas}
    for d in snap.default_acls:
        if (owner is not None and d.role == owner.oid) or d.role in ignored:
            continue
        who = snap.role_name(d.role) or str(d.role)
        where = f" in schema {schemas.get(d.schema, d.schema)}" if d.schema else ""
        word = _DEFACL_WORD.get(d.objtype, d.objtype)
        grantees = sorted({snap.role_name(g.grantee) or "PUBLIC" for g in d.acl})
        fix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} REVOKE ALL ON {} FROM {}").format(
            sql.Identifier(who),
            sql.SQL(" IN SCHEMA {}").format(sql.Identifier(str(schemas.get(d.schema, ""))))
            if d.schema
            else sql.SQL(""),
            sql.SQL(word),
            sql.SQL(", ").join(sql.SQL("PUBLIC") if g == "PUBLIC" else sql.Identifier(g) for g in grantees)
            if grantees
            else sql.Identifier(who),
        )
        yield _finding(
            "defaults.wrong-role",
            f"default privileges for role {who} on {word.lower()}{where}",
            who,
            f"default privileges are defined for {who}, which is not the owner: they never apply "
            f"to the owner's objects (grantees: {', '.join(grantees) or 'none'})",
            fix,
        )


def check_create(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    db = policy.database.name
    for s in snap.schemas:
        if s.name in policy.database.schemas and any(g.grantee == 0 and g.privilege == "CREATE" for g in s.acl):
            yield _finding(
                "create.schema",
                f"schema {s.name}",
                "PUBLIC",
                f"PUBLIC may create objects in schema {s.name}",
                sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(s.name)),
            )
    if snap.database and any(g.grantee == 0 and g.privilege == "CREATE" for g in snap.database.acl):
        yield _finding(
            "create.database",
            f"database {db}",
            "PUBLIC",
            f"PUBLIC may create schemas in database {db}",
            sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)),
        )
    access = {oid: name for name, oid in _access(policy, snap)}
    direct_schema = {(g.grantee, s.name) for s in snap.schemas for g in s.acl if g.privilege == "CREATE"}
    direct_db = {g.grantee for g in snap.database.acl if g.privilege == "CREATE"} if snap.database else set()
    for row in hz.privileges:
        oid = int(row["role"])
        name = access.get(oid)
        if name is None or not row["can_create"] or snap.roles[oid].superuser:
            continue
        is_schema = row["kind"] == "schema"
        direct = (oid, row["name"]) in direct_schema if is_schema else oid in direct_db
        if is_schema:
            obj, what = f"schema {row['name']}", f"create objects in schema {row['name']}"
            fix = sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(
                sql.Identifier(row["name"]), sql.Identifier(name)
            )
        else:
            obj, what = f"database {row['name']}", f"create schemas in database {row['name']}"
            fix = sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(
                sql.Identifier(row["name"]), sql.Identifier(name)
            )
        if direct:
            yield _finding("create." + row["kind"], obj, name, f"access role {name} may {what}", fix)
        else:
            yield _finding(
                "create." + row["kind"],
                obj,
                name,
                f"access role {name} may {what} through a role it is a member of",
                "revoke the membership that gives it (see the access.member-of-* findings)",
            )


def check_temp(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    if not policy.hardening.revoke_public_connect or snap.database is None:
        return
    if any(g.grantee == 0 and g.privilege == "TEMPORARY" for g in snap.database.acl):
        db = policy.database.name
        yield _finding(
            "temp.public",
            f"database {db}",
            "PUBLIC",
            f"PUBLIC may create temporary tables in database {db}",
            sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)),
        )


def check_owner(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    if owner is None:
        return
    if owner.superuser:
        yield _finding(
            "owner.superuser",
            f"role {owner.name}",
            owner.name,
            f"the owner {owner.name} is a superuser",
            sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(owner.name)),
        )
    if owner.createrole and snap.caps.createrole_is_near_superuser:
        yield _finding(
            "owner.createrole",
            f"role {owner.name}",
            owner.name,
            f"the owner {owner.name} has CREATEROLE, which on PostgreSQL {snap.caps.major} can take "
            "over any non-superuser role",
            sql.SQL("ALTER ROLE {} NOCREATEROLE").format(sql.Identifier(owner.name)),
        )


def check_security_definer(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = {oid: name for name, oid in _access(policy, snap)}
    for row in hz.functions:
        runners = (["PUBLIC"] if row["public_execute"] else []) + [
            access[o] for o in row["executable_by"] if o in access
        ]
        if not runners:
            continue
        word = "PROCEDURE" if row["kind"] == "p" else "FUNCTION"
        signature = sql.SQL("{}({})").format(sql.Identifier(row["schema"], row["name"]), sql.SQL(row["args"]))
        obj = f"{word.lower()} {row['schema']}.{row['name']}({row['args']})"
        yield _finding(
            "function.security-definer",
            obj,
            runners[0],
            f"{obj} is SECURITY DEFINER without a fixed search_path and can be run by {', '.join(runners)}",
            sql.SQL("ALTER " + word + " {} SET search_path = pg_catalog, pg_temp").format(signature),
        )


def check_rls(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = _access(policy, snap)
    owner = snap.role_by_name.get(policy.owner.name)
    for row in hz.rls:
        if row["kind"] == "table" and not row["forced"]:
            table_owner = int(row["owner"])
            bypassing = [n for n, oid in access if oid == table_owner or table_owner in hz.member_of.get(oid, ())]
            for name in bypassing:
                obj = f"table {_q(row['schema'], row['name'])}"
                yield _finding(
                    "rls.not-forced",
                    obj,
                    name,
                    f"{obj} has row level security enabled but not forced, and {name} has the rights "
                    f"of its owner {snap.role_name(table_owner)}: it sees every row",
                    sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(
                        sql.Identifier(row["schema"], row["name"])
                    ),
                )
        elif row["kind"] == "view" and snap.caps.security_invoker_views and owner and int(row["owner"]) == owner.oid:
            obj = f"view {_q(row['schema'], row['name'])}"
            base = _q(row["base_schema"], row["base_name"])
            yield _finding(
                "rls.view-bypass",
                obj,
                None,
                f"{obj} reads {base}, which has row level security, with the rights of its owner "
                f"{owner.name}: its readers see every row",
                sql.SQL("ALTER VIEW {} SET (security_invoker = true)").format(
                    sql.Identifier(row["schema"], row["name"])
                ),
            )


def check_passwords(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    if snap.passwords is None:  # verifiers are readable by superusers only
        return
    for name, env in policy.login_roles():
        role = snap.role_by_name.get(name)
        if role is None or not role.login or role.oid not in snap.passwords:
            continue
        verifier = snap.passwords.get(role.oid)
        hint = f"set ${env} and run `pgwarden apply`" if env else "set a password"
        if not verifier:
            yield _finding("login.no-password", f"role {name}", name, f"LOGIN role {name} has no password", hint)
        elif verifier.startswith("md5"):
            yield _finding("login.md5-password", f"role {name}", name, f"LOGIN role {name} has an MD5 password", hint)


CHECKS: tuple[Check, ...] = (
    check_memberships,
    check_attributes,
    check_access_owns,
    check_ownership,
    check_default_acls,
    check_create,
    check_temp,
    check_owner,
    check_security_definer,
    check_rls,
    check_passwords,
)


def run_rules(policy: Policy, snap: Snapshot, hz: HazardData) -> list[Finding]:
    """Every hazard rule over the snapshot; pure."""
    return [f for check in CHECKS for f in check(policy, snap, hz)]
