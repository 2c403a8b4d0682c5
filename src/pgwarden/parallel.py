"""A big database's independent reads on a second connection that sees what the first sees (an exported snapshot)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pgwarden.fetch import BIG_CATALOG_BYTES

if TYPE_CHECKING:
    import psycopg

    from pgwarden.shared import ServerInfo

T = TypeVar("T")

#: pg_class's size on disk from which a check reads on two connections (about 24,000 relations: the
#: same measure as the objects query's settings, pgwarden.fetch). Below it the server's reads take a
#: few tens of milliseconds, less than a second connection costs to open (a backend, its catalog
#: caches, the client's thread); above it they take hundreds (bench/RESULTS.md).
THRESHOLD_BYTES = BIG_CATALOG_BYTES


def big_enough(server: ServerInfo) -> bool:
    """Whether the database server.sql was read in is big enough for two connections to gain (its
    `catalog_bytes`: no statement of its own)."""
    return server.catalog_bytes >= THRESHOLD_BYTES


class Failed:
    """The second connection could not do the work (could not connect, import the snapshot, or a
    read failed): the caller does it on the first connection, where it fails or succeeds as
    it would have without a second one."""


FAILED = Failed()


def start(
    first: psycopg.Connection[Any], open_second: Callable[[], psycopg.Connection[Any]]
) -> SecondReader[Any] | None:
    """A SecondReader, or None when the first connection cannot export its snapshot (it is then
    back where it was: no transaction open, the reads go on one connection)."""
    import psycopg
    from psycopg.pq import TransactionStatus

    try:
        return SecondReader(first, open_second)
    except psycopg.Error:
        if first.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            first.execute("ROLLBACK")
        return None


class Pending(Generic[T]):
    """A job given to the second connection, and its result once run (FAILED: run it on the first)."""

    def __init__(self, job: Callable[[psycopg.Connection[Any]], T]) -> None:
        self.job = job
        self.value: T | Failed = FAILED
        self.done = threading.Event()
        self.started = False  # the thread took it (under the reader's lock)

    def result(self) -> T | Failed:
        self.done.wait()
        return self.value


def outcome(reader: SecondReader[Any], pending: Pending[T], first: psycopg.Connection[Any]) -> T:
    """`pending`'s result: the second connection's, or its job run on `first` when the second has
    not started it (take_back: the connection free first does it) or could not do it."""
    if not reader.take_back(pending):
        got = pending.result()
        if not isinstance(got, Failed):
            return got
    return pending.job(first)


class SecondReader(Generic[T]):
    """Opens the first connection's transaction (REPEATABLE READ, read only) and exports its
    snapshot; a thread opens a second connection at once and imports it (as pg_dump -j does), then
    runs the jobs it is given (`submit`), one after the other, while the first connection goes on.
    Both read the same committed state: a change another session commits meanwhile is seen by neither.

    `close` ends the first connection's transaction and the thread (its connection is closed:
    what it read changed nothing)."""

    def __init__(self, first: psycopg.Connection[Any], open_second: Callable[[], psycopg.Connection[Any]]) -> None:
        self._first = first
        first.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = first.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
        self._snapshot: str = row[0] if row else ""
        self._open_second = open_second
        self._jobs: queue.SimpleQueue[Pending[Any] | None] = queue.SimpleQueue()
        self._last: Pending[Any] | None = None
        self._lock = threading.Lock()
        self._over = False  # the thread takes no more jobs (its connection failed or closed)
        self._second: psycopg.Connection[Any] | None = None
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="pgwarden-second-connection", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[psycopg.Connection[Any]], Any]) -> Pending[Any]:
        """Run `job(second connection)` in the thread, after the jobs given before it."""
        pending: Pending[Any] = Pending(job)
        with self._lock:
            self._last = pending
            if self._over:
                pending.done.set()  # FAILED: the first connection runs it
            else:
                self._jobs.put(pending)
        return pending

    def take_back(self, pending: Pending[Any]) -> bool:
        """Whether `pending` is given back to the caller, who runs it on the first connection: yes
        when the thread has not started it (it is then FAILED and skipped there), so that the
        connection that is free first does it."""
        with self._lock:
            if pending.started or pending.done.is_set():
                return pending.value is FAILED and pending.done.is_set()
            pending.done.set()
            return True

    def result(self) -> T | Failed:
        """The last job's result, or FAILED (then the caller runs the job on the first connection)."""
        return FAILED if self._last is None else self._last.result()

    def close(self) -> None:
        """End the first connection's transaction and the thread; a read still running on the
        second connection (the first failed or was interrupted) is cancelled, not waited for; those
        not started are not run (FAILED)."""
        self._stop()
        self._jobs.put(None)
        second = self._second
        if self._busy and second is not None:
            second.cancel()
        from psycopg.pq import TransactionStatus

        first = self._first
        if not (first.closed or first.broken) and first.info.transaction_status in (
            TransactionStatus.INTRANS,
            TransactionStatus.INERROR,
        ):
            first.execute("COMMIT")  # read only: nothing to keep; an aborted one rolls back

    def _run(self) -> None:
        try:
            conn = self._open_second()
        except Exception:  # noqa: BLE001 - e.g. the connection limit reached: the first connection does it
            self._stop()
            return
        self._second = conn
        pending: Pending[Any] | None = None
        try:
            from psycopg import sql

            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self._snapshot)))
            while (pending := self._jobs.get()) is not None:
                with self._lock:
                    if pending.done.is_set():  # taken back by the first connection (take_back)
                        continue
                    pending.started = self._busy = True
                pending.value = pending.job(conn)
                self._busy = False
                pending.done.set()
        except Exception:  # noqa: BLE001 - the first connection runs it again: its error, as without a second one
            if pending is not None:
                pending.done.set()  # FAILED
        finally:
            self._busy = False
            self._second = None
            conn.close()
            self._stop()

    def _stop(self) -> None:
        """Take no more jobs: those waiting (and the one that failed) are FAILED."""
        with self._lock:
            self._over = True
        while True:
            try:
                pending = self._jobs.get_nowait()
            except queue.Empty:
                return
            if pending is not None:
                pending.done.set()
