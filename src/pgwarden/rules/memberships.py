"""Hazard checks about what the owner and deploy logins are members of (every migration carries it)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.outside import privileged_targets
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.snapshot import Snapshot


def first_hop(snap: Snapshot, member: int, target: int) -> int | None:
    """The role `member` is directly granted on its shortest membership path to `target`."""
    edges: dict[int, list[int]] = {}
    for m in snap.memberships:
        edges.setdefault(m.member, []).append(m.role)
    seen, frontier = {member}, [(r, r) for r in edges.get(member, ())]
    while frontier:
        nxt: list[tuple[int, int]] = []
        for role, hop in frontier:
            if role == target:
                return hop
            if role not in seen:
                seen.add(role)
                nxt.extend((r, hop) for r in edges.get(role, ()))
        frontier = nxt
    return None


def revoke_sql(snap: Snapshot, member: int, hop: int) -> str:
    """REVOKE every grant of `hop` to `member`. On 16+ each grant is its grantor's: a superuser's plain
    REVOKE removes only the one a superuser made, so each other grantor is named with GRANTED BY."""
    name, role = sql.Identifier(snap.role_name(member) or ""), sql.Identifier(snap.role_name(hop) or "")
    plain = sql.SQL("REVOKE {} FROM {}").format(role, name)
    if not snap.caps.membership_options:
        return plain.as_string(None)
    grantors = {m.grantor for m in snap.memberships if m.member == member and m.role == hop}
    others = sorted(g for g in grantors if not (g in snap.roles and snap.roles[g].superuser))
    statements = [plain] if len(others) < len(grantors) or not grantors else []
    statements += [sql.SQL("{} GRANTED BY {}").format(plain, sql.Identifier(snap.role_name(g) or "")) for g in others]
    return "; ".join(s.as_string(None) for s in statements)


@reports(
    Rule(
        "owner.member-of-privileged",
        "critical",
        "The owner or a deploy login is a member of a role that reaches the server",
        "Every migration runs as the owner: if it is a member (by any path, ADMIN OPTION included, "
        "which lets it grant itself the membership) of a superuser or of pg_execute_server_program, "
        "pg_read_server_files, pg_write_server_files, pg_read_all_data, pg_write_all_data, "
        "pg_signal_backend, pg_maintain (17+) or pg_create_subscription (16+), so is every migration: "
        "COPY ... TO PROGRAM gives it a shell on the server.",
        "REVOKE the membership (GRANTED BY its grantor on 16+); `pgwarden apply` revokes direct ones.",
    ),
)
def check_owner_memberships(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """owner.member-of-privileged: the owner or a deploy login reaches a superuser or a predefined
    role that reaches the server, by any path (ADMIN OPTION alone is a path: it can grant itself)."""
    who = {policy.owner.name: "the owner", **{d: "deploy login" for d in policy.owner.deploy_logins}}
    targets = privileged_targets(snap)
    for row in hz.owner_reach:
        member, target = int(row.member), int(row.role)
        name, role = snap.role_name(member), snap.role_name(target)
        if name not in who or role is None or target not in targets:
            continue
        hop = target if row.direct else first_hop(snap, member, target)
        owner = snap.role_by_name.get(policy.owner.name)
        if hop is None or (owner is not None and hop == owner.oid):
            continue  # a deploy login reaches it through the owner: the owner's finding is the one problem
        via = "" if hop == target else f" through {snap.role_name(hop)}"
        what = "a superuser" if snap.roles[target].superuser else "a predefined role that reaches the server"
        # the plan revokes a direct membership: one subject, so check reports one finding
        yield finding(
            "owner.member-of-privileged",
            f"role {role}",
            name,
            f"{who[name]} {name} is a member of {role}{via}, {what}: every migration it runs carries that power",
            revoke_sql(snap, member, hop),
            subject=("membership", snap.role_name(hop) or "", name),
        )
