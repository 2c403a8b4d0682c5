"""Hazard checks about roles outside the policy that can act as the owner or as an access role."""

from __future__ import annotations

from collections.abc import Iterator

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.outsiders import entries
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.rules.memberships import revoke_sql
from pgwarden.snapshot import Snapshot


@reports(
    Rule(
        "outside.member-of-owner",
        "high",
        "A role outside the policy can act as the owner",
        "The policy names who acts as the owner: its deploy logins. A role it does not name (a person's "
        "login made a member 'for a quick fix', by any path: a chain of roles, INHERIT, SET, or ADMIN "
        "OPTION, which lets it grant itself the rest) can alter, drop and grant every object, and what "
        "it creates without SET ROLE escapes the owner.",
        "REVOKE the membership (`pgwarden apply` does it, but for an administrator's: a CREATEROLE role "
        "is reported, not changed); a role that must stay goes under [ignore] roles.",
        doc=(
            "One finding per membership by which a role outside the policy enters the owner or a deploy login "
            "(the entry `apply` revokes), naming every login outside the policy that comes in through it "
            "(`alice2 -> helpers -> sqlmigrations`). Not findings: superusers (they are every role already), "
            "the admin running pgwarden (a non-superuser admin is made a member of the owner by the plan), "
            "the roles under `[ignore]` and those the policy retires. Memberships count when they are usable: "
            "INHERIT, SET (16+; always before 16) or ADMIN OPTION."
        ),
    ),
    Rule(
        "outside.member-of-access",
        "medium",
        "A role outside the policy can act as an access role",
        "It reads and writes what the access role may, and the policy does not say so: access reviews "
        "built from the policy miss it.",
        "Declare it in the policy (version 2: [[roles]] with member_of), list it under [ignore] roles, "
        "or REVOKE the membership (detect-only: apply does not change it).",
    ),
)
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
