"""Hazard checks about leased logins ([[leased]]: docs/leased-logins.md)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.snapshot import Snapshot

#: Names listed in one finding before "and N more".
SHOWN = 10


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _clear_sql(name: str, owner: str, owns: bool) -> str:
    """What clears a leased login's holdings in this database: what it owns goes to the owner first
    (DROP OWNED alone would drop it), then DROP OWNED revokes its privileges."""
    ident = sql.Identifier(name)
    drop = sql.SQL("DROP OWNED BY {};").format(ident)
    if not owns:
        return drop.as_string(None)
    reassign = sql.SQL("REASSIGN OWNED BY {} TO {};").format(ident, sql.Identifier(owner))
    return f"{reassign.as_string(None)}\n{drop.as_string(None)}"


@reports(
    Rule(
        "lease.direct-grant",
        "high",
        "A leased login holds privileges of its own",
        "Logins a system issues (Vault/OpenBao, Teleport) should get their rights from their group only. "
        "A privilege granted to one by name stays in the object's ACL until revoked by name: revocation "
        "statements that clean schema public only leave them behind, and thousands of such entries make "
        "the ACLs too big for any GRANT to run.",
        "DROP OWNED BY the login (after REASSIGN OWNED when it owns something); grant to the group instead.",
        doc=(
            "One finding per login, naming the objects, in the database checked (its own ACL entry on the "
            "database counts). See [leases.md](leases.md)."
        ),
    ),
    Rule(
        "lease.owns-objects",
        "high",
        "A leased login owns objects",
        "An owner can alter, drop and grant its objects whatever the policy says, and a login that owns "
        "something cannot be dropped: its revocation fails, or DROP OWNED drops the objects with it.",
        "REASSIGN OWNED BY the login TO the owner, then DROP OWNED BY it (`pgwarden leases retire` does both "
        "for expired ones).",
    ),
    Rule(
        "lease.expired",
        "medium",
        "Expired leased logins still exist",
        "VALID UNTIL refuses password logins only: sessions already open, certificate or trust logins and "
        "SET ROLE by its members go on, and so do its grants. A secrets engine that failed to revoke leaves "
        "thousands of them behind.",
        "`pgwarden leases retire --yes`: ends their sessions, reassigns and revokes in every database and "
        "drops them, in batches, as a non-superuser admin.",
        doc="One finding per `[[leased]]` entry, with the count and the first ten names.",
    ),
)
def check_leases(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """lease.owns-objects and lease.direct-grant for each leased login, here; lease.expired once per
    [[leased]] entry with every expired login it names that still exists."""
    if not hz.leased:
        return
    db = policy.database.name
    owner = policy.owner.name
    for row in hz.leased:
        group = next((lease.group for lease in policy.leased if lease.matches(row.name)), "its group")
        fix = _clear_sql(row.name, owner, bool(row.owns))
        if row.owns:
            yield finding(
                "lease.owns-objects",
                f"role {row.name}",
                row.name,
                f"leased login {row.name} owns {len(row.owns)} object(s) in database {db}: {_listed(row.owns)}; "
                "a login a system issues for a while must own nothing (as owner it may alter, drop and grant "
                "them, and its revocation fails or drops them)",
                fix,
            )
        if row.grants:
            yield finding(
                "lease.direct-grant",
                f"role {row.name}",
                row.name,
                f"leased login {row.name} holds privileges of its own in database {db} on: {_listed(row.grants)}; "
                f"it must get its rights from {group} only (each grant is an ACL entry that stays until revoked "
                "by name: thousands of them bloat the ACLs until GRANT fails)",
                fix,
            )
    yield from _expired(policy, hz)


def _expired(policy: Policy, hz: HazardData) -> Iterator[Finding]:
    for lease in policy.leased:
        names = [row.name for row in hz.leased if row.expired and lease.matches(row.name)]
        if not names:
            continue
        yield finding(
            "lease.expired",
            f"leased logins {lease.pattern}",
            None,
            f"{len(names)} leased login(s) named by {lease.pattern!r} expired and still exist: {_listed(names)}; "
            "VALID UNTIL refuses password logins only (sessions, certificate and trust logins, SET ROLE and "
            "their grants go on) and every one stays in the catalogs until dropped",
            f"pgwarden leases retire --pattern {shlex.quote(lease.pattern)} --yes",
        )
