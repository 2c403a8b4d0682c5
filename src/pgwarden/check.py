"""`run_check(session, secrets=None) -> CheckResult`: drift (every plan step as a finding) plus hazards.

Library use (the demo calls it):

    with Session.open(dsn, policy) as session:
        result = run_check(session)
    result.findings, result.failed("high"), result.to_json("low")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pgwarden.findings import Finding, rank, sort_findings, summary, to_json

# the planners, the rules and the ledger are imported where they are used: `pgwarden check` sends its
# first statement without waiting for them (start-up, bench/startup.py)
if TYPE_CHECKING:
    import psycopg

    from pgwarden.hazards import HazardData
    from pgwarden.ledger import LedgerState
    from pgwarden.parallel import Pending, SecondReader
    from pgwarden.plan import Plan, Step
    from pgwarden.policy import Policy
    from pgwarden.rows import RlsRow
    from pgwarden.session import Session
    from pgwarden.shared import ServerInfo
    from pgwarden.snapshot import Snapshot


@dataclass(frozen=True)
class CheckResult:
    """What `check` found: sorted findings, the plan they came from, and the server checked."""

    database: str
    server_version: str
    findings: tuple[Finding, ...]
    plan: Plan
    #: changes made outside pgwarden since the ledger's last recorded change (pgwarden.ledger), if any
    outside: dict[str, Any] | None = None

    def failed(self, fail_on: str = "low") -> bool:
        return any(f.at_least(fail_on) for f in self.findings)

    def summary(self, fail_on: str = "low") -> dict[str, Any]:
        return summary(self.findings, fail_on)

    def to_json(self, fail_on: str = "low") -> dict[str, Any]:
        data = to_json(self.findings, fail_on, database=self.database, server_version=self.server_version)
        if self.outside is not None:
            data["outside_pgwarden"] = self.outside
        provider = self.plan.provider_dict()
        if provider is not None:
            data["provider"] = provider
        return data


def drift_finding(step: Step) -> Finding:
    """A plan step as a finding: rule `drift.<action>`, severity by what the step repairs."""
    from pgwarden.rules import DRIFT_SEVERITY

    severity = DRIFT_SEVERITY.get(step.action, "medium")
    return Finding(
        f"drift.{step.action}",
        severity,
        step.object,
        step.role,
        step.reason,
        step.render(),
        step.key,
        subject=step.subject,
    )


def merge(drift: list[Finding], hazards: list[Finding]) -> list[Finding]:
    """One finding per problem: a hazard and the drift steps about the same subject (an object
    owned by the wrong role, a membership, an attribute, a grant) become the hazard, which says
    why it matters, with the more severe of the two severities and the plan's own statements as
    its fix (what apply would run; never REASSIGN OWNED BY the bootstrap superuser)."""
    steps: dict[tuple[str | int, ...], list[tuple[int, Finding]]] = {}  # by subject: (position in drift, finding)
    for i, d in enumerate(drift):
        if d.subject is not None:
            steps.setdefault(d.subject, []).append((i, d))
    merged: set[int] = set()
    out: list[Finding] = []
    for h in hazards:
        numbered = steps.get(h.subject, []) if h.subject is not None else []
        same = [d for _, d in numbered]
        if same:
            merged.update(i for i, _ in numbered)
            severity = min((h.severity, *(d.severity for d in same)), key=rank)
            fix = "\n".join(dict.fromkeys(d.fix for d in same if d.fix)) or h.fix
            h = replace(h, severity=severity, fix=fix, step=same[0].step)
        out.append(h)
    return [d for i, d in enumerate(drift) if i not in merged] + out


def findings_for(policy: Policy, snap: Snapshot, hz: HazardData, the_plan: Plan) -> list[Finding]:
    """Drift plus hazards, one finding per problem, sorted; pure."""
    from pgwarden.rules import run_rules

    found = merge([drift_finding(s) for s in the_plan.steps], run_rules(policy, snap, hz))
    unique = list(dict.fromkeys(found))
    return sort_findings(unique)


def run_check(session: Session, secrets: Mapping[str, str] | None = None) -> CheckResult:
    """Inspect the target database through `session` and return drift + hazard findings.

    When the database does not exist, the only finding is the drift that creates it (hazards need
    the database). `secrets` are the policy's passwords (as `apply` takes them): with them, a
    changed password is drift too. A big database's column ACLs, hazard and ledger reads run on a
    second connection meanwhile, through the first one's snapshot (pgwarden.parallel): the same findings."""
    policy = session.policy
    with session.inspection_connection() as conn:
        readers: list[SecondReader[Any]] = []  # the second connection, once server.sql says it gains
        side: list[Pending[Any]] = []  # its side reads, then its row security read

        def open_second(server: ServerInfo) -> SecondReader[Any] | None:
            reader = _second_reader(session, conn, server)
            readers.extend([reader] if reader is not None else [])
            return reader

        def on_partial(partial: Snapshot) -> None:
            for reader in readers:
                side.append(reader.submit(_side_reads(policy, partial, rls=False)))
                side.append(reader.submit(lambda c: _rls(c, policy, partial)))

        try:
            # with the secrets: a non-superuser verifies passwords by logging in, as plan does
            snap = session.snapshot(conn, secrets, shared=True, on_partial=on_partial, second=open_second)
            # imported once the server has answered: the first statements wait for none of these
            from pgwarden.ledger import expired_findings, outside_report
            from pgwarden.parallel import outcome
            from pgwarden.plan.provider import with_external

            if side:  # row security where the connection free first reads it (the first, often)
                rls = outcome(readers[0], side[1], conn)
                hz, state = outcome(readers[0], side[0], conn)
                hz = replace(hz, rls=rls)
            else:
                hz, state = _side_reads(policy, snap)(conn)
        finally:
            for reader in readers:
                reader.close()
        session.ledger = state
    the_plan = session.plan(snap, secrets)
    # the provider's own roles are left alone by the rules as by the plan (as if under [ignore] roles)
    found = findings_for(with_external(policy, snap), snap, hz, the_plan)
    found = [*found, *_retired(policy, snap), *expired_findings(state)]  # retired roles that still exist
    # with findings: were they made outside pgwarden, since which recorded change? (a migration that
    # creates objects as the policy wants changes the state, not the privileges: alone, no report)
    outside = outside_report(policy, snap, state) if found else None
    return CheckResult(policy.database.name, snap.server.version, tuple(sort_findings(found)), the_plan, outside)


def _retired(policy: Policy, snap: Snapshot) -> list[Finding]:
    """The retired roles that still exist; apply's retirement module imported only when the policy
    retires one (start-up: commands/check.py)."""
    if not policy.retired:
        return []
    from pgwarden.retirement import findings

    return findings(policy, snap)


def _side_reads(
    policy: Policy, snap: Snapshot, *, rls: bool = True
) -> Callable[[psycopg.Connection[Any]], tuple[HazardData, LedgerState]]:
    """The reads that need the snapshot's roles and schemas but not its objects: the hazards and the
    ledger (on the first connection, or on the second while the first reads the objects; `rls=False`:
    without the row security read, made on the first)."""

    def read(conn: psycopg.Connection[Any]) -> tuple[HazardData, LedgerState]:
        from pgwarden.hazards import HazardData, read_hazards
        from pgwarden.ledger import read_state

        hz = read_hazards(conn, policy, snap, rls=rls) if snap.database is not None else HazardData()
        return hz, read_state(conn, snap)  # the ledger: one query, none without one

    return read


def _rls(conn: psycopg.Connection[Any], policy: Policy, snap: Snapshot) -> tuple[RlsRow, ...]:
    """The row security read (hazards.read_rls), none without the database."""
    from pgwarden.hazards import read_rls

    return read_rls(conn, policy, snap) if snap.database is not None else ()


def _second_reader(session: Session, conn: psycopg.Connection[Any], server: ServerInfo) -> SecondReader[Any] | None:
    """A second connection for the side reads, where it gains: the target database exists and is
    big (server.sql's catalog size, or session.parallel says so), and this is not a fleet (whose
    cores its databases use)."""
    if session.parallel is False or session.cluster is not None or server.database != session.target:
        return None
    from pgwarden.parallel import big_enough, start

    if session.parallel is None and not big_enough(server):
        return None
    return start(conn, session.connect_target)
