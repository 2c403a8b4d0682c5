"""Hazard checks about roles outside the policy that can act as the owner or as an access role."""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.outsiders import entries
from pgwarden.policy import Policy
from pgwarden.rules.common import finding
from pgwarden.rules.memberships import revoke_sql
from pgwarden.snapshot import Snapshot


def check_outsiders(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """outside.member-of-owner / outside.member-of-access: one finding per membership by which a role
    outside the policy (not ignored, not a superuser, not the admin) enters a role of the policy,
    naming every login outside the policy that comes in through it."""
    for e in entries(policy, snap):
        owner = e.reaches == "owner"
        target = (
            f"the owner {e.role}"
            if e.role == policy.owner.name
            else f"deploy login {e.role} (its sessions act as the owner {policy.owner.name})"
            if owner
            else f"{e.role}, a role of the policy"
        )
        others = [p for p in e.paths if p[0] != e.member]
        logins = "; logins that come in through it: " + ", ".join(" -> ".join(p) for p in others) if others else ""
        if e.administrator:
            tail = "an administrator (CREATEROLE): apply leaves it; list it under [ignore] roles if intended"
        elif owner:
            tail = "apply revokes it"
        else:
            tail = "detect-only: declare it under [[roles]] with member_of, or under [ignore] roles"
        member, role = snap.role_by_name[e.member].oid, snap.role_by_name[e.role].oid
        yield finding(
            "outside.member-of-owner" if owner else "outside.member-of-access",
            f"role {e.role}",
            e.member,
            f"{e.member}, not in the policy, can act as {target} (member: {e.edge.label}; {tail}){logins}",
            revoke_sql(snap, member, role),
            subject=("membership", e.role, e.member),
        )
