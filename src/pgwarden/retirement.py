"""Retiring roles, run (plan/retire.py plans it): read what they hold everywhere, then reassign, drop, DROP ROLE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from pgwarden.command_rows import HoldingRow, SessionCountRow
from pgwarden.connect import connect, conninfo_for, scrub
from pgwarden.errors import ApplyError, ApplyInterrupted, PgwardenError, PrivilegeError
from pgwarden.executor import Outcome, run_steps, set_lock_timeout
from pgwarden.fetch import fetch
from pgwarden.findings import Finding
from pgwarden.plan import Action, Phase, Plan, Step
from pgwarden.plan.retire import (
    DatabaseAccess,
    DatabaseWork,
    Holding,
    Retirement,
    Survey,
    plan_retirements,
    refuse_forbidden,
)

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy import Policy
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot

EventHandler = Callable[[str, "Step | None", int, int], None]

#: Databases whose part of a retirement is held open (and committed) together, at most.
OPEN_AT_ONCE = 16


def survey(session: Session, snap: Snapshot) -> Survey:
    """What the existing retired roles hold, in which databases, and whether the admin can get there."""
    roles = {r.name: snap.role_by_name[r.name].oid for r in session.policy.retired if r.name in snap.role_by_name}
    admin_db = session.admin.info.dbname
    if not roles:
        return Survey({}, {}, admin_database=admin_db)
    admin = session.admin
    holdings: dict[int, dict[str, list[Holding]]] = {}
    databases: dict[str, DatabaseAccess] = {}
    for row in fetch(admin, "retire_holdings", HoldingRow, {"roles": list(roles.values())}):
        holdings.setdefault(row.role, {}).setdefault(row.database, []).append(
            Holding(row.catalog, row.deptype, row.count)
        )
        if row.database and row.database not in databases:
            databases[row.database] = DatabaseAccess(row.database, row.allows_connections, row.may_connect)
    for name, access in databases.items():
        if access.allows_connections and access.may_connect and name != admin_db:
            databases[name] = replace(access, error=connect_error(session, name))
    sessions = {r.role: r.sessions for r in fetch(admin, "retire_sessions", SessionCountRow, {"names": list(roles)})}
    return Survey(
        {oid: {db: tuple(h) for db, h in by_db.items()} for oid, by_db in holdings.items()},
        databases,
        sessions,
        session_user=admin.info.user,
        admin_database=admin_db,
    )


def connect_error(session: Session, database: str) -> str | None:
    """What connecting to `database` as the admin says, when it fails (pg_hba, too many connections)."""
    try:
        connect(conninfo_for(session.dsn, dbname=database), what=f"database {database}", connect_timeout=5).close()
    except PgwardenError as exc:
        return exc.message
    return None


def _admin_gains_owner(plan: Plan, snap: Snapshot) -> bool:
    admin = snap.server.current_role
    return any(s.action == Action.GRANT_MEMBERSHIP and s.role == admin for s in plan.steps)


def retirements(session: Session, snap: Snapshot, plan: Plan) -> tuple[Retirement, ...]:
    """The policy's existing retired roles, planned against the cluster (PolicyError for a forbidden one)."""
    if not session.policy.retired:
        return ()
    refuse_forbidden(session.policy, snap)  # before reading anything more
    return plan_retirements(
        session.policy, snap, survey(session, snap), admin_gains_owner=_admin_gains_owner(plan, snap)
    )


def with_retirements(session: Session, snap: Snapshot, plan: Plan) -> Plan:
    """`plan` with the preflight of the retired roles that still exist; additive mode withholds them."""
    found = retirements(session, snap, plan)
    if not found:
        return plan
    if plan.mode == "additive":
        return replace(plan, withheld=(*plan.withheld, *(s for r in found for s in r.steps)))
    return replace(plan, retirements=found)


def findings(policy: Policy, snap: Snapshot) -> list[Finding]:
    """`check`: a retired role that still exists is drift, one finding per role."""
    return [
        Finding(
            f"drift.{Action.RETIRE_ROLE}",
            "medium",
            f"role {spec.name}",
            spec.name,
            f"retired role {spec.name} still exists: `pgwarden apply` "
            + ("drops what it owns" if spec.objects == "drop" else "reassigns what it owns to the owner")
            + " in every database and drops it",
            "pgwarden apply",
            subject=("retired", spec.name),
        )
        for spec, _ in refuse_forbidden(policy, snap)
    ]


@dataclass
class Retiring:
    """Apply's retirement phase, planned before anything runs (so that a blocked retirement is refused
    while nothing has changed) and run after the roles phase (the owner exists by then)."""

    session: Session
    lock_timeout: str
    todo: tuple[Retirement, ...] = ()
    notes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what is committed, in words, for the messages
    committing: str | None = None  # the database whose COMMIT is under way

    def run(self, emit: EventHandler, result: Outcome) -> None:
        result.notes.extend(self.notes)
        for retirement in self.todo:
            try:
                self._one(retirement, emit, result)
            except KeyboardInterrupt:
                raise self._interrupted(retirement, result) from None

    def _one(self, r: Retirement, emit: EventHandler, result: Outcome) -> None:
        import psycopg

        admin = self.session.admin
        total, done = len(r.steps), 0
        try:
            for i, step in enumerate(r.before):  # each committed at once: refused logins stay refused
                run_steps(admin, [step], result)
                said = f"role {r.role}: " + ", ".join(s.change for s in r.before[: i + 1])
                if i == 0:
                    self.kept.append(said)
                else:  # the same line, one more part
                    self.kept[-1] = said
                done += 1
                emit("step", step, done, total)
            done = self._databases(r, emit, result, done, total)
            for step in r.after:
                run_steps(admin, [step], result)
                self.kept.append(f"role {r.role} was dropped")
                emit("step", step, done + 1, total)
        except (psycopg.Error, PgwardenError) as exc:
            failed = result.failed
            result.failed = None
            where = f" ({failed.object}: {failed.render()})" if failed is not None else ""
            text = exc.message if isinstance(exc, PgwardenError) else scrub(str(exc).strip().splitlines()[0])
            hint = "fix the cause, then run `pgwarden apply` again: it finishes the retirement"
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                hint = "live traffic holds a lock on what it owns: re-run later, or raise --lock-timeout"
            raise ApplyError(f"retiring role {r.role}: {text}{where}; {self._outcome(result)}", hint=hint) from None

    def _databases(self, r: Retirement, emit: EventHandler, result: Outcome, done: int, total: int) -> int:
        """Every database's statements in its own open transaction, committed only once all succeeded,
        so that a failure in one database leaves every database as it was. Shared objects (databases,
        tablespaces, grants on them) are the exception: every database's REASSIGN/DROP OWNED would update
        the same shared rows and wait for the first one's transaction, so the first database (where
        they are handled) is committed on its own first, and the others see none left. And so that a
        cluster of many databases does not run out of connections, at most OPEN_AT_ONCE are open together."""
        first = 1 if r.shared else 0
        rest = r.databases[first:]
        groups = [r.databases[:first], *(rest[i : i + OPEN_AT_ONCE] for i in range(0, len(rest), OPEN_AT_ONCE))]
        for group in filter(None, groups):
            done = self._together(r, group, emit, result, done, total)
        return done

    def _together(
        self,
        r: Retirement,
        group: Sequence[DatabaseWork],
        emit: EventHandler,
        result: Outcome,
        done: int,
        total: int,
    ) -> int:
        timeout = self.lock_timeout
        open_: list[psycopg.Connection[Any]] = []
        try:
            for work in group:
                info = conninfo_for(self.session.dsn, dbname=work.database)
                conn = connect(info, autocommit=False, what=f"database {work.database}")
                open_.append(conn)
                set_lock_timeout(conn, timeout)
                # kept only once committed below, with every database of the group
                progress = partial(_progress, emit, done, total)
                run_steps(conn, work.steps, result, progress, keep=False)
                done += len(work.steps)
            for conn, work in zip(open_, group, strict=True):
                self.committing = work.database
                conn.commit()
                self.committing = None
                result.executed.extend(work.steps)
                self.kept.append(f"role {r.role}: its objects and grants in database {work.database}")
        finally:
            for conn in open_:
                conn.close()  # an uncommitted transaction is rolled back
        return done

    def _outcome(self, result: Outcome) -> str:
        earlier = [s for s in result.executed if s.phase in (Phase.ROLES, Phase.CREATE_DATABASE)]
        parts = [f"{len(earlier)} step(s) of the roles phase and CREATE DATABASE"] if earlier else []
        parts.extend(self.kept)
        if not parts:
            return "nothing was changed"
        return "what was not committed was rolled back; kept: " + "; ".join(parts)

    def _interrupted(self, r: Retirement, result: Outcome) -> PgwardenError:
        during = f"; database {self.committing} was being committed: it may or may not be" if self.committing else ""
        return ApplyInterrupted(
            f"interrupted while retiring role {r.role}{during}; {self._outcome(result)}",
            hint="run `pgwarden plan` to see what is left, then `pgwarden apply` again: it finishes the retirement",
        )


def _progress(emit: EventHandler, done: int, total: int, step: Step, i: int) -> None:
    emit("step", step, done + i, total)


def prepare_retirement(
    session: Session, first: Plan, skip_unprivileged: bool, lock_timeout: str | None = None
) -> Retiring:
    """Plan apply's retirement phase before anything runs: refuse a blocked retirement (PrivilegeError,
    nothing changed), or with `skip_unprivileged` leave it out with a note saying why."""
    policy = session.policy
    timeout = lock_timeout or policy.apply.lock_timeout
    if not policy.retired:
        return Retiring(session, timeout)
    snap = session.snapshot(names=False)
    found = retirements(session, snap, first)
    if not found:
        return Retiring(session, timeout)
    if policy.mode == "additive":
        names = ", ".join(r.role for r in found)
        note = f"additive mode: retired role(s) {names} not dropped (authoritative mode drops them)"
        return Retiring(session, timeout, notes=[note])
    blocked = [r for r in found if r.blocked]
    if blocked and not skip_unprivileged:
        raise PrivilegeError(
            "; ".join(f"retired role {r.role} cannot be dropped: {'; '.join(r.blockers)}" for r in blocked)
            + "; nothing was changed",
            hint="fix what blocks it (`pgwarden plan` lists it), or pass --skip-unprivileged to apply the rest",
        )
    notes = [f"retired role {r.role} was left as it is: {'; '.join(r.blockers)}" for r in blocked]
    return Retiring(session, timeout, tuple(r for r in found if not r.blocked), notes)
