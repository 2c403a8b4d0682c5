"""Hazards of managed services (providers.py): IAM lockout, admin groups reached, their defaults, ADMIN OPTION."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.providers import Detection, detect
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.rules.memberships import revoke_sql
from pgwarden.snapshot import Snapshot


def _detection(snap: Snapshot) -> Detection:
    return detect(snap.role_by_name, snap.server.settings, snap.server.extensions)


def _path(snap: Snapshot, start: int, target: int, *, usable_only: bool = False) -> list[int] | None:
    """The shortest membership chain from `start` to `target` (role oids, both included), or None.
    `usable_only`: only hops that give the role's rights (INHERIT) or let it SET ROLE (16+ options;
    before 16 every membership can SET ROLE)."""
    up: dict[int, list[int]] = {}
    for m in snap.memberships:
        if usable_only and snap.caps.membership_options and not (m.inherit or m.set):
            continue
        up.setdefault(m.member, []).append(m.role)
    seen = {start: -1}
    todo = deque([start])
    while todo:
        current = todo.popleft()
        if current == target:
            chain = [current]
            while seen[chain[-1]] != -1:
                chain.append(seen[chain[-1]])
            return chain[::-1]
        for role in up.get(current, ()):
            if role not in seen:
                seen[role] = current
                todo.append(role)
    return None


def _via(snap: Snapshot, chain: list[int]) -> str:
    names = [snap.role_name(o) or str(o) for o in chain]
    return "directly" if len(names) == 2 else "through " + " -> ".join(names[1:-1])


@reports(
    Rule(
        "provider.iam-lockout",
        "high",
        "A password login is a member of the provider's IAM role",
        "On Amazon RDS and Aurora a member of rds_iam, directly or through any group, must log in with an "
        "IAM token: its password stops working the moment a group it belongs to is granted rds_iam.",
        "REVOKE the membership that leads to rds_iam (the fix names it), or switch that login to IAM tokens "
        "and drop its password from the policy.",
    ),
    intro="Managed services ([managed-services.md](managed-services.md)): these rules look at the provider "
    "`check` detects and its own roles.",
)
def check_iam_lockout(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """provider.iam-lockout: a login with a password (in the policy, or a stored verifier) that is a
    member of the provider's IAM role, directly or through groups: it can only log in with a token."""
    found = _detection(snap)
    with_password = {name for name, env in policy.login_roles() if env}
    if snap.passwords is not None:
        with_password |= {snap.role_name(oid) or "" for oid, pw in snap.passwords.items() if pw}
    for iam_name in found.provider.iam_roles:
        iam = snap.role_by_name.get(iam_name)
        if iam is None:
            continue
        for name in sorted(with_password):
            role = snap.role_by_name.get(name)
            chain = _path(snap, role.oid, iam.oid) if role is not None and role.login else None
            if chain is None:
                continue
            yield finding(
                "provider.iam-lockout",
                f"role {name}",
                name,
                f"{name} logs in with a password but is a member of {iam_name} {_via(snap, chain)}: on "
                f"{found.provider.name} a member of {iam_name} must log in with an IAM token, its password no "
                "longer works",
                revoke_sql(snap, chain[0], chain[1]),
                subject=("membership", snap.role_name(chain[1]) or "", name),
            )


@reports(
    Rule(
        "provider.role-reached",
        "critical",
        "An access role can act as the provider's administrative role",
        "The provider's admin group (neon_superuser, rds_superuser, cloudsqlsuperuser, azure_pg_admin, "
        "alloydbsuperuser) creates roles and databases; Neon's has BYPASSRLS and reads and writes every "
        "table (pg_read_all_data, pg_write_all_data). Roles made in Neon's console are members of it.",
        "REVOKE the membership (the fix names the direct grant); create application roles with SQL, not "
        "the provider's console.",
    ),
)
def check_provider_roles_reached(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """provider.role-reached: an access role or member of the policy that can use a provider's admin
    group (Neon's neon_superuser: BYPASSRLS, reads and writes every table) by a usable membership."""
    found = _detection(snap)
    p = found.provider
    groups = dict.fromkeys((*p.broad_roles, *p.admin_groups, *p.superusers))
    for name in policy.row_roles:
        role = snap.role_by_name.get(name)
        if role is None:
            continue
        for group in groups:
            target = snap.role_by_name.get(group)
            chain = _path(snap, role.oid, target.oid, usable_only=True) if target is not None else None
            if target is None or chain is None:
                continue
            powers = [w for w, on in (("BYPASSRLS", target.bypassrls), ("SUPERUSER", target.superuser)) if on]
            powers += [
                snap.role_name(m.role) or ""
                for m in snap.memberships
                if m.member == target.oid and snap.role_name(m.role) in ("pg_read_all_data", "pg_write_all_data")
            ]
            what = f" ({', '.join(powers)})" if powers else ""
            yield finding(
                "provider.role-reached",
                f"role {group}",
                name,
                f"{name} can act as {group}{what}, {p.name}'s administrative role, {_via(snap, chain)}",
                revoke_sql(snap, chain[0], chain[1]),
                subject=("membership", snap.role_name(chain[1]) or "", name),
            )


@reports(
    Rule(
        "provider.default-privileges",
        "high",
        "The provider's own default privileges grant the policy's roles",
        "ALTER DEFAULT PRIVILEGES FOR ROLE <provider role> (Supabase's supabase_admin granting anon, "
        "authenticated and service_role) gives those roles rights on every object the provider's role "
        "creates, whatever the policy says; only a member of that role, the provider, can change them.",
        "Keep the application's objects owned by the policy's owner (`pgwarden apply` and `adopt`), in schemas "
        "the provider does not create objects in; the provider's support can change its entries.",
    ),
)
def check_provider_default_acls(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """provider.default-privileges: default privileges of a provider's role that grant the policy's
    roles or PUBLIC on what that role creates: the admin cannot change them (they are the provider's)."""
    found = _detection(snap)
    p = found.provider
    if not found.managed:
        return
    policy_roles = {snap.role_by_name[n].oid for n in policy.row_roles if n in snap.role_by_name}
    schemas = {s.oid: s.name for s in snap.schemas}
    words = {"r": "tables", "S": "sequences", "f": "routines", "T": "types", "n": "schemas"}
    for d in snap.default_acls:
        by = snap.role_name(d.role) or ""
        if not p.owns(by) and by not in p.project_roles:
            continue
        given: dict[int, set[str]] = {}
        for g in d.acl:
            if g.grantee in policy_roles or g.grantee == 0:
                given.setdefault(g.grantee, set()).add(g.privilege)
        where = f"in schema {schemas.get(d.schema, d.schema)}" if d.schema else "in every schema"
        for grantee, privs in sorted(given.items()):
            who = snap.role_name(grantee) or "PUBLIC"
            yield finding(
                "provider.default-privileges",
                f"default privileges of {by} on {words.get(d.objtype, d.objtype)} {where}",
                who,
                f"{by} ({p.name}'s role) gives {who} {', '.join(sorted(privs))} on every "
                f"{words.get(d.objtype, d.objtype)[:-1]} it creates {where}, whatever the policy says; only "
                f"{p.name} can change that",
            )


@reports(
    Rule(
        "provider.admin-option",
        "medium",
        "A non-superuser administrator holds ADMIN OPTION on the owner (16+)",
        "Since PostgreSQL 16 a CREATEROLE role that creates a role is granted ADMIN OPTION on it by the "
        "bootstrap superuser: on a managed service the admin login can make any role a member of the "
        "owner, and only a superuser can revoke that grant. With createrole_self_grant set it is also made a "
        "member of every role it creates.",
        "Use the admin login only to run pgwarden (not in applications or by people day to day), with IAM "
        "or a strong password; `pgwarden check` lists every role that holds it.",
    ),
)
def check_admin_option(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """provider.admin-option (16+): a non-superuser CREATEROLE role holds ADMIN OPTION on the owner or a
    deploy login (PostgreSQL grants it to whoever creates a role): whoever logs in as it can make any
    role a member of the owner. On a managed service only, where no superuser can be used instead."""
    if not snap.caps.membership_options or not _detection(snap).managed:
        return
    guarded = {policy.owner.name, *policy.owner.deploy_logins}
    for m in snap.memberships:
        role, member = snap.roles.get(m.role), snap.roles.get(m.member)
        if not m.admin or role is None or member is None or role.name not in guarded:
            continue
        if member.superuser or member.name in policy.role_names:
            continue
        implicit = " (granted by PostgreSQL when it created the role)" if m.grantor == 10 else ""
        yield finding(
            "provider.admin-option",
            f"role {role.name}",
            member.name,
            f"{member.name} holds ADMIN OPTION on {role.name}{implicit}: whoever logs in as {member.name} can "
            f"make any role a member of {role.name}" + _self_grant(snap, member.oid),
        )


def _self_grant(snap: Snapshot, oid: int) -> str:
    """createrole_self_grant set for the role (16+): it also becomes a member of every role it creates."""
    for s in snap.role_settings:
        for item in s.settings if s.role == oid else ():
            name, _, value = item.partition("=")
            if name == "createrole_self_grant" and value.strip():
                return (
                    f"; with createrole_self_grant = '{value}' it is also made a member ({value}) of every "
                    "role it creates"
                )
    return ""
