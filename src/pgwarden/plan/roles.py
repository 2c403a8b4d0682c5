"""Planners for the cluster's roles: existence, attributes and passwords (memberships: plan/members.py;
settings: plan/settings.py; declared limits and comments: plan/attributes.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from psycopg import sql

from pgwarden.caps import Capabilities
from pgwarden.errors import PolicyError
from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.policy import MemberSpec, Policy
from pgwarden.providers import detect
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


#: On 14-15 a member's inheritance is its own attribute (16+: an option of each membership).
INHERIT_SQL = ("INHERIT", "NOINHERIT")


def attribute_sql(attribute: str, value: bool) -> str:
    words = INHERIT_SQL if attribute == "inherit" else ATTRIBUTE_SQL[attribute]
    return words[0 if value else 1]


@dataclass(frozen=True)
class RoleWant:
    name: str
    what: str  # "owner", "deploy login", "readwrite access role", ...
    login: bool
    attrs: Mapping[str, bool]  # attribute -> wanted value (only the ones we enforce)
    password_env: str | None


def wanted_roles(policy: Policy, caps: Capabilities | None = None) -> list[RoleWant]:
    """The policy's roles with the attributes they must have; `caps` (the server's) adds a member's
    INHERIT attribute on 14-15, where its memberships have no options."""
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
    for m in policy.members:
        attrs = {attr: False for attr in ATTRIBUTE_SQL} | {"login": m.login}
        if caps is not None and not caps.membership_options:
            attrs["inherit"] = member_inherit(m, caps)
        what = "member of " + ", ".join(ms.role for ms in m.member_of)
        out.append(RoleWant(m.name, what, m.login, attrs, m.password_env if m.login else None))
    return out


def member_inherit(member: MemberSpec, caps: Capabilities) -> bool:
    """14-15: what INHERIT attribute says the member's memberships (they have no options there).
    What those versions cannot say is a PolicyError, never silently dropped."""
    version = f"PostgreSQL {caps.major}"
    no_set = [ms.role for ms in member.member_of if not ms.set]
    if no_set:
        raise PolicyError(
            f"role {member.name}: set = false on its membership in {no_set[0]} needs PostgreSQL 16 "
            f"(membership options); the server is {version}",
            hint=f"on {version} every member may SET ROLE to its groups: remove `set = false` for {member.name}",
        )
    inherits = {ms.inherit for ms in member.member_of}
    if len(inherits) > 1:
        raise PolicyError(
            f"role {member.name}: some of its memberships inherit and some do not, which needs PostgreSQL 16 "
            f"(membership options); the server is {version}",
            hint=f"on {version} inheritance is the member's INHERIT attribute: give every membership of "
            f"{member.name} the same `inherit`",
        )
    return inherits.pop() if inherits else True


def plan_roles(ctx: PlanContext, secrets: Mapping[str, str]) -> Iterator[Step]:
    for want in wanted_roles(ctx.policy, ctx.snap.caps):
        role = ctx.snap.role_by_name.get(want.name)
        password = secrets.get(want.password_env) if want.password_env else None
        if want.password_env and password is None:
            ctx.notes.append(
                f"{want.password_env} is not set: role {want.name} "
                + ("is created without a password" if role is None else "keeps its current password")
            )
        if role is None:
            yield from _create_role(ctx, want, password)
            continue
        yield from _alter_role(ctx, want, role)
        if password is not None and want.password_env:
            yield from _set_password(ctx, want, role, password)


def _verifier(ctx: PlanContext, env: str, password: str) -> str:
    """The session's verifier (libpq, the server's iteration count); computed here only for callers
    that plan without a session (then with a random salt)."""
    from pgwarden import scram  # only with a password to set (stringprep, unicodedata: start-up)

    return ctx.verifiers.get(env) or scram.make_verifier(password)


def _create_role(ctx: PlanContext, want: RoleWant, password: str | None) -> Iterator[Step]:
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
    yield Step(
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
    if auth.createrole and not auth.superuser and ctx.snap.caps.membership_options:
        auth.admin_of.add(want.name)  # 16+: the creator gets ADMIN OPTION (F3.1)


def _alter_role(ctx: PlanContext, want: RoleWant, role: Role) -> Iterator[Step]:
    auth = ctx.auth
    wrong = {a: v for a, v in want.attrs.items() if getattr(role, a) != v}
    if not wrong:
        return
    snap = ctx.snap
    platform = detect(snap.role_by_name, snap.server.settings, snap.server.extensions).provider
    if want.name in platform.project_roles:
        # a role the provider made for the project (Supabase's service_role): the policy manages what it
        # holds, the provider its attributes; check still reports a dangerous one (access.attribute)
        kept = " ".join(attribute_sql(a, not v) for a, v in sorted(wrong.items()))
        ctx.notes.append(f"role {want.name} keeps {kept}: {platform.name} gives it, pgwarden does not alter it")
        return
    ok, needs = auth.may_alter_role(want.name, True), ALTER_ROLE_NEED
    if not auth.superuser and (SUPERUSER_ATTRIBUTES & set(wrong)):
        ok, needs = False, Need.superuser()
    if not auth.superuser and "createdb" in wrong and not auth.createdb:
        ok, needs = False, Need.of(R.CREATEROLE, R.CREATEDB)
    words = [attribute_sql(a, v) for a, v in sorted(wrong.items())]
    yield Step(
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


def _set_password(ctx: PlanContext, want: RoleWant, role: Role, password: str) -> Iterator[Step]:
    snap, env = ctx.snap, want.password_env
    assert env is not None
    from pgwarden import scram  # only with a password to compare (stringprep, unicodedata: start-up)

    if snap.passwords is not None and scram.matches(password, snap.passwords.get(role.oid)):
        return
    if snap.passwords is None and snap.password_checks.get(want.name):
        return  # logging in with it worked: the password is already set
    # a role with no password yet loses nothing by getting one: additive mode sets it too (Step.takes_away)
    first = snap.passwords is not None and not snap.passwords.get(role.oid)
    reason = (
        f"LOGIN role {want.name} has no password: set it from {env}"
        if first
        else f"set the password from {env}"
        if snap.passwords is not None
        else f"set the password from {env} (the stored verifier is readable by "
        "superusers only, so pgwarden cannot tell whether it changed)"
    )
    # any role may change its own password
    ok = snap.server.current_role == want.name or ctx.auth.may_alter_role(want.name, True)
    name = sql.Identifier(want.name)
    yield Step(
        Phase.ROLES,
        Action.SET_PASSWORD,
        f"role {want.name}",
        reason,
        sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(name, sql.Literal(_verifier(ctx, env, password))),
        role=want.name,
        display_sql=sql.SQL("ALTER ROLE {} WITH PASSWORD :{}").format(name, sql.Literal(env)),
        needs=None if ok else ALTER_ROLE_NEED,
        allowed=ok,
        change="first-password" if first else "",
        subject=("role-password", want.name),
    )
