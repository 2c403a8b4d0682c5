"""Planners for memberships: access roles lose forbidden ones, deploy logins and a non-superuser admin
get the owner, and members (people, services) get exactly their groups, with the options they declare."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.policy import MembershipSpec
from pgwarden.snapshot import Membership

R = Requirement


def _may_grant(ctx: PlanContext, role: str) -> bool:
    """Whether the admin may GRANT or REVOKE membership in `role`."""
    auth = ctx.auth
    return auth.superuser or role in auth.admin_of or (auth.createrole and not ctx.snap.caps.membership_options)


def plan_memberships(ctx: PlanContext) -> Iterator[Step]:
    """Access roles lose forbidden memberships; deploy logins and a non-superuser admin get the owner's.
    A granted admin membership widens the authority later planners see."""
    yield from _revoke_access_memberships(ctx)
    yield from _grant_deploy_memberships(ctx)
    yield from _grant_admin_membership(ctx)
    yield from plan_member_memberships(ctx)


def _revoke_access_memberships(ctx: PlanContext) -> Iterator[Step]:
    snap, policy, owner = ctx.snap, ctx.policy, ctx.owner
    forbidden = {owner, *policy.owner.deploy_logins, *snap.caps.dangerous_predefined_roles}
    forbidden |= {"pg_read_all_data", "pg_write_all_data"}
    people = {m.name for m in policy.members}  # rights flow from groups to people, never back
    forbidden |= people
    access_names = ctx.access_names
    declared = {(a.name, g.role) for a in policy.access for g in a.also_member_of}
    for m in snap.memberships:
        member, role = snap.role_name(m.member), snap.role_name(m.role)
        if member not in access_names or role is None or (member, role) in declared:
            continue  # also_member_of: planned with the members' memberships
        if role not in forbidden and not (role in access_names and role != member):
            continue
        grantor = snap.role_name(m.grantor)
        statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
        if snap.caps.membership_options and grantor:
            statement = sql.SQL("{} GRANTED BY {}").format(statement, sql.Identifier(grantor))
        ok = _may_grant(ctx, role)
        yield Step(
            Phase.ROLES,
            Action.REVOKE_MEMBERSHIP,
            f"role {member}",
            f"access role {member} must not be a member of {role}: it would "
            + (
                "act as the owner and change the schema"
                if role == owner
                else f"gain the rights of {role}, a member (people get rights from groups, not the other way)"
                if role in people
                else "gain rights beyond its level"
            ),
            statement,
            role=member,
            destructive=True,
            needs=None if ok else Need.of((R.ADMIN_OPTION, role)),
            allowed=ok,
            subject=("membership", role, member),
        )


def _grant_deploy_memberships(ctx: PlanContext) -> Iterator[Step]:
    snap, owner = ctx.snap, ctx.owner
    owner_role = snap.role_by_name.get(owner)
    for deploy in ctx.policy.owner.deploy_logins:
        dep = snap.role_by_name.get(deploy)
        if owner_role and dep and any(m.role == owner_role.oid and m.member == dep.oid for m in snap.memberships):
            continue
        ok = _may_grant(ctx, owner)
        yield Step(
            Phase.ROLES,
            Action.GRANT_MEMBERSHIP,
            f"role {deploy}",
            f"deploy login {deploy} must be able to act as the owner {owner}",
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(deploy)),
            role=deploy,
            needs=None if ok else Need.of((R.ADMIN_OPTION, owner)),
            allowed=ok,
        )


def _grant_admin_membership(ctx: PlanContext) -> Iterator[Step]:
    auth, owner = ctx.auth, ctx.owner
    if auth.superuser or (auth.acts_as(owner) and auth.may_set(owner)):
        return
    ok = owner in auth.admin_of or (auth.createrole and not ctx.snap.caps.membership_options)
    statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(auth.name))
    if ctx.snap.caps.membership_options:
        statement = sql.SQL("{} WITH INHERIT TRUE, SET TRUE").format(statement)
    yield Step(
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
    if ok:
        auth.gain(owner)


# --- members: people and services get their groups, and only those ----------------------------------


def plan_member_memberships(ctx: PlanContext) -> Iterator[Step]:
    """Each member is granted its groups with the declared options (16+) and loses every other
    membership (in additive mode those are withheld)."""
    snap = ctx.snap
    for access in ctx.policy.access:  # access roles' also_member_of: granted with their options
        role = snap.role_by_name.get(access.name)
        rows = [m for m in snap.memberships if role is not None and m.member == role.oid]
        for spec in access.also_member_of:
            group = snap.role_by_name.get(spec.role)
            yield from _membership(
                ctx, access.name, spec, [m for m in rows if group is not None and m.role == group.oid]
            )
    for member in ctx.policy.members:
        role = snap.role_by_name.get(member.name)
        rows = [m for m in snap.memberships if role is not None and m.member == role.oid]
        specs: dict[str, MembershipSpec] = {}
        for spec in member.member_of:
            specs.setdefault(spec.role, spec)  # a group listed twice: the first says it
        for spec in specs.values():
            group = snap.role_by_name.get(spec.role)
            yield from _membership(
                ctx, member.name, spec, [m for m in rows if group is not None and m.role == group.oid]
            )
        declared = {spec.role for spec in member.member_of}
        groups = ", ".join(sorted(declared))
        for m in rows:
            name = snap.role_name(m.role)
            if name is None or name in declared:
                continue
            reason = (
                f"{member.name} must be a member of {groups} only: membership in {name} gives it "
                "rights the policy does not"
            )
            yield _member_step(ctx, Action.REVOKE_MEMBERSHIP, member.name, name, _revoke_row(ctx, m), reason, m)


def _membership(ctx: PlanContext, member: str, spec: MembershipSpec, rows: list[Membership]) -> Iterator[Step]:
    """GRANT the membership, or correct its options. On 16+ each grantor's grant has its own options:
    GRANT by the admin updates the admin's own grant in place (verified on 16-18), the others are
    revoked; 14-15 have one grant per pair and only ADMIN OPTION to correct."""
    group = spec.role
    if not ctx.snap.caps.membership_options:
        yield from _membership_before_16(ctx, member, spec, rows)
        return
    mine_grantor = _grantor(ctx)
    good = [r for r in rows if r.inherit == spec.inherit and r.set == spec.set and r.admin == spec.admin]
    mine = next((r for r in rows if r.grantor == mine_grantor), None)
    for r in rows:
        if r not in good and r is not mine:
            by = ctx.snap.role_name(r.grantor)
            reason = f"{member}'s membership in {group} granted by {by} {_options_differ(r, spec)}"
            yield _member_step(ctx, Action.MEMBERSHIP_OPTIONS, member, group, _revoke_row(ctx, r), reason, r)
    options = sql.SQL("WITH INHERIT {}, SET {}").format(sql.SQL(_tf(spec.inherit)), sql.SQL(_tf(spec.set)))
    if spec.admin:
        options = sql.SQL("{}, ADMIN TRUE").format(options)
    grant = sql.SQL("GRANT {} TO {} {}").format(sql.Identifier(group), sql.Identifier(member), options)
    wanted = f"INHERIT {_tf(spec.inherit)}, SET {_tf(spec.set)}"
    if mine is None:
        if not good:
            yield _member_step(
                ctx,
                Action.GRANT_MEMBERSHIP,
                member,
                group,
                grant,
                f"{member} must be a member of {group} ({wanted})",
            )
        return
    if (mine.inherit, mine.set) != (spec.inherit, spec.set):
        reason = f"{member}'s membership in {group} must be {wanted}"
        takes = (mine.inherit and not spec.inherit) or (mine.set and not spec.set)
        yield _member_step(ctx, Action.MEMBERSHIP_OPTIONS, member, group, grant, reason, destructive=bool(takes))
    if mine.admin and not spec.admin:
        yield _admin_step(ctx, member, group, mine)
    elif spec.admin and not mine.admin:
        reason = f"{member}'s membership in {group} must carry ADMIN OPTION"
        yield _member_step(ctx, Action.MEMBERSHIP_OPTIONS, member, group, grant, reason, destructive=False)


def _membership_before_16(
    ctx: PlanContext, member: str, spec: MembershipSpec, rows: list[Membership]
) -> Iterator[Step]:
    """14-15: one grant per pair; only its ADMIN OPTION can differ."""
    group = spec.role
    if not rows:
        statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member))
        if spec.admin:
            statement = sql.SQL("{} WITH ADMIN OPTION").format(statement)
        reason = f"{member} must be a member of {group}"
        yield _member_step(ctx, Action.GRANT_MEMBERSHIP, member, group, statement, reason)
    elif any(r.admin for r in rows) and not spec.admin:
        yield _admin_step(ctx, member, group, rows[0])
    elif spec.admin and not any(r.admin for r in rows):  # 14-15 add the option to the existing grant
        statement = sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(group), sql.Identifier(member))
        reason = f"{member}'s membership in {group} must carry ADMIN OPTION"
        yield _member_step(ctx, Action.MEMBERSHIP_OPTIONS, member, group, statement, reason, destructive=False)


def _tf(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _options_differ(row: Membership, spec: MembershipSpec) -> str:
    if row.admin != spec.admin:
        return "carries ADMIN OPTION (it could make any role a member)" if row.admin else "lacks ADMIN OPTION"
    return (
        f"is INHERIT {_tf(bool(row.inherit))}, SET {_tf(bool(row.set))}; the policy says "
        f"INHERIT {_tf(spec.inherit)}, SET {_tf(spec.set)} (a grant by another role cannot be changed, only revoked)"
    )


def _grantor(ctx: PlanContext) -> int:
    """The grantor a GRANT by the admin records on 16+: the bootstrap superuser for any superuser."""
    return 10 if ctx.auth.superuser else ctx.snap.server.current_role_oid


def _granted_by(ctx: PlanContext, statement: sql.Composed, grantor: int) -> sql.Composed:
    """16+: name a grantor that is not a superuser (a superuser's REVOKE removes the superusers' grant)."""
    role = ctx.snap.roles.get(grantor)
    if not ctx.snap.caps.membership_options or role is None or role.superuser:
        return statement
    return sql.SQL("{} GRANTED BY {}").format(statement, sql.Identifier(role.name))


def _revoke_row(ctx: PlanContext, row: Membership) -> sql.Composed:
    group, member = ctx.snap.role_name(row.role) or "", ctx.snap.role_name(row.member) or ""
    statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(member))
    return _granted_by(ctx, statement, row.grantor)


def _admin_step(ctx: PlanContext, member: str, group: str, row: Membership) -> Step:
    statement = sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(sql.Identifier(group), sql.Identifier(member))
    reason = f"{member} must not hold ADMIN OPTION on {group}: it could make any role a member of it"
    return _member_step(
        ctx, Action.MEMBERSHIP_OPTIONS, member, group, _granted_by(ctx, statement, row.grantor), reason, row, admin=True
    )


def _member_step(
    ctx: PlanContext,
    action: Action,
    member: str,
    group: str,
    statement: sql.Composed,
    reason: str,
    row: Membership | None = None,
    *,
    destructive: bool | None = None,
    admin: bool = False,
) -> Step:
    """A membership step of `member` in `group`; `row` is the grant it revokes (one per grantor on 16+)."""
    ok, needs = _may_grant(ctx, group), Need.of((R.ADMIN_OPTION, group))
    change = f"member of {group}"
    if row is not None and ctx.snap.caps.membership_options:
        change += f" granted by {ctx.snap.role_name(row.grantor)}"
        grantor = ctx.snap.roles.get(row.grantor)
        if grantor is not None and grantor.superuser and not ctx.auth.superuser:
            ok, needs = False, Need.superuser()  # 16+: only a superuser takes back a superuser's grant
    return Step(
        Phase.ROLES,
        action,
        f"role {member}",
        reason,
        statement,
        role=member,
        destructive=row is not None if destructive is None else destructive,
        needs=None if ok else needs,
        allowed=ok,
        change=change + (" admin" if admin else ""),
        subject=("membership", group, member),
    )
