"""Planners for the database itself and its schemas: existence, ownership, CONNECT/TEMPORARY, USAGE/CREATE."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator

from psycopg import sql

from pgwarden import acl
from pgwarden.acl import PUBLIC, Change, ChangeAction, Grantee, Wanted, show
from pgwarden.kinds import kind
from pgwarden.plan.context import PlanContext, acl_step, owner_step
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step, acl_subject, owner_subject
from pgwarden.snapshot import Schema

R = Requirement


def plan_database(ctx: PlanContext) -> Iterator[Step]:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    db, name = snap.database, policy.database.name
    major = snap.caps.major
    owner_privs = kind("database").owner_privileges(major)
    target = sql.SQL("DATABASE {}").format(sql.Identifier(name))
    if db is None:
        yield from _create_database(ctx)
        # a new database gets acldefault('d', owner): the owner's CTc and PUBLIC's Tc
        actual = acl.held({owner: owner_privs, PUBLIC: kind("database").public})
        grantor: str | None = None
    else:
        current_owner = snap.role_name(db.owner) or ""
        if current_owner != owner:
            ok = auth.superuser or (auth.acts_as(current_owner) and auth.createdb and auth.may_set(owner))
            yield owner_step(
                f"database {name}",
                target,
                f"the database must be owned by {owner} (now {current_owner})",
                owner,
                ok,
                Need.of((R.MEMBERSHIP, current_owner), (R.MEMBERSHIP, owner), R.CREATEDB),
                subject=owner_subject("pg_database", db.oid),
            )
        if current_owner != owner and ctx.additive:
            return  # its grants follow the move, which additive mode does not make
        actual = ctx.acl(db.acl, db.owner)
        grantor = owner
    allowed = auth.acts_as(owner)
    for change in acl.diff(actual, _wanted(ctx, owner_privs, grantor)):
        subject = acl_subject("pg_database", db.oid, change.grantee) if db is not None else None
        needs = Need.of((R.MEMBERSHIP, owner))
        yield acl_step(change, target, f"database {name}", _reason(change), allowed, needs, subject=subject)


def _wanted(ctx: PlanContext, owner_privs: Iterable[str], grantor: str | None) -> Wanted:
    """The database's ACL as the policy has it: the owner's, the access roles' and members' (with the
    grant options the policy keeps), CONNECT for the deploy logins; PUBLIC's left alone without hardening."""
    policy, owner = ctx.policy, ctx.owner
    expected: dict[Grantee, frozenset[str]] = {owner: frozenset(owner_privs)}
    for a in policy.access:
        expected[a.name] = ctx.grants.database(a.name)
    for m in policy.members:
        expected[m.name] = ctx.grants.member_database(m.name)
    for deploy in policy.owner.deploy_logins:
        expected[deploy] = frozenset({"CONNECT"})
    tolerated: dict[Grantee, frozenset[str]] = {}
    if not policy.hardening.revoke_public_connect:
        tolerated[PUBLIC] = frozenset({"CONNECT", "TEMPORARY"})
    grantable = {a.name: ctx.grants.options.database(a.name) for a in policy.access}
    return Wanted(expected, tolerated, owner=owner, grantor=grantor, ignore=ctx.ignore, grantable=grantable)


def _reason(change: Change) -> str:
    if change.grantee is None and change.action == ChangeAction.REVOKE:
        return "hardening: roles outside the policy must not connect or create temporary tables"
    if change.action == ChangeAction.GRANT:
        return f"{show(change.grantee)} must be able to connect"
    return f"{show(change.grantee)} must hold only what the policy gives it on the database"


def _create_database(ctx: PlanContext) -> Iterator[Step]:
    auth, owner, name = ctx.auth, ctx.owner, ctx.policy.database.name
    ok = auth.superuser or (auth.createdb and auth.may_set(owner))
    yield Step(
        Phase.CREATE_DATABASE,
        Action.CREATE_DATABASE,
        f"database {name}",
        f"the database must exist, owned by {owner}",
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)),
        needs=None if ok else Need.of(R.CREATEDB, (R.MEMBERSHIP, owner)),
        allowed=ok,
    )


def plan_schemas(ctx: PlanContext) -> Iterator[Step]:
    """Managed schemas exist, are owned by the owner and give access roles USAGE only; outside them,
    no access role may CREATE anywhere and PUBLIC may not CREATE in public."""
    for name in ctx.policy.database.schemas:
        yield from _plan_managed_schema(ctx, name)
    for schema in ctx.snap.schemas:
        if schema.name not in ctx.policy.database.schemas and not schema.extension:
            yield from _plan_other_schema(ctx, schema)


def _plan_managed_schema(ctx: PlanContext, name: str) -> Iterator[Step]:
    snap, auth, owner = ctx.snap, ctx.auth, ctx.owner
    schema = snap.schema_by_name(name)
    target = sql.SQL("SCHEMA {}").format(sql.Identifier(name))
    if schema is None:
        ok = auth.superuser or auth.acts_as(owner)
        yield Step(
            Phase.DATABASE,
            Action.CREATE_SCHEMA,
            f"schema {name}",
            f"managed schema {name} must exist, owned by {owner}",
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(name), sql.Identifier(owner)),
            needs=None if ok else Need.of((R.MEMBERSHIP, owner)),
            allowed=ok,
        )
        acl_owner, grantor, allowed = owner, None, ok
        actual = acl.held({owner: ("USAGE", "CREATE")})
    else:
        acl_owner, allowed, moved = yield from _schema_owner(ctx, schema)
        if moved and ctx.additive:
            return  # its grants follow the move, which additive mode does not make
        actual = ctx.acl(schema.acl, schema.owner if moved else None)
        grantor = acl_owner
    expected: dict[Grantee, frozenset[str]] = {acl_owner: frozenset({"USAGE", "CREATE"})}
    if acl_owner not in (owner, "pg_database_owner"):
        expected[owner] = frozenset({"USAGE", "CREATE"})  # public kept by its owner: see _schema_owner
    for a in ctx.policy.access:
        expected[a.name] = ctx.grants.schema(a.name, name)
    grantable = {a.name: ctx.grants.options.schema(a.name, name) for a in ctx.policy.access}
    wanted = Wanted(
        expected,
        {PUBLIC: frozenset({"USAGE"})},
        owner=acl_owner,
        grantor=grantor,
        ignore=ctx.ignore,
        grantable=grantable,
    )
    owned_by = owner if acl_owner in (owner, "pg_database_owner") else acl_owner
    needs = Need.of((R.PRIVILEGES_OF, owned_by), note=f"the owner of schema {name}")
    for change in acl.diff(actual, wanted):
        reason = _schema_reason(ctx, change, name)
        subject = acl_subject("pg_namespace", schema.oid, change.grantee) if schema is not None else None
        yield acl_step(change, target, f"schema {name}", reason, allowed, needs, subject=subject)


def _schema_owner(ctx: PlanContext, schema: Schema) -> Generator[Step, None, tuple[str, bool, bool]]:
    """(who owns the schema's ACL once the plan ran, whether its grants may be changed, whether it moves)."""
    auth, owner = ctx.auth, ctx.owner
    current = ctx.snap.role_name(schema.owner) or ""
    may_move = auth.superuser or (auth.acts_as(current) and auth.may_set(owner))
    if current == "pg_database_owner":
        return current, auth.acts_as(owner), False  # the database owner owns it (15+)
    if current != owner and schema.name == "public" and not may_move:
        # public's owner (the bootstrap superuser on 14) cannot be changed by this admin: the
        # owner gets CREATE there instead, and what needs public's owner is reported as such
        return current, auth.acts_as(current), False
    if current != owner:
        yield owner_step(
            f"schema {schema.name}",
            sql.SQL("SCHEMA {}").format(sql.Identifier(schema.name)),
            f"managed schema {schema.name} must be owned by {owner} (now {current})",
            owner,
            may_move,
            Need.of((R.MEMBERSHIP, current)),
            subject=owner_subject("pg_namespace", schema.oid),
        )
        return owner, may_move, True
    return owner, auth.acts_as(owner), False


def _schema_reason(ctx: PlanContext, change: Change, name: str) -> str:
    """Why, in words true of exactly what the step's statement does (see tests/test_messages_exact.py)."""
    who, privs = show(change.grantee), ", ".join(sorted(change.privs))
    if change.action == ChangeAction.REVOKE_GRANT_OPTION:
        return f"{who} must not be able to grant {privs} on schema {name} to others (it keeps {privs})"
    if change.grantee is not None and change.grantee not in ctx.row_roles:
        return f"{who} is not in the policy and must hold nothing on schema {name}"
    if change.action == ChangeAction.GRANT:
        return f"{who} must be able to use schema {name}"
    if change.privs == {"CREATE"}:
        return f"only the owner may create objects in schema {name}"
    wanted = ctx.grants.schema(change.grantee, name) if change.grantee is not None else frozenset({"USAGE"})
    if not wanted:
        return f"{who} has no grant on schema {name} in this database and must hold nothing there ({privs})"
    return f"{who} must hold only {', '.join(sorted(wanted))} on schema {name} ({privs} is extra)"


def _plan_other_schema(ctx: PlanContext, schema: Schema) -> Iterator[Step]:
    snap, auth = ctx.snap, ctx.auth
    schema_owner = snap.role_name(schema.owner) or ""
    allowed = auth.acts_as(ctx.owner if schema_owner == "pg_database_owner" else schema_owner)
    access_names = ctx.row_roles
    creators = {snap.role_name(g.grantee) for g in schema.acl if g.privilege == "CREATE"}
    for g in sorted(creators, key=str):
        if g is not None and g not in access_names:
            continue
        if g is None and (schema.name != "public" or not ctx.policy.hardening.revoke_public_create):
            continue
        reason = (
            "PUBLIC must not create objects in schema public (the PostgreSQL 14 default, kept by upgrades)"
            if g is None
            else f"access role {g} must not create objects anywhere"
        )
        yield acl_step(
            Change(ChangeAction.REVOKE, g, frozenset({"CREATE"})),
            sql.SQL("SCHEMA {}").format(sql.Identifier(schema.name)),
            f"schema {schema.name}",
            reason,
            allowed,
            Need.of((R.PRIVILEGES_OF, schema_owner), note=f"the owner of schema {schema.name}"),
            subject=acl_subject("pg_namespace", schema.oid, g),
        )
