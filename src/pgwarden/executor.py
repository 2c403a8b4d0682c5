"""The one executor apply, retire and adopt run their steps through: cluster lock, lock_timeout, statements."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Protocol

from pgwarden.connect import connect, conninfo_for
from pgwarden.errors import ConnectError
from pgwarden.plan import Step

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session

#: Advisory lock key of the cluster phase, shared by every pgwarden apply/adopt ("pgwarden" in ASCII, truncated
#: to 63 bits). Taken in LOCK_DATABASE so that it is one lock for the whole cluster (see cluster_lock).
LOCK_KEY = 0x7067776172640001

#: Advisory lock key of the database phase, taken in the target database. It must differ from LOCK_KEY:
#: advisory locks belong to the database they are taken in, so when the cluster lock had to fall back to the
#: target database itself (an admin DSN naming it), the same key would make apply wait for its own session.
DATABASE_LOCK_KEY = 0x7067776172640002

#: The database the cluster lock is taken in, whatever database the admin DSN names: advisory locks are
#: per database, and two applies whose DSNs name different databases must still wait for each other.
LOCK_DATABASE = "postgres"

#: Called after each step ran, with its 1-based position among the steps of the call.
StepHandler = Callable[[Step, int], None]


class Record(Protocol):
    """Where a run keeps what it executed and which step is running (the error messages name it)."""

    executed: list[Step]
    failed: Step | None


class Outcome(Record, Protocol):
    """A Record that also carries notes for the user (apply's ApplyResult): what retirement reports into."""

    notes: list[str]


def run_steps(
    conn: psycopg.Connection[Any],
    steps: Sequence[Step],
    record: Record | None = None,
    on_step: StepHandler | None = None,
    *,
    pipeline: bool = False,
    keep: bool = True,
) -> None:
    """Execute `steps` in order on `conn`, one by one or sent in one pipeline (one round trip; a
    pipeline's error does not say which statement failed, so `record.failed` is left unset there).
    With `keep`, the steps are added to `record.executed` as they succeed; a caller that commits
    later (retirement's open transactions) adds them itself once committed."""
    if pipeline:
        with conn.pipeline():
            for i, step in enumerate(steps, 1):
                conn.execute(step.sql)
                if on_step is not None:
                    on_step(step, i)
        if record is not None and keep:
            record.executed.extend(steps)
        return
    for i, step in enumerate(steps, 1):
        if record is not None:
            record.failed = step
        conn.execute(step.sql)
        if record is not None:
            record.failed = None
            if keep:
                record.executed.append(step)
        if on_step is not None:
            on_step(step, i)


def set_lock_timeout(conn: psycopg.Connection[Any], timeout: str) -> None:
    """lock_timeout for the transaction in progress only, so that live traffic never waits long on us."""
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))


@contextmanager
def cluster_lock(session: Session, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the cluster-wide advisory lock (waiting for it, after calling on_wait) for the block.

    Taken in LOCK_DATABASE: on the admin connection when the DSN names it, else on a connection of its own
    (the admin's credentials). Only when the admin may not connect there is it taken on the admin
    connection's database, which then serialises only the runs whose DSNs name that same database."""
    own: psycopg.Connection[Any] | None = None
    conn = session.admin
    if conn.info.dbname != LOCK_DATABASE:
        with suppress(ConnectError):
            own = connect(conninfo_for(session.dsn, dbname=LOCK_DATABASE), autocommit=True, what=LOCK_DATABASE)
            conn = own
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if not (row and row[0]):
            if on_wait is not None:
                on_wait()
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        yield
    finally:
        if own is not None:
            own.close()  # the server releases the lock with the session
        else:
            with suppress(BaseException):  # gone, or interrupted: the server releases the lock with the session
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
