"""Execute a plan: roles first, then CREATE DATABASE, then the whole database part in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgwarden.connect import scrub
from pgwarden.errors import ApplyError, PrivilegeError
from pgwarden.plan import Phase, Plan, Step, missing_database_note
from pgwarden.session import Session

if TYPE_CHECKING:
    import psycopg

#: Advisory lock key shared by every pgwarden apply/adopt ("pgwarden" in ASCII, truncated to 63 bits).
LOCK_KEY = 0x7067776172640001

#: Above this many statements, the database phase is sent with pipeline mode.
PIPELINE_MIN = 50

EventHandler = Callable[[str, "Step | None", int, int], None]


@dataclass
class ApplyResult:
    plan: Plan
    executed: list[Step] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.executed)

    def to_dict(self) -> dict[str, object]:
        return {
            "database": self.plan.database,
            "executed": [s.to_dict() for s in self.executed],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": self.notes,
        }


def _noop(event: str, step: Step | None, done: int, total: int) -> None:
    return None


def unprivileged_error(steps: Sequence[Step]) -> PrivilegeError:
    needs = sorted({str(s.needs) if s.needs else "more privileges" for s in steps})
    return PrivilegeError(
        f"{len(steps)} step(s) need more than the connected role has ({'; '.join(needs)}); nothing was changed",
        hint="connect as a role that has them, or pass --skip-unprivileged to apply the rest and print "
        "the SQL someone with the right role must run",
    )


def apply(
    session: Session,
    secrets: Mapping[str, str] | None = None,
    *,
    skip_unprivileged: bool = False,
    lock_timeout: str | None = None,
    on_event: EventHandler | None = None,
) -> ApplyResult:
    """Make the database match the policy. All or nothing for the database part."""
    import psycopg

    emit = on_event or _noop
    admin = session.admin
    timeout = lock_timeout or session.policy.apply.lock_timeout
    _cluster_lock(admin, emit)
    try:
        # the database part is planned again under the lock; here only roles, CREATE DATABASE and
        # what the admin may do matter, so big groups need not be named
        first = session.plan(session.snapshot(secrets=secrets, names=False), secrets)
        result = ApplyResult(first, notes=list(first.notes))
        if first.unprivileged and not skip_unprivileged:
            raise unprivileged_error(first.unprivileged)
        roles = [s for s in first.phase(Phase.ROLES) if s.allowed]
        result.skipped.extend(s for s in first.phase(Phase.ROLES) if not s.allowed)
        if roles:
            try:
                with admin.transaction():
                    _execute(admin, roles, emit, result)
            except psycopg.Error as exc:
                result.executed.clear()
                raise _apply_error(exc, "roles") from None
        for step in first.phase(Phase.CREATE_DATABASE):
            if not step.allowed:
                result.skipped.append(step)
                continue
            try:
                _execute(admin, [step], emit, result)
            except psycopg.Error as exc:
                raise _apply_error(exc, "CREATE DATABASE") from None
            # it exists now: the plan's "does not exist yet" note no longer holds
            result.notes = [n for n in result.notes if n != missing_database_note(session.target)]
        if first.empty:
            # Nothing to change as of a snapshot taken under the cluster lock: nothing to lock and
            # re-check either (a concurrent apply that is changing the database does its own work).
            return result
        if not session.target_exists():
            result.notes.append(f"database {session.target} does not exist: its steps were not applied")
            return result
        _database_phase(session, secrets, timeout, skip_unprivileged, emit, result)
        return result
    finally:
        try:
            admin.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        except Exception:
            pass  # the connection is gone; the server released the lock with it


def _cluster_lock(admin: psycopg.Connection[Any], emit: EventHandler) -> None:
    row = admin.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    if row and row[0]:
        return
    emit("waiting", None, 0, 0)
    admin.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))


def _database_phase(
    session: Session,
    secrets: Mapping[str, str] | None,
    lock_timeout: str,
    skip_unprivileged: bool,
    emit: EventHandler,
    result: ApplyResult,
) -> None:
    import psycopg

    conn = session.connect_target(autocommit=False)
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            # Plan again inside the transaction, under the lock: what we change is what is there.
            current = session.plan(session.snapshot(conn), secrets)
            steps = list(current.phase(Phase.DATABASE))
            blocked = [s for s in steps if not s.allowed]
            if blocked and not skip_unprivileged:
                raise unprivileged_error(blocked)
            result.skipped.extend(blocked)
            todo = [s for s in steps if s.allowed]
            if todo:
                _execute(conn, todo, emit, result, pipeline=len(todo) >= PIPELINE_MIN)
    except psycopg.Error as exc:
        result.executed = [s for s in result.executed if s.phase != Phase.DATABASE]
        raise _apply_error(exc, f"database {session.target}") from None
    finally:
        conn.close()


def _execute(
    conn: psycopg.Connection[Any],
    steps: Sequence[Step],
    emit: EventHandler,
    result: ApplyResult,
    *,
    pipeline: bool = False,
) -> None:
    total = len(steps)
    if pipeline:
        with conn.pipeline():
            for i, step in enumerate(steps, 1):
                conn.execute(step.sql)
                emit("step", step, i, total)
        result.executed.extend(steps)
        return
    for i, step in enumerate(steps, 1):
        try:
            conn.execute(step.sql)
        except Exception as exc:
            exc.add_note(f"pgwarden step: {step.object}: {step.render()}")
            raise
        result.executed.append(step)
        emit("step", step, i, total)


def _apply_error(exc: BaseException, phase: str) -> ApplyError:
    import psycopg.errors as e

    step_note = next((n for n in getattr(exc, "__notes__", []) if n.startswith("pgwarden step:")), None)
    where = f" ({step_note[len('pgwarden step: ') :]})" if step_note else ""
    message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if isinstance(exc, e.LockNotAvailable):
        return ApplyError(
            f"{phase}: a lock could not be taken within lock_timeout{where}; nothing was changed",
            hint="live traffic holds the lock: re-run later, or raise --lock-timeout",
        )
    if isinstance(exc, e.InsufficientPrivilege):
        return ApplyError(
            f"{phase}: permission denied: {message}{where}; nothing was changed in this phase",
            hint="connect as a role with the rights `pgwarden plan` lists",
        )
    return ApplyError(f"{phase}: {message}{where}; nothing was changed in this phase", hint="re-run `pgwarden plan`")
