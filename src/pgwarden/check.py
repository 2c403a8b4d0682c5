"""`run_check(session, secrets=None) -> CheckResult`: drift (every plan step as a finding) plus hazards.

Library use (the demo calls it):

    with Session.open(dsn, policy) as session:
        result = run_check(session)
    result.findings, result.failed("high"), result.to_json("low")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgwarden.findings import Finding, sort_findings, summary, to_json
from pgwarden.hazards import HazardData, read_hazards
from pgwarden.plan import Plan, Step
from pgwarden.policy import Policy
from pgwarden.rules import DRIFT_SEVERITY, run_rules
from pgwarden.session import Session
from pgwarden.snapshot import Snapshot


@dataclass(frozen=True)
class CheckResult:
    """What `check` found: sorted findings, the plan they came from, and the server checked."""

    database: str
    server_version: str
    findings: tuple[Finding, ...]
    plan: Plan

    def failed(self, fail_on: str = "low") -> bool:
        return any(f.at_least(fail_on) for f in self.findings)

    def summary(self, fail_on: str = "low") -> dict[str, Any]:
        return summary(self.findings, fail_on)

    def to_json(self, fail_on: str = "low") -> dict[str, Any]:
        return to_json(self.findings, fail_on, database=self.database, server_version=self.server_version)


def drift_finding(step: Step) -> Finding:
    """A plan step as a finding: rule `drift.<action>`, severity by what the step repairs."""
    severity = DRIFT_SEVERITY.get(step.action, "medium")
    return Finding(f"drift.{step.action}", severity, step.object, step.role, step.reason, step.render(), step.key)


def findings_for(policy: Policy, snap: Snapshot, hz: HazardData, the_plan: Plan) -> list[Finding]:
    """Drift plus hazards, deduplicated and sorted; pure."""
    found = [drift_finding(s) for s in the_plan.steps] + run_rules(policy, snap, hz)
    unique = list(dict.fromkeys(found))
    return sort_findings(unique)


def run_check(session: Session, secrets: Mapping[str, str] | None = None) -> CheckResult:
    """Inspect the target database through `session` and return drift + hazard findings.

    When the database does not exist, the only finding is the drift that creates it (hazards need
    the database). `secrets` are the policy's passwords (as `apply` takes them): with them, a
    changed password is drift too."""
    policy = session.policy
    with session.inspection_connection() as conn:
        # with the secrets: a non-superuser verifies passwords by logging in, as plan does
        snap = session.snapshot(conn, secrets)
        hz = read_hazards(conn, policy, snap) if snap.database is not None else HazardData()
    the_plan = session.plan(snap, secrets)
    return CheckResult(
        policy.database.name, snap.server.version, tuple(findings_for(policy, snap, hz, the_plan)), the_plan
    )
