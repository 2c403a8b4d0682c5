"""A big database's independent reads on a second connection that sees what the first sees (an exported snapshot)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pgwarden.fetch import fetch

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

#: pg_class's size on disk from which a check reads on two connections: about 50,000 relations.
#: Below it the server's reads take a few tens of milliseconds, less than a second connection
#: costs to open (a backend, its catalog caches, the client's thread); above it they take
#: hundreds, of which the hazard reads are a third to a half (bench/RESULTS.md).
THRESHOLD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CatalogSize:
    """queries/catalog_size.sql."""

    pg_class_bytes: int


def big_enough(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database of `conn` is big enough for two connections to gain: one cheap
    statement (the size of pg_class's file, no scan)."""
    return fetch(conn, "catalog_size", CatalogSize)[0].pg_class_bytes >= THRESHOLD_BYTES


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


class SecondReader(Generic[T]):
    """Opens the first connection's transaction (REPEATABLE READ, read only) and exports its
    snapshot; a thread opens a second connection at once and imports it (as pg_dump -j does), then
    runs the work it is given (`submit`) there while the first connection goes on. Both read the
    same committed state: a change another session commits meanwhile is seen by neither.

    `close` ends the first connection's transaction and the thread (its connection is closed:
    what it read changed nothing)."""

    def __init__(self, first: psycopg.Connection[Any], open_second: Callable[[], psycopg.Connection[Any]]) -> None:
        self._first = first
        first.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = first.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
        self._snapshot: str = row[0] if row else ""
        self._open_second = open_second
        self._job: Callable[[psycopg.Connection[Any]], T] | None = None
        self._result: T | Failed = FAILED
        self._given = threading.Event()  # a job (or the end) was given
        self._done = threading.Event()
        self._second: psycopg.Connection[Any] | None = None
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="pgwarden-second-connection", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[psycopg.Connection[Any]], T]) -> None:
        """Run `job(second connection)` in the thread (once)."""
        self._job = job
        self._given.set()

    def result(self) -> T | Failed:
        """The job's result, or FAILED (then the caller runs the job on the first connection)."""
        if self._job is None:
            return FAILED
        self._done.wait()
        return self._result

    def close(self) -> None:
        """End the first connection's transaction and the thread; a read still running on the
        second connection (the first failed or was interrupted) is cancelled, not waited for."""
        self._given.set()
        second = self._second
        if self._busy and second is not None and not self._done.is_set():
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
            self._done.set()
            return
        self._second = conn
        try:
            from psycopg import sql

            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self._snapshot)))
            self._given.wait()
            job = self._job
            if job is not None:
                self._busy = True
                self._result = job(conn)
        except Exception:  # noqa: BLE001 - the first connection runs it again: its error, as without a second one
            self._result = FAILED
        finally:
            self._busy = False
            self._second = None
            conn.close()
            self._done.set()
