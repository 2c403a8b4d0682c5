"""Leased logins ([[leased]]: Vault/OpenBao, Teleport): the roles a pattern names, and what they hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pgwarden.fetch import fetch
from pgwarden.rows import LeaseRow

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy import Policy
    from pgwarden.policy.leases import LeaseSpec
    from pgwarden.snapshot import Role, Snapshot

#: Roles below this oid are PostgreSQL's own (as plan/retire.py's FIRST_NORMAL_OID).
FIRST_NORMAL_OID = 16384


def leased_roles(policy: Policy, snap: Snapshot) -> list[tuple[Role, LeaseSpec]]:
    """The existing roles a [[leased]] pattern names, in name order: never PostgreSQL's own roles,
    the policy's, ignored or retired ones, an issuer, or the admin (the file's checks refuse a pattern
    that names a role of the file; these are what only the cluster shows)."""
    spared = {*policy.role_names, *policy.ignore.roles, *(r.name for r in policy.retired)}
    spared |= {lease.issuer for lease in policy.leased if lease.issuer}
    spared.add(snap.server.current_role)
    out = []
    for role in sorted(snap.roles.values(), key=lambda r: r.name):
        if role.oid < FIRST_NORMAL_OID or role.name in spared:
            continue
        lease = next((lease for lease in policy.leased if lease.matches(role.name)), None)
        if lease is not None:
            out.append((role, lease))
    return out


def read_leases(conn: psycopg.Connection[Any], policy: Policy, snap: Snapshot) -> tuple[LeaseRow, ...]:
    """What each leased login holds in the database `conn` is connected to, and whether it expired
    (by the server's clock): one query, none when the policy has no [[leased]] or none exists."""
    roles = [role.oid for role, _ in leased_roles(policy, snap)] if policy.leased else []
    if not roles:
        return ()
    return tuple(fetch(conn, "lease_state", LeaseRow, {"roles": roles}))
