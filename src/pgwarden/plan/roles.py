"""Planners for the cluster's roles: existence, attributes, passwords, memberships, deploy-login settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import sql

from pgwarden import scram
from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.policy import Policy
from pgwarden.snapshot import Role

R = Requirement

#: Role attributes pgwarden enforces: attribute -> (SQL when on, SQL when off).
ATTRIBUTE_SQL: Mapping[str, tuple[str, str]] = {
    "login": ("LOGIN", "NOLOGIN"),
    "superuser": ("SUPERUSER", "NOSUPERUSER"),
    "createdb": ("CREATEDB", "NOCREATEDB"),
    "createrole": ("CREATEROLE", "NOCREATEROLE"),
    "replication": ("REPLICATION", "NOREPLICATION"),
    "bypassrls": ("BYPASSRLS", "NOBYPASSRLS"),
}
#: Attributes only a superuser may give or take away.
SUPERUSER_ATTRIBUTES = frozenset({"superuser", "replication", "bypassrls"})

ALTER_ROLE_NEED = Need.of(R.CREATEROLE, note="with ADMIN OPTION on the role on 16+")


def attribute_sql(attribute: str, value: bool) -> str:
    return ATTRIBUTE_SQL[attribute][0 if value else 1]


@dataclass(frozen=True)
class RoleWant:
    name: str
    what: str  # "owner", "deploy login", "readwrite access role", ...
    login: bool
    attrs: Mapping[str, bool]  # attribute -> wanted value (only the ones we enforce)
    password_env: str | None


def wanted_roles(policy: Policy) -> list[RoleWant]:
    o = policy.owner
    owner_attrs = {"login": o.login, "superuser": False, "createdb": o.createdb, "createrole": o.createrole}
    out = [RoleWant(o.name, "owner", o.login, owner_attrs, o.password_env if o.login else None)]
    deploy_envs = dict(policy.login_roles())
    for deploy in o.deploy_logins:
        out.append(RoleWant(deploy, "deploy login", True, {"login": True, "superuser": False}, deploy_envs[deploy]))
    for a in policy.access:
        attrs = {attr: False for attr in ATTRIBUTE_SQL} | {"login": a.login}
        what = f"{policy.level_of(a.name) or ''} access role".strip()
        out.append(RoleWant(a.name, what, a.login, attrs, a.password_env if a.login else None))
    return out


def plan_roles(ctx: PlanContext, secrets: Mapping[str, str]) -> None:
    for want in wanted_roles(ctx.policy):
        role = ctx.snap.role_by_name.get(want.name)
        password = secrets.get(want.password_env) if want.password_env else None
        if want.password_env and password is None:
            ctx.notes.append(
                f"{want.password_env} is not set: role {want.name} "
                + ("is created without a password" if role is None else "keeps its current password")
            )
        if role is None:
            _create_role(ctx, want, password)
            continue
        _alter_role(ctx, want, role)
        if password is not None and want.password_env:
            _set_password(ctx, want, role, password)


def _verifier(ctx: PlanContext, env: str, password: str) -> str:
    """The session's verifier (libpq, the server's iteration count); computed here only for callers
    that plan without a session (then with a random salt)."""
    return ctx.verifiers.get(env) or scram.make_verifier(password)


def _create_role(ctx: PlanContext, want: RoleWant, password: str | None) -> None:
    auth = ctx.auth
    options: list[sql.Composable] = [sql.SQL(attribute_sql(a, v)) for a, v in want.attrs.items()]
    display = list(options)
    if password is not None and want.password_env:
        options.append(sql.SQL("PASSWORD {}").format(sql.Literal(_verifier(ctx, want.password_env, password))))
        display.append(sql.SQL("PASSWORD :{}").format(sql.Literal(want.password_env)))
    ok, needs = auth.superuser or auth.createrole, Need.of(R.CREATEROLE)
    if auth.createrole and not auth.superuser and want.attrs.get("createdb") and not auth.createdb:
        ok, needs = False, Need.of(R.CREATEROLE, R.CREATEDB)  # 16+: CREATEROLE cannot give what it lacks (F3.3)
    reason = f"the {want.what} must exist"
    if want.what == "owner" and not want.attrs.get("createrole"):
        reason += " (without CREATEROLE: on PostgreSQL 14-15 it is nearly superuser)"
    name = sql.Identifier(want.name)
    ctx.add(
        Step(
            Phase.ROLES,
            Action.CREATE_ROLE,
            f"role {want.name}",
            reason,
            sql.SQL("CREATE ROLE {} WITH {}").format(name, sql.SQL(" ").join(options)),
            role=want.name,
            display_sql=sql.SQL("CREATE ROLE {} WITH {}").format(name, sql.SQL(" ").join(display)),
            needs=None if ok else needs,
            allowed=ok,
        )
    )
    if auth.createrole and not auth.superuser and ctx.snap.caps.membership_options:
        auth.admin_of.add(want.name)  # 16+: the creator gets ADMIN OPTION (F3.1)


def _alter_role(ctx: PlanContext, want: RoleWant, role: Role) -> None:
    auth = ctx.auth
    wrong = {a: v for a, v in want.attrs.items() if getattr(role, a) != v}
    if not wrong:
        return
    ok, needs = auth.may_alter_role(want.name, True), ALTER_ROLE_NEED
    if not auth.superuser and (SUPERUSER_ATTRIBUTES & set(wrong)):
        ok, needs = False, Need.superuser()
    if not auth.superuser and "createdb" in wrong and not auth.createdb:
        ok, needs = False, Need.of(R.CREATEROLE, R.CREATEDB)
    words = [attribute_sql(a, v) for a, v in sorted(wrong.items())]
    ctx.add(
        Step(
            Phase.ROLES,
            Action.ALTER_ROLE,
            f"role {want.name}",
            f"the {want.what} must be " + " ".join(words),
            sql.SQL("ALTER ROLE {} WITH {}").format(
                sql.Identifier(want.name), sql.SQL(" ").join(sql.SQL(w) for w in words)
            ),
            role=want.name,
            destructive=any(not v for v in wrong.values()),
            needs=None if ok else needs,
            allowed=ok,
            subject=("role-attributes", want.name),
        )
    )


def _set_password(ctx: PlanContext, want: RoleWant, role: Role, password: str) -> None:
    snap, env = ctx.snap, want.password_env
    assert env is not None
    if snap.passwords is not None and scram.matches(password, snap.passwords.get(role.oid)):
        return
    if snap.passwords is None and snap.password_checks.get(want.name):
        return  # logging in with it worked: the password is already set
    reason = (
        f"set the password from {env}"
        if snap.passwords is not None
        else f"set the password from {env} (the stored verifier is readable by "
        "superusers only, so pgwarden cannot tell whether it changed)"
    )
    # any role may change its own password
    ok = snap.server.current_role == want.name or ctx.auth.may_alter_role(want.name, True)
    name = sql.Identifier(want.name)
    ctx.add(
        Step(
            Phase.ROLES,
            Action.SET_PASSWORD,
            f"role {want.name}",
            reason,
            sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(name, sql.Literal(_verifier(ctx, env, password))),
            role=want.name,
            display_sql=sql.SQL("ALTER ROLE {} WITH PASSWORD :{}").format(name, sql.Literal(env)),
            needs=None if ok else ALTER_ROLE_NEED,
            allowed=ok,
            subject=("role-password", want.name),
        )
    )


# --- memberships ---------------------------------------------------------------------------------


def _may_grant(ctx: PlanContext, role: str) -> bool:
    """Whether the admin may GRANT or REVOKE membership in `role`."""
    auth = ctx.auth
    return auth.superuser or role in auth.admin_of or (auth.createrole and not ctx.snap.caps.membership_options)


def plan_memberships(ctx: PlanContext) -> None:
    """Access roles lose forbidden memberships; deploy logins and a non-superuser admin get the owner's.
    A granted admin membership widens the authority later planners see."""
    _revoke_access_memberships(ctx)
    _grant_deploy_memberships(ctx)
    _grant_admin_membership(ctx)


def _revoke_access_memberships(ctx: PlanContext) -> None:
    snap, policy, owner = ctx.snap, ctx.policy, ctx.owner
    forbidden = {owner, *policy.owner.deploy_logins, *snap.caps.dangerous_predefined_roles}
    forbidden |= {"pg_read_all_data", "pg_write_all_data"}
    access_names = ctx.access_names
    for m in snap.memberships:
        member, role = snap.role_name(m.member), snap.role_name(m.role)
        if member not in access_names or role is None:
            continue
        if role not in forbidden and not (role in access_names and role != member):
            continue
        grantor = snap.role_name(m.grantor)
        statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
        if snap.caps.membership_options and grantor:
            statement = sql.SQL("{} GRANTED BY {}").format(statement, sql.Identifier(grantor))
        ok = _may_grant(ctx, role)
        ctx.add(
            Step(
                Phase.ROLES,
                Action.REVOKE_MEMBERSHIP,
                f"role {member}",
                f"access role {member} must not be a member of {role}: it would "
                + ("act as the owner and change the schema" if role == owner else "gain rights beyond its level"),
                statement,
                role=member,
                destructive=True,
                needs=None if ok else Need.of((R.ADMIN_OPTION, role)),
                allowed=ok,
                subject=("membership", role, member),
            )
        )


def _grant_deploy_memberships(ctx: PlanContext) -> None:
    snap, owner = ctx.snap, ctx.owner
    owner_role = snap.role_by_name.get(owner)
    for deploy in ctx.policy.owner.deploy_logins:
        dep = snap.role_by_name.get(deploy)
        if owner_role and dep and any(m.role == owner_role.oid and m.member == dep.oid for m in snap.memberships):
            continue
        ok = _may_grant(ctx, owner)
        ctx.add(
            Step(
                Phase.ROLES,
                Action.GRANT_MEMBERSHIP,
                f"role {deploy}",
                f"deploy login {deploy} must be able to act as the owner {owner}",
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(deploy)),
                role=deploy,
                needs=None if ok else Need.of((R.ADMIN_OPTION, owner)),
                allowed=ok,
            )
        )


def _grant_admin_membership(ctx: PlanContext) -> None:
    auth, owner = ctx.auth, ctx.owner
    if auth.superuser or (auth.acts_as(owner) and auth.may_set(owner)):
        return
    ok = owner in auth.admin_of or (auth.createrole and not ctx.snap.caps.membership_options)
    statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(auth.name))
    if ctx.snap.caps.membership_options:
        statement = sql.SQL("{} WITH INHERIT TRUE, SET TRUE").format(statement)
    ctx.add(
        Step(
            Phase.ROLES,
            Action.GRANT_MEMBERSHIP,
            f"role {auth.name}",
            f"the admin {auth.name} is not a superuser: it must act as the owner {owner} to create "
            "its database, grant on its objects and set its default privileges",
            statement,
            role=auth.name,
            needs=None if ok else Need.of((R.ADMIN_OPTION, owner)),
            allowed=ok,
        )
    )
    if ok:
        auth.gain(owner)


# --- role settings (deploy logins act as the owner) ------------------------------------------------


def plan_role_settings(ctx: PlanContext) -> None:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    db_oid = snap.database.oid if snap.database else None
    for deploy in policy.owner.deploy_logins:
        role = snap.role_by_name.get(deploy)
        current: tuple[str, ...] = ()
        if role is not None and db_oid is not None:
            for s in snap.role_settings:
                if s.role == role.oid and s.database == db_oid:
                    current = s.settings
        if any(s in (f"role={owner}", f'role="{owner}"') for s in current):
            continue
        ok = auth.superuser or (auth.createrole and auth.may_alter_role(deploy, role is not None))
        ctx.add(
            Step(
                Phase.DATABASE,
                Action.ROLE_SETTING,
                f"role {deploy}",
                f"every session of deploy login {deploy} in {policy.database.name} must act as {owner}, "
                "so that what it creates is owned by the owner (works behind poolers too)",
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET role = {}").format(
                    sql.Identifier(deploy), sql.Identifier(policy.database.name), sql.Literal(owner)
                ),
                role=deploy,
                needs=None if ok else Need.of(R.CREATEROLE),
                allowed=ok,
            )
        )
