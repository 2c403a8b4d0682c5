"""Hazard checks about privileges: CREATE and TEMPORARY, SECURITY DEFINER routines, row level security."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.kinds import kind, ordered
from pgwarden.plan.model import Subject, acl_subject
from pgwarden.plan.objects import describe, object_sql
from pgwarden.policy import Policy
from pgwarden.probe.rights import may_write
from pgwarden.rows import CreateRow, FunctionRow
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import access_roles, finding, q
from pgwarden.rules.roles import revoke_membership
from pgwarden.scopes import Scopes
from pgwarden.snapshot import Acl, ObjectGroup, Snapshot


@reports(
    Rule(
        "create.schema",
        "high",
        "CREATE on a managed schema for PUBLIC or an access role",
        "Whoever may create objects in a schema owns them, and can shadow the owner's objects.",
        "REVOKE CREATE ON SCHEMA ... FROM PUBLIC / the access role.",
        doc=(
            "Names the role holding the right; when it comes through a membership the fix points at the "
            "membership findings instead of a REVOKE that would change nothing."
        ),
    ),
    Rule(
        "create.database",
        "high",
        "CREATE on the database for PUBLIC or an access role",
        "CREATE on the database lets a role create schemas (and trusted extensions) it then owns.",
        "REVOKE CREATE ON DATABASE ... FROM PUBLIC / the access role.",
        doc=(
            "Names the role holding the right; when it comes through a membership the fix points at the "
            "membership findings instead of a REVOKE that would change nothing."
        ),
    ),
)
def check_create(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """CREATE for PUBLIC on the managed schemas and the database, and for an access role anywhere."""
    db = policy.database.name
    for s in snap.schemas:
        if s.name in policy.database.schemas and any(g.grantee == 0 and g.privilege == "CREATE" for g in s.acl):
            yield finding(
                "create.schema",
                f"schema {s.name}",
                "PUBLIC",
                f"PUBLIC may create objects in schema {s.name}",
                sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(s.name)),
                subject=acl_subject("pg_namespace", s.oid, None),
            )
    if snap.database and any(g.grantee == 0 and g.privilege == "CREATE" for g in snap.database.acl):
        yield finding(
            "create.database",
            f"database {db}",
            "PUBLIC",
            f"PUBLIC may create schemas in database {db}",
            sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)),
            subject=acl_subject("pg_database", snap.database.oid, None),
        )
    access = {oid: name for name, oid in access_roles(policy, snap)}
    for row in hz.privileges:
        oid = int(row.role)
        name = access.get(oid)
        if name is not None and row.can_create and not snap.roles[oid].superuser:
            if f := _access_create(snap, hz, row, oid, name):
                yield f


def _access_create(snap: Snapshot, hz: HazardData, row: CreateRow, oid: int, name: str) -> Finding | None:
    """An access role's CREATE on a schema or the database: granted to it, or through a role it is a
    member of; through PUBLIC it is PUBLIC's finding."""
    is_schema = row.kind == "schema"
    target = snap.schema_by_name(row.name) if is_schema else snap.database
    if target is None:
        return None
    catalog, word = ("pg_namespace", "SCHEMA") if is_schema else ("pg_database", "DATABASE")
    obj = f"{row.kind} {row.name}"
    what = f"create objects in schema {row.name}" if is_schema else f"create schemas in database {row.name}"
    holders = {g.grantee for g in target.acl if g.privilege == "CREATE"}
    if oid in holders:
        fix = sql.SQL("REVOKE CREATE ON {} {} FROM {}").format(
            sql.SQL(word), sql.Identifier(row.name), sql.Identifier(name)
        )
        subject = acl_subject(catalog, target.oid, name)
        return finding("create." + row.kind, obj, name, f"access role {name} may {what}", fix, subject=subject)
    if 0 in holders:
        return None  # through PUBLIC: PUBLIC's own finding is this problem
    through = sorted(holders & hz.member_of.get(oid, frozenset()))
    if not through:
        return None  # through the owner of the database or schema: the membership findings say so
    membership_fix, membership = revoke_membership(snap, oid, through[0])
    message = f"access role {name} may {what} through the role {snap.role_name(through[0])} it is a member of"
    return finding("create." + row.kind, obj, name, message, membership_fix, subject=membership)


@reports(
    Rule(
        "temp.public",
        "medium",
        "TEMPORARY on the database for PUBLIC",
        "Temporary tables are searched first for relations: with TEMPORARY a role can hijack "
        "unqualified table names in SECURITY DEFINER code, and fill the disk.",
        "REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC.",
    ),
)
def check_temp(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    if not policy.hardening.revoke_public_connect or snap.database is None:
        return
    if any(g.grantee == 0 and g.privilege == "TEMPORARY" for g in snap.database.acl):
        db = policy.database.name
        yield finding(
            "temp.public",
            f"database {db}",
            "PUBLIC",
            f"PUBLIC may create temporary tables in database {db}",
            sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)),
            subject=acl_subject("pg_database", snap.database.oid, None),
        )


def _routine(row: FunctionRow) -> tuple[str, str, sql.Composable]:
    """(SQL word, label, signature) of a hazard_functions row."""
    word = "PROCEDURE" if row.kind == "p" else "FUNCTION"
    signature = sql.SQL("{}({})").format(sql.Identifier(str(row.schema), str(row.name)), sql.SQL(str(row.args)))
    return word, f"{word.lower()} {row.schema}.{row.name}({row.args})", signature


@reports(
    Rule(
        "function.security-definer",
        "high",
        "SECURITY DEFINER routine without a fixed search_path",
        "It runs with its owner's rights; an access role that can create temporary tables or objects "
        "in a schema on the search_path can make it use its own objects (CVE-2018-1058 style).",
        "ALTER FUNCTION ... SET search_path = pg_catalog, pg_temp (and schema-qualify names), or "
        "REVOKE EXECUTE from PUBLIC and the access roles.",
    ),
)
def check_security_definer(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = {oid: name for name, oid in access_roles(policy, snap)}
    for row in hz.functions:
        if row.fixed_search_path:
            continue
        runners = (["PUBLIC"] if row.public_execute else []) + [access[o] for o in row.executable_by if o in access]
        if not runners:
            continue
        word, obj, signature = _routine(row)
        yield finding(
            "function.security-definer",
            obj,
            runners[0],
            f"{obj} is SECURITY DEFINER without a fixed search_path and can be run by {', '.join(runners)}",
            sql.SQL("ALTER " + word + " {} SET search_path = pg_catalog, pg_temp").format(signature),
        )


@reports(
    Rule(
        "function.definer-readonly",
        "medium",
        "SECURITY DEFINER routine a readonly role can run",
        "readonly roles get EXECUTE on the routines of the managed schemas, because queries and views "
        "call them and a SECURITY INVOKER routine can do no more than its caller. A SECURITY DEFINER "
        "routine runs with its owner's rights: if it writes, the readonly role writes through it.",
        "ALTER FUNCTION ... SECURITY INVOKER (and grant its callers what it needs); a routine that must "
        "stay SECURITY DEFINER belongs in a schema the policy does not manage, out of readonly roles' reach.",
    ),
)
def check_definer_readonly(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """Roles that may not write (no INSERT, UPDATE, DELETE or TRUNCATE on any table, by their grants)
    get EXECUTE on the managed schemas' routines (queries and views call them); a SECURITY DEFINER
    routine runs with its owner's rights, so through it such a role may write."""

    scopes = Scopes.of(policy)
    readonly = {
        snap.role_by_name[role].oid: role
        for role in scopes.holders
        if not may_write(scopes, role) and role in snap.role_by_name
    }
    for row in hz.functions:
        runners = [readonly[o] for o in row.executable_by if o in readonly and o != row.owner]
        if not runners:
            continue
        word, obj, signature = _routine(row)
        owner = snap.role_name(int(row.owner))
        volatile = "" if row.volatility != "v" else " and is VOLATILE (it may change data)"
        yield finding(
            "function.definer-readonly",
            obj,
            runners[0],
            f"{obj} is SECURITY DEFINER{volatile}: readonly role(s) {', '.join(runners)} run it with the rights "
            f"of its owner {owner}, so they are not read-only through it",
            sql.SQL("ALTER " + word + " {} SECURITY INVOKER").format(signature),
        )


@reports(
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
        doc="Reported on 15+ only, where `security_invoker` exists.",
    ),
)
def check_rls(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = access_roles(policy, snap)
    owner = snap.role_by_name.get(policy.owner.name)
    for row in hz.rls:
        if row.kind == "table" and not row.forced:
            table_owner = int(row.owner)
            bypassing = [n for n, oid in access if oid == table_owner or table_owner in hz.member_of.get(oid, ())]
            for name in bypassing:
                obj = f"table {q(row.schema, row.name)}"
                yield finding(
                    "rls.not-forced",
                    obj,
                    name,
                    f"{obj} has row level security enabled but not forced, and {name} has the rights "
                    f"of its owner {snap.role_name(table_owner)}: it sees every row",
                    sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(sql.Identifier(row.schema, row.name)),
                )
        elif row.kind == "view" and snap.caps.security_invoker_views and owner and int(row.owner) == owner.oid:
            obj = f"view {q(row.schema, row.name)}"
            base = q(str(row.base_schema), str(row.base_name))
            yield finding(
                "rls.view-bypass",
                obj,
                None,
                f"{obj} reads {base}, which has row level security, with the rights of its owner "
                f"{owner.name}: its readers see every row",
                sql.SQL("ALTER VIEW {} SET (security_invoker = true)").format(sql.Identifier(row.schema, row.name)),
            )


@reports(
    Rule(
        "privilege.grant-option",
        "medium",
        "A role may grant its privileges to other roles (WITH GRANT OPTION), as the policy's grant_option keeps",
        "A role holding a privilege WITH GRANT OPTION can give it to any role, outside the policy: what the "
        "policy lists is then no longer all who hold it. `init --from-database` writes the grant options a "
        "database has (`grant_option`) so that adopting takes nothing away; this finding keeps them in view.",
        "REVOKE GRANT OPTION FOR ... FROM the role, and remove the privilege from the grant's grant_option.",
    ),
)
def check_grant_options(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """Grant options the policy keeps (a grant's `grant_option`, what init writes where the database
    has them): each role that may grant a privilege to others, on the database, a managed schema or
    the objects of one. The ones the policy does not keep are drift (apply revokes them)."""
    options = Scopes.of(policy).options
    if not options.grants:
        return
    held = _options_held(snap, set(options.holders))
    db = snap.database
    if db is not None:
        target = sql.SQL("DATABASE {}").format(sql.Identifier(policy.database.name))
        for name, privs in held(db.acl):
            subject = acl_subject("pg_database", db.oid, name)
            yield from _option(
                f"database {policy.database.name}", target, name, privs & options.database(name), subject
            )
    for s in snap.schemas:
        if s.name in policy.database.schemas:
            target = sql.SQL("SCHEMA {}").format(sql.Identifier(s.name))
            for name, privs in held(s.acl):
                subject = acl_subject("pg_namespace", s.oid, name)
                yield from _option(f"schema {s.name}", target, name, privs & options.schema(name, s.name), subject)
    schemas = {s.oid: s.name for s in snap.schemas if s.name in policy.database.schemas}
    for group in snap.objects:
        schema = schemas.get(group.schema)
        if schema is not None and not group.extension:
            for name, privs in held(group.acl):
                yield from _object_options(options, group, schema, name, privs)


def _object_options(
    options: Scopes, group: ObjectGroup, schema: str, name: str, privs: frozenset[str]
) -> Iterator[Finding]:
    """The grant options `name` holds on a group's objects that its grants keep, object by object when listed."""
    what = kind(group.kind)
    for obj in group.objects or (None,):
        ident, table = what.scope_name(obj.name, obj.args) if obj is not None else (None, None)
        keep = privs & options.objects(name, group.kind, schema, ident, table)
        label = describe(group.kind, schema, None if obj is None else (obj,), group.count)
        target = (
            sql.SQL("{} {}").format(sql.SQL(what.sql_word), object_sql(group.kind, schema, obj))
            if obj is not None
            else sql.SQL("ALL {} IN SCHEMA {}").format(sql.SQL(what.all_word or ""), sql.Identifier(schema))
        )
        yield from _option(label, target, name, keep, None)


def _options_held(snap: Snapshot, roles: set[str]) -> Callable[[Acl], list[tuple[str, frozenset[str]]]]:
    def held(acl: Acl) -> list[tuple[str, frozenset[str]]]:
        out: dict[str, set[str]] = {}
        for g in acl:
            name = snap.role_name(g.grantee)
            if g.grantable and name in roles:
                out.setdefault(name, set()).add(g.privilege)
        return [(n, frozenset(p)) for n, p in sorted(out.items())]

    return held


def _option(
    obj: str, target: sql.Composable, role: str, privs: frozenset[str], subject: Subject | None
) -> list[Finding]:
    if not privs:
        return []
    return [
        finding(
            "privilege.grant-option",
            obj,
            role,
            f"{role} may grant {', '.join(ordered(privs))} on {obj} to other roles (the policy keeps it: grant_option)",
            sql.SQL("REVOKE GRANT OPTION FOR {} ON {} FROM {} CASCADE").format(
                sql.SQL(", ").join(sql.SQL(p) for p in ordered(privs)), target, sql.Identifier(role)
            ),
            subject=subject,
        )
    ]
