"""Roles outside the policy that can act as one of its roles: who enters, by which membership, and the
planner that takes back an entry into the owner (only the policy's deploy logins may act as it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.policy import Policy
from pgwarden.rolegraph import Edge, membership_edges
from pgwarden.snapshot import Snapshot

R = Requirement


@dataclass(frozen=True)
class Entry:
    """`member`, a role outside the policy, is a direct member of the policy's role `role` by a usable
    membership (INHERIT, SET or ADMIN OPTION, which lets it grant itself the rest); `reaches` is
    "owner" when `role` is the owner or a deploy login (whose sessions act as the owner), else
    "access". `logins`: every login outside the policy that comes in through it (itself included,
    then those that reach `member` through other roles outside the policy), with their paths."""

    member: str
    role: str
    reaches: Literal["owner", "access"]
    edge: Edge
    paths: tuple[tuple[str, ...], ...]
    administrator: bool  # CREATEROLE: an administrator of roles; apply leaves its memberships alone

    @property
    def logins(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.paths)


def trusted(policy: Policy, snap: Snapshot) -> set[str]:
    """Roles outside the policy whose memberships are not findings: superusers (they are every role
    anyway), the admin running pgwarden (the plan makes a non-superuser admin a member of the owner),
    the roles the policy ignores and those it retires (plan/retire.py takes their memberships), and
    the issuers of leased logins."""
    out = {r.name for r in snap.roles.values() if r.superuser}
    out.add(snap.server.current_role)
    out |= set(policy.ignore.roles) | {r.name for r in policy.retired}
    out |= {lease.issuer for lease in policy.leased if lease.issuer}  # ADMIN on the group is its job
    out.add("pg_database_owner")  # its only member is the database's owner
    return out


def entries(policy: Policy, snap: Snapshot) -> list[Entry]:
    """Every usable membership by which a role outside the policy (and not trusted) enters one of the
    policy's roles, with the outside logins that come in through it. Pure; breadth-first downwards."""
    inside = set(policy.role_names)
    deploy = {policy.owner.name, *policy.owner.deploy_logins}
    skip = trusted(policy, snap)
    edges = [e for e in membership_edges(snap) if e.usable]
    down: dict[str, list[str]] = {}  # role -> its members outside the policy
    for e in edges:
        if e.member not in inside and e.member not in skip:
            down.setdefault(e.role, []).append(e.member)
    out: list[Entry] = []
    for e in sorted(edges, key=lambda e: (e.role not in deploy, e.role, e.member)):
        if e.role not in inside or e.member in inside or e.member in skip:
            continue
        if any(lease.group == e.role and lease.matches(e.member) for lease in policy.leased):
            continue  # a leased login in its group: what it is made for (rules/leases.py checks the rest)
        paths = _members_of(e.member, down, snap)
        role = snap.role_by_name.get(e.member)
        out.append(
            Entry(
                e.member,
                e.role,
                "owner" if e.role in deploy else "access",
                e,
                tuple(paths),
                bool(role and role.createrole),
            )
        )
    return out


def _members_of(start: str, down: dict[str, list[str]], snap: Snapshot) -> list[tuple[str, ...]]:
    """The logins that can act as `start` through roles outside the policy: (login, ..., start)."""
    found: dict[str, tuple[str, ...]] = {start: (start,)}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for member in sorted(down.get(current, ())):
            if member not in found:
                found[member] = (member, *found[current])
                queue.append(member)
    return [p for name, p in found.items() if (r := snap.role_by_name.get(name)) is not None and r.login]


def plan_outsider_memberships(ctx: PlanContext) -> Iterator[Step]:
    """A role outside the policy that can act as the owner or a deploy login loses that membership:
    the policy names who acts as the owner. Administrators (CREATEROLE roles, which hold ADMIN OPTION
    on the roles they created on 16+) are reported, not changed; an entry into an access role is
    reported with its fix, not changed (a person granted a group by hand may rely on it: declare it
    under [[roles]] with member_of, or ignore it)."""
    snap = ctx.snap
    for entry in entries(ctx.policy, snap):
        if entry.reaches != "owner" or entry.administrator:
            continue
        member, role = snap.role_by_name[entry.member], snap.role_by_name[entry.role]
        for row in (m for m in snap.memberships if m.member == member.oid and m.role == role.oid):
            grantor = snap.roles.get(row.grantor)
            statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(entry.role), sql.Identifier(entry.member))
            if snap.caps.membership_options and grantor is not None and not grantor.superuser:
                statement = sql.SQL("{} GRANTED BY {}").format(statement, sql.Identifier(grantor.name))
            auth = ctx.auth
            ok = auth.superuser or entry.role in auth.admin_of or (auth.createrole and not snap.caps.membership_options)
            needs = Need.of((R.ADMIN_OPTION, entry.role))
            if snap.caps.membership_options and grantor is not None and grantor.superuser and not auth.superuser:
                ok, needs = False, Need.superuser()  # 16+: only a superuser takes back a superuser's grant
            what = (
                "the owner"
                if entry.role == ctx.owner
                else f"deploy login {entry.role}, whose sessions act as the owner"
            )
            change = f"member of {entry.role}"
            if snap.caps.membership_options and grantor is not None:
                change += f" granted by {grantor.name}"
            yield Step(
                Phase.ROLES,
                Action.REVOKE_MEMBERSHIP,
                f"role {entry.member}",
                f"{entry.member} is not in the policy and must not act as {what}: the policy names who "
                "acts as the owner (its deploy logins)",
                statement,
                role=entry.member,
                destructive=True,
                needs=None if ok else needs,
                allowed=ok,
                change=change,
                subject=("membership", entry.role, entry.member),
            )
