"""What every hazard check shares: the finding builder and the policy's access roles as they exist."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator

from psycopg import sql

from pgwarden.findings import Finding, Severity, display_name
from pgwarden.hazards import HazardData
from pgwarden.plan.model import Subject
from pgwarden.policy import Policy
from pgwarden.rules.catalog import rule as catalog_rule
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
    *,
    subject: Subject | None = None,
) -> Finding:
    """A finding of a catalog rule; `subject` names what it is about in the plan's words (a drift step
    about the same subject is the same problem: check reports them as one finding)."""
    text = fix.as_string(None) if isinstance(fix, sql.Composable) else fix
    return Finding(rule, severity or catalog_rule(rule).severity, obj, role, message, text, subject=subject)


def adopt_fix(role: str) -> str:
    """The fix for objects a role owns that no single statement moves: adopt moves them one by one
    (REASSIGN OWNED cannot move the bootstrap superuser's objects, and would move other databases).
    A shell command: --from takes the role's name as it is, so it is quoted for the shell, not SQL."""
    return f"pgwarden adopt --from {shlex.quote(role)} --yes"


def access_roles(policy: Policy, snap: Snapshot) -> list[tuple[str, int]]:
    """(name, oid) of the policy's row roles (Policy.row_roles) that exist."""
    return [(n, snap.role_by_name[n].oid) for n in policy.row_roles if n in snap.role_by_name]
