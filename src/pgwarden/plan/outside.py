"""Planners for what the policy's roles hold outside the managed schemas: grants, memberships, settings."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from psycopg import sql

from pgwarden.acl import Change, ChangeAction
from pgwarden.kinds import BY_DEFACL_CODE, kind, label, ordered
from pgwarden.plan.context import PlanContext, acl_statement, acl_step, default_privileges_prefix
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.plan.settings import declared_settings
from pgwarden.snapshot import OutsideGrant, Snapshot

R = Requirement

#: Privileges outside the managed schemas that are not the policy's to take away from an access
#: role (check reports them, rule outside.grant): CONNECT to another database may be another
#: policy's grant; USAGE on another schema only lets it look names up (extension schemas).
NOT_REPAIRED = frozenset({("database", "CONNECT"), ("schema", "USAGE")})

#: Predefined roles that reach the server or every database: the owner and deploy logins must not
#: be members (every migration would carry the power), nor access roles (plan/roles.py).
SERVER_ROLES = frozenset(
    {
        "pg_execute_server_program",
        "pg_read_server_files",
        "pg_write_server_files",
        "pg_read_all_data",
        "pg_write_all_data",
        "pg_signal_backend",
        "pg_maintain",
        "pg_create_subscription",
    }
)

#: Kinds of the owner's default privileges plan/defaults.py does not plan, in any schema.
OUTSIDE_DEFACL_KINDS = ("schema", "large_object")  # types: plan/defaults.py, as tables


def target_sql(grant: OutsideGrant) -> sql.Composable:
    """`<kind word> <name>` of an outside object, for GRANT/REVOKE ... ON."""
    return sql.SQL("{} {}").format(sql.SQL(kind(grant.kind).sql_word), sql.SQL(grant.ident))


def object_label(grant: OutsideGrant) -> str:
    """ "function pg_catalog.pg_read_file(text)", "foreign server s", "large object 16412"."""
    word = label(grant.kind, grant.subkind) if grant.subkind else kind(grant.kind).sql_word.lower()
    return f"{word} {grant.ident}"


def repairable(snap: Snapshot, access: set[str], grant: OutsideGrant) -> bool:
    """An access role's grant that apply revokes: granted by the object's owner (a superuser's
    REVOKE acts as the owner, so it cannot take back what another grantor gave)."""
    # the cheap tests first: a fleet's databases each read every other database's CONNECT grants
    return (
        grant.grantor == grant.owner
        and (grant.kind, grant.privilege) not in NOT_REPAIRED
        and snap.role_name(grant.grantee) in access
    )


def role_oids(snap: Snapshot, names: Collection[str]) -> frozenset[int]:
    """The oids whose `snap.role_name` is one of `names` (an unknown oid is named by its number):
    a test of one set per row, where a fleet's databases each read every other database's grants."""
    oids = {oid for oid, r in snap.roles.items() if r.name in names}
    numbers = (int(n) for n in names if n.isascii() and n.isdigit() and str(int(n)) == n)
    return frozenset(oids | {n for n in numbers if n != 0 and n not in snap.roles})


def plan_outside(ctx: PlanContext) -> Iterator[Step]:
    """Grants, settings and default privileges outside what the other planners cover."""
    yield from plan_outside_grants(ctx)
    yield from plan_setting_resets(ctx)
    yield from plan_outside_defaults(ctx)


def plan_outside_grants(ctx: PlanContext) -> Iterator[Step]:
    """Access roles lose what they were granted outside the managed schemas: one REVOKE per object
    and role (the policy gives them nothing there)."""
    snap, auth, access = ctx.snap, ctx.auth, ctx.row_roles
    grouped: dict[tuple[str, str, int], list[OutsideGrant]] = {}
    oids = role_oids(snap, access)
    for g in snap.outside:  # repairable(), inline: thousands of rows at a thousand databases
        if g.grantor == g.owner and g.grantee in oids and (g.kind, g.privilege) not in NOT_REPAIRED:
            grouped.setdefault((g.kind, g.ident, g.grantee), []).append(g)
    for grants in grouped.values():
        first = grants[0]
        role = snap.role_name(first.grantee)
        owner = snap.role_name(first.owner) or ""
        privs = frozenset(g.privilege for g in grants)
        ok = auth.superuser or auth.acts_as(owner)
        change = Change(ChangeAction.REVOKE, role, privs)
        where = "other databases" if first.kind == "database" else "objects outside the managed schemas"
        reason = (
            f"access role {role} must hold nothing on {where}: "
            f"{', '.join(ordered(privs))} on {object_label(first)} reaches beyond the application's data"
        )
        needs = Need.of((R.PRIVILEGES_OF, owner), note="the object's owner")
        yield acl_step(change, target_sql(first), object_label(first), reason, ok, needs)


def privileged_targets(snap: Snapshot) -> set[int]:
    """Roles that reach the server: superusers (but the bootstrap one is not grantable) and SERVER_ROLES."""
    return {oid for oid, r in snap.roles.items() if r.superuser or r.name in SERVER_ROLES}


def plan_owner_memberships(ctx: PlanContext) -> Iterator[Step]:
    """The owner and deploy logins lose direct memberships in roles that reach the server."""
    snap, owner = ctx.snap, ctx.owner
    who = {owner: "the owner", **{d: "deploy login" for d in ctx.policy.owner.deploy_logins}}
    targets = privileged_targets(snap)
    for m in snap.memberships:
        member, role = snap.role_name(m.member), snap.role_name(m.role)
        if member not in who or role is None or m.role not in targets:
            continue
        statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
        grantor = snap.role_name(m.grantor)
        by_superuser = m.grantor in snap.roles and snap.roles[m.grantor].superuser
        if snap.caps.membership_options and grantor and not by_superuser:
            statement = sql.SQL("{} GRANTED BY {}").format(statement, sql.Identifier(grantor))
        auth = ctx.auth
        ok = auth.superuser or role in auth.admin_of
        yield Step(
            Phase.ROLES,
            Action.REVOKE_MEMBERSHIP,
            f"role {member}",
            f"{who[member]} {member} must not be a member of {role}: every migration would carry its power",
            statement,
            role=member,
            destructive=True,
            needs=None if ok else Need.of((R.ADMIN_OPTION, role)),
            allowed=ok,
            change=role,  # a member may lose several memberships: the role revoked keeps keys apart
            subject=("membership", role, member),
        )


def setting_name(setting: str) -> str:
    return setting.split("=", 1)[0].strip().lower()


def dangerous_settings(ctx: PlanContext) -> Iterator[tuple[str | None, int, str]]:
    """(role or None for the database, database oid or 0, parameter) of every stored setting that
    changes what a policy role can do: a superuser-only parameter on a non-superuser (or on the
    database), and `role` on the owner or an access role (it makes every session act as that role)."""
    snap = ctx.snap
    if snap.database is None:
        return
    policy_roles = {ctx.owner, *ctx.policy.owner.deploy_logins, *ctx.row_roles}
    acting = {ctx.owner, *ctx.row_roles}
    for s in snap.role_settings:
        if s.role == 0:
            name: str | None = None
            if s.database != snap.database.oid:
                continue
        else:
            name = snap.role_name(s.role)
            role = snap.roles.get(s.role)
            if name not in policy_roles or role is None or role.superuser:
                continue
        declared = _declared(ctx, name, s.database)
        for setting in s.settings:
            param = setting_name(setting)
            if param in declared:
                continue  # the policy sets it (plan/settings.py, with a superuser)
            if param in snap.superuser_settings or (param == "role" and name in acting):
                yield name, s.database, param


def _declared(ctx: PlanContext, role: str | None, database: int) -> set[str]:
    """The parameters the policy itself declares for `role` there (lowercased)."""
    if role is None:
        return set()
    return {k.lower() for k in declared_settings(ctx, role, database != 0) or {}}


def plan_setting_resets(ctx: PlanContext) -> Iterator[Step]:
    auth, db = ctx.auth, ctx.policy.database.name
    for role, database, param in dangerous_settings(ctx):
        if role is None:
            statement = sql.SQL("ALTER DATABASE {} RESET {}").format(sql.Identifier(db), sql.Identifier(param))
            label_ = f"setting {param} of database {db}"
            reason = f"database {db} must not set {param} for every session: it changes what the policy's roles can do"
            ok, needs = auth.superuser, Need.superuser()
        else:
            where = sql.SQL(" IN DATABASE {}").format(sql.Identifier(db)) if database else sql.SQL("")
            statement = sql.SQL("ALTER ROLE {}{} RESET {}").format(sql.Identifier(role), where, sql.Identifier(param))
            label_ = f"setting {param} of role {role}" + (f" in database {db}" if database else "")
            reason = f"role {role} must not have {param} set for its sessions" + (
                " (every session would act as another role)" if param == "role" else ": only a superuser may set it"
            )
            ok, needs = auth.superuser, Need.superuser()
        yield Step(
            Phase.DATABASE,
            Action.ROLE_SETTING,
            label_,
            reason,
            statement,
            role=role,
            destructive=True,
            needs=None if ok else needs,
            allowed=ok,
            change="reset",
        )


def _outside_default(ctx: PlanContext, objtype: str, schema: str | None) -> tuple[str, bool] | None:
    """(kind, whether the profile applies) of an owner's default-privileges entry this planner owns:
    ON SCHEMAS and LARGE OBJECTS anywhere, and tables, sequences, routines and types in a schema the
    policy does not manage (which it gives the access roles nothing in); None for plan/defaults.py's."""
    k = BY_DEFACL_CODE.get(objtype)
    if k is None:
        return None
    if k.name in OUTSIDE_DEFACL_KINDS:
        return k.name, schema is None or schema in ctx.policy.database.schemas
    if schema is not None and schema not in ctx.policy.database.schemas:
        return k.name, False
    return None


def plan_outside_defaults(ctx: PlanContext) -> Iterator[Step]:
    """The owner's default privileges that plan/defaults.py does not plan (see _outside_default) give
    the access roles no more than their profile and nobody a grant option."""
    snap, owner = ctx.snap, ctx.owner
    owner_role = snap.role_by_name.get(owner)
    if owner_role is None:
        return
    holders = set(ctx.grants.holders)
    schemas = {s.oid: s.name for s in snap.schemas}
    ok = ctx.auth.superuser or ctx.auth.acts_as(owner)
    for d in snap.default_acls:
        schema = schemas.get(d.schema, str(d.schema)) if d.schema else None
        judged = _outside_default(ctx, d.objtype, schema) if d.role == owner_role.oid else None
        if judged is None:
            continue
        kind_name, profiled = judged
        extra: dict[str, set[str]] = {}
        options: dict[str, set[str]] = {}
        for g in d.acl:
            grantee = snap.role_name(g.grantee)
            if grantee is None or grantee == owner or grantee in ctx.ignore:
                continue
            allowed = ctx.grants.anywhere(grantee, kind_name) if grantee in holders and profiled else frozenset()
            if g.privilege not in allowed:
                extra.setdefault(grantee, set()).add(g.privilege)
            elif g.grantable:
                options.setdefault(grantee, set()).add(g.privilege)
        word = kind(kind_name).all_word or ""
        for grantee, privs in sorted(extra.items()):
            yield _defacl_step(ctx, word, schema, grantee, privs, False, ok)
        for grantee, privs in sorted(options.items()):
            yield _defacl_step(ctx, word, schema, grantee, privs, True, ok)


def _defacl_step(
    ctx: PlanContext, word: str, schema: str | None, grantee: str, privs: set[str], option: bool, ok: bool
) -> Step:
    owner = ctx.owner
    action = ChangeAction.REVOKE_GRANT_OPTION if option else ChangeAction.REVOKE
    revoke = acl_statement(Change(action, grantee, frozenset(privs)), sql.SQL(word))
    statement = sql.SQL("{} {}").format(default_privileges_prefix(owner, schema), revoke)
    where = f" in schema {schema}" if schema else ""
    reason = (
        f"{grantee} must not be able to grant privileges on {word.lower()} {owner} creates later{where}"
        if option
        else f"{word.lower()} {owner} creates later{where} must not give {grantee} {', '.join(ordered(privs))}"
    )
    change = ChangeAction.REVOKE_GRANT_OPTION if option else ChangeAction.REVOKE
    return Step(
        Phase.DATABASE,
        Action.DEFAULT_PRIVILEGES,
        f"default privileges of {owner} on {word.lower()}{where}",
        reason,
        statement,
        role=grantee,
        destructive=True,
        needs=None if ok else Need.of((R.MEMBERSHIP, owner)),
        allowed=ok,
        change=change.value,
    )
