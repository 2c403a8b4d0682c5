"""Execute a plan: roles first, then CREATE DATABASE, then the whole database part in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgwarden.connect import scrub
from pgwarden.errors import ApplyError, ApplyInterrupted, PrivilegeError
from pgwarden.executor import DATABASE_LOCK_KEY, cluster_lock, run_steps, set_lock_timeout
from pgwarden.hooks import ApplyHooks
from pgwarden.plan import Phase, Plan, Step, missing_database_note
from pgwarden.pooler import refuse_superuser as refuse_superuser_auth_user
from pgwarden.retirement import prepare_retirement
from pgwarden.session import Session

if TYPE_CHECKING:
    import psycopg

    from pgwarden.snapshot import Snapshot

#: Above this many statements, the database phase is sent with pipeline mode.
PIPELINE_MIN = 50

EventHandler = Callable[[str, "Step | None", int, int], None]


@dataclass
class ApplyResult:
    plan: Plan
    executed: list[Step] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the step whose statement failed, for the error message (pipelines do not say which)
    failed: Step | None = None

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


def unprivileged_error(steps: Sequence[Step], kept: Sequence[Step] = (), plan: Plan | None = None) -> PrivilegeError:
    needs = sorted({str(s.needs or "more privileges") for s in steps})
    hint = (
        "connect as a role that has them, or pass --skip-unprivileged to apply the rest and print "
        "the SQL someone with the right role must run"
    )
    keys = {s.key for s in steps}
    said = [i for i in (plan.impossible if plan is not None else ()) if i.step.key in keys]
    if said and plan is not None and plan.provider is not None:
        # on a managed service no role the customer logs in as has them: say why and what to do instead
        name = plan.provider.provider.name
        whys = "; ".join(f"{i.step.object}: {i.why}" for i in said)
        return PrivilegeError(
            f"{len(steps)} step(s) cannot be run on {name} ({whys}); " + _outcome(kept, "the database part"),
            hint="instead: " + "; ".join(dict.fromkeys(i.instead for i in said)),
        )
    return PrivilegeError(
        f"{len(steps)} step(s) need more than the connected role has ({'; '.join(needs)}); "
        + _outcome(kept, "the database part"),
        hint=hint,
    )


def apply(
    session: Session,
    secrets: Mapping[str, str] | None = None,
    *,
    skip_unprivileged: bool = False,
    lock_timeout: str | None = None,
    on_event: EventHandler | None = None,
    hooks: ApplyHooks | None = None,
) -> ApplyResult:
    """Make the database match the policy. All or nothing for the database part.
    On Ctrl-C raises ApplyInterrupted saying what was committed and what was rolled back.
    `hooks` (pgwarden.hooks) check a reviewed plan and write the ledger at apply's fixed points."""
    emit = on_event or _noop
    hooks = hooks or ApplyHooks()
    timeout = lock_timeout or session.policy.apply.lock_timeout
    result: ApplyResult | None = None
    try:
        # read first without the cluster lock: when nothing cluster-wide is to change (no role,
        # CREATE DATABASE or retirement step; nothing due for the hooks), the lock protects nothing
        # this run does, and the databases of a fleet then apply side by side instead of one by one.
        # The database part re-reads under its own lock in its transaction either way.
        # (a fleet's cluster-level part, read once, serves this first read: what is planned
        # from is read again, under the locks)
        snap = _first_read(session, secrets)
        refuse_superuser_auth_user(session.policy, snap)  # [pgbouncer]: before anything runs
        first = session.plan(snap, secrets)
        if not _cluster_wide(session, first, hooks):
            result = ApplyResult(first, notes=list(first.notes))
            _run(session, secrets, first, result, timeout, skip_unprivileged, emit, hooks)
            return result
        with cluster_lock(session, on_wait=lambda: emit("waiting", None, 0, 0)):
            snap = session.snapshot(secrets=secrets, names=False)  # as it is now
            refuse_superuser_auth_user(session.policy, snap)
            first = session.plan(snap, secrets)
            result = ApplyResult(first, notes=list(first.notes))
            _run(session, secrets, first, result, timeout, skip_unprivileged, emit, hooks)
            return result
    except KeyboardInterrupt:
        raise _interrupted(result, session.target) from None


def _first_read(session: Session, secrets: Mapping[str, str] | None) -> Snapshot:
    """The first snapshot and the ledger's state on one connection: the plan needs the ledger
    (pgwarden.timebound) and would otherwise open a connection of its own to read it, a second
    login per database (a compliant fleet's apply is then this read and nothing more)."""
    from pgwarden.ledger import read_state

    with session.inspection_connection() as conn:
        snap = session.snapshot(conn, secrets, names=False, shared=True)
        if session.ledger is None and snap.database_exists:
            session.ledger = read_state(conn, snap)
    return snap


def _cluster_wide(session: Session, first: Plan, hooks: ApplyHooks) -> bool:
    """Whether this apply may change something shared by the cluster's databases (or a hook needs the lock)."""
    steps = any(s.phase != Phase.DATABASE for s in first.steps)
    return steps or bool(session.policy.retired) or hooks.needs_cluster_lock(session, first)


# arguments over 5 on purpose: apply's options and its result, passed down once to the run they shape
def _run(  # noqa: PLR0913
    session: Session,
    secrets: Mapping[str, str] | None,
    first: Plan,
    result: ApplyResult,
    timeout: str,
    skip_unprivileged: bool,
    emit: EventHandler,
    hooks: ApplyHooks,
) -> None:
    """The phases in order, from the plan `first` (read under the cluster lock when it has cluster-wide steps)."""
    admin = session.admin
    error: BaseException | None = None
    try:
        hooks.before(session, first)
        if first.unprivileged and not skip_unprivileged:
            raise unprivileged_error(first.unprivileged, plan=first)
        retiring = prepare_retirement(session, first, skip_unprivileged, timeout)  # refuses a blocked one now
        _roles_phase(admin, first, emit, result)
        _create_database_phase(session, admin, first, emit, result)
        retiring.run(emit, result)  # retired roles, in every database: once the owner exists
        if first.empty:
            return
        if not session.target_exists():
            result.notes.append(f"database {session.target} does not exist: its steps were not applied")
            return
        _database_phase(session, secrets, timeout, skip_unprivileged, emit, result, hooks)
    except BaseException as exc:
        error = exc
        raise
    finally:
        hooks.after(session, result, error)  # the ledger: what happened (under the cluster lock when taken)


def _roles_phase(admin: psycopg.Connection[Any], first: Plan, emit: EventHandler, result: ApplyResult) -> None:
    """Every role step in one transaction: all committed, or none."""
    import psycopg

    roles = [s for s in first.phase(Phase.ROLES) if s.allowed]
    result.skipped.extend(s for s in first.phase(Phase.ROLES) if not s.allowed)
    if not roles:
        return
    try:
        with admin.transaction():
            _execute(admin, roles, emit, result)
    except BaseException as exc:
        result.executed.clear()  # rolled back: nothing of it is kept
        if isinstance(exc, psycopg.Error):
            raise _apply_error(exc, "roles", (), result.failed) from None
        raise


def _create_database_phase(
    session: Session, admin: psycopg.Connection[Any], first: Plan, emit: EventHandler, result: ApplyResult
) -> None:
    import psycopg

    for step in first.phase(Phase.CREATE_DATABASE):
        if not step.allowed:
            result.skipped.append(step)
            continue
        kept = list(result.executed)
        try:
            _execute(admin, [step], emit, result)
        except psycopg.Error as exc:
            raise _apply_error(exc, "CREATE DATABASE", kept, result.failed) from None
        # it exists now: the plan's "does not exist yet" note no longer holds
        result.notes = [n for n in result.notes if n != missing_database_note(session.target)]


def _database_phase(
    session: Session,
    secrets: Mapping[str, str] | None,
    lock_timeout: str,
    skip_unprivileged: bool,
    emit: EventHandler,
    result: ApplyResult,
    hooks: ApplyHooks,
) -> None:
    import psycopg

    conn = session.connect_target(autocommit=False)
    kept = list(result.executed)  # the roles phase and CREATE DATABASE: committed
    committing = False
    try:
        with conn.transaction():
            set_lock_timeout(conn, lock_timeout)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (DATABASE_LOCK_KEY,))
            # Plan again inside the transaction, under the lock: what we change is what is there.
            snap = session.snapshot(conn)
            current = session.plan(snap, secrets)
            hooks.in_transaction(conn, snap, current, result)
            steps = list(current.phase(Phase.DATABASE))
            blocked = [s for s in steps if not s.allowed]
            if blocked and not skip_unprivileged:
                raise unprivileged_error(blocked, kept, plan=current)
            result.skipped.extend(blocked)
            todo = [s for s in steps if s.allowed]
            if todo:
                _execute(conn, todo, emit, result, pipeline=len(todo) >= PIPELINE_MIN)
            hooks.before_commit(conn, result)
            committing = True  # from here the transaction ends with COMMIT
    except BaseException as exc:
        if isinstance(exc, psycopg.Error):  # the server rolled it back
            result.executed = kept
            raise _apply_error(exc, f"database {session.target}", kept, result.failed) from None
        if not committing:  # Ctrl-C before COMMIT: rolled back; during it, nobody knows (see _interrupted)
            result.executed = kept
        raise
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
    run_steps(conn, steps, result, lambda step, i: emit("step", step, i, total), pipeline=pipeline)


def _apply_error(exc: BaseException, phase: str, kept: Sequence[Step], failed: Step | None = None) -> ApplyError:
    """One line: what failed, where, and what is kept of the steps committed before the failing phase."""
    import psycopg.errors as e

    where = f" ({failed.object}: {failed.render()})" if failed is not None else ""
    message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    undone = "the roles phase" if phase == "roles" else ("it" if phase == "CREATE DATABASE" else "the database part")
    outcome = _outcome(kept, undone)
    if isinstance(exc, e.LockNotAvailable):
        return ApplyError(
            f"{phase}: a lock could not be taken within lock_timeout{where}; {outcome}",
            hint="live traffic holds the lock: re-run later, or raise --lock-timeout",
        )
    if isinstance(exc, e.InsufficientPrivilege):
        return ApplyError(
            f"{phase}: permission denied: {message}{where}; {outcome}",
            hint="connect as a role with the rights `pgwarden plan` lists",
        )
    return ApplyError(f"{phase}: {message}{where}; {outcome}", hint="re-run `pgwarden plan`")


def _outcome(kept: Sequence[Step], undone: str) -> str:
    """The truth about the database after a failure: `undone` was rolled back, `kept` stays committed."""
    if not kept:
        return "nothing was changed"
    return f"{undone} was rolled back, but {_describe(kept)} had already been committed and stays"


def _describe(steps: Sequence[Step], shown: int = 3) -> str:
    roles = [s for s in steps if s.phase == Phase.ROLES]
    parts = []
    if roles:
        listed = "; ".join(s.render_short(120) for s in roles[:shown])
        more = f"; and {len(roles) - shown} more" if len(roles) > shown else ""
        parts.append(f"the roles phase ({len(roles)} step(s): {listed}{more})")
    parts.extend(s.render_short(120) for s in steps if s.phase == Phase.CREATE_DATABASE)
    retired = sorted({str(s.role) for s in steps if s.phase == Phase.RETIRE})
    if retired:
        parts.append(f"the retirement of {', '.join(retired)} ({sum(s.phase == Phase.RETIRE for s in steps)} step(s))")
    return " and ".join(parts)


def _interrupted(result: ApplyResult | None, database: str) -> ApplyInterrupted:
    executed = result.executed if result is not None else []
    kept = [s for s in executed if s.phase != Phase.DATABASE]
    hint = "run `pgwarden plan` to see what is left, then `pgwarden apply` again (it is safe to re-run)"
    if len(kept) < len(executed):  # interrupted while committing
        return ApplyInterrupted(
            f"interrupted while committing the database part of {database}: it may or may not be committed"
            + (f"; {_describe(kept)} had been committed before" if kept else ""),
            hint=hint,
        )
    if not kept:
        return ApplyInterrupted("interrupted: nothing was changed (the transaction in progress was rolled back)", hint)
    return ApplyInterrupted(
        f"interrupted: the database part of {database} was rolled back (or had not started), but "
        f"{_describe(kept)} had already been committed and stays",
        hint=hint,
    )
