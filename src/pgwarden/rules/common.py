"""What every hazard check shares: the finding builder and the policy's access roles as they exist."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from psycopg import sql

from pgwarden.findings import Finding, Severity, display_name
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.rules.catalog import RULES
from pgwarden.snapshot import Snapshot

Check = Callable[[Policy, Snapshot, HazardData], Iterator[Finding]]


def q(*parts: str) -> str:
    return display_name(*parts)


def finding(
    rule: str,
    obj: str,
    role: str | None,
    message: str,
    fix: sql.Composable | str | None = None,
    severity: Severity | None = None,
) -> Finding:
    text = fix.as_string(None) if isinstance(fix, sql.Composable) else fix
    return Finding(rule, severity or RULES[rule].severity, obj, role, message, text)


def access_roles(policy: Policy, snap: Snapshot) -> list[tuple[str, int]]:
    return [(a.name, snap.role_by_name[a.name].oid) for a in policy.access if a.name in snap.role_by_name]
