"""The per-database runner: a job per database, spread over forked worker processes (each with threads)."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pgwarden.errors import PgwardenError

T = TypeVar("T")


@dataclass
class Outcome(Generic[T]):
    """One database's result, or the error that stopped its job, and how long it took."""

    database: str
    result: T | None
    error: PgwardenError | None
    seconds: float


#: on_done(outcome, done, total): called in the calling process, in completion order (progress).
OnDone = Callable[[Outcome[Any], int, int], None]


def run_each(
    databases: Sequence[str],
    job: Callable[[str], T],
    *,
    jobs: int = 1,
    on_done: OnDone | None = None,
    processes: bool = True,
) -> list[Outcome[T]]:
    """`job(database)` for each database, at most `jobs` at once, the outcomes sorted by database.

    Errors are collected per database (a PgwardenError), not raised, so that one bad database does
    not hide the rest; any other exception stops the run and is raised. With `processes` (and fork
    available, more than one core, more than one database, no other thread running), the jobs run in forked worker
    processes, one per core, each running `jobs / cores` of them in threads: the per-database work
    is mostly Python, which threads of one process cannot spread over the cores. The job is
    inherited through fork (it need not be picklable) and must open its own connections; results
    travel back pickled, so they should be small. A Ctrl-C lets the running jobs finish (a second
    one stops them: each database's transaction is then rolled back by the server), reports them
    through `on_done`, and raises KeyboardInterrupt."""
    import multiprocessing  # only when a fleet runs: the start-up of every command

    cores = os.cpu_count() or 1
    workers = min(jobs, cores, len(databases))
    # fork only a process with one thread: a module another thread is importing, or a lock it holds,
    # would reach the workers half-made (a background import in the CLI, a library caller's pool)
    alone = threading.active_count() == 1
    if processes and alone and workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        return _Pool(list(databases), job, workers, math.ceil(jobs / workers), on_done).run()
    return _threads(databases, job, jobs, on_done)


#: In a fleet run: this thread's admin connections (by DSN), kept from one database to the next.
_reuse = threading.local()


def admin_connection(dsn: str | None, open_: Callable[[], Any]) -> Any:
    """The admin connection for a Session: in a fleet run, the thread's own, reused from database to
    database while it is healthy and idle (a connection fewer per database); else `open_()`."""
    kept: dict[str | None, Any] | None = getattr(_reuse, "conns", None)
    if kept is None:
        return open_()
    conn = kept.get(dsn)
    if conn is not None and (conn.closed or conn.broken or conn.info.transaction_status != 0):  # 0: IDLE
        conn.close()
        conn = None
    if conn is None:
        conn = kept[dsn] = open_()
    return conn


def reused(conn: Any) -> bool:
    """Whether `conn` is a fleet thread's admin connection (the run closes it, not the Session)."""
    kept: dict[str | None, Any] | None = getattr(_reuse, "conns", None)
    return kept is not None and any(c is conn for c in kept.values())


def _reusing(body: Callable[[], None]) -> None:
    """Run `body` with admin connections kept for this thread, closed at its end."""
    _reuse.conns = {}
    try:
        body()
    finally:
        for conn in _reuse.conns.values():
            conn.close()
        _reuse.conns = None


def timed(database: str, job: Callable[[str], T]) -> Outcome[T]:
    start = time.perf_counter()
    try:
        return Outcome(database, job(database), None, time.perf_counter() - start)
    except PgwardenError as exc:
        return Outcome(database, None, exc, time.perf_counter() - start)


def _threads(databases: Sequence[str], job: Callable[[str], T], jobs: int, on_done: OnDone | None) -> list[Outcome[T]]:
    """The jobs in threads of this process, each thread keeping its admin connections from one
    database to the next as a worker process's threads do (`--jobs 1`, one core: without it, each
    database cost the server a second backend, its start-up and exit), closed when the run ends."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    kept: list[dict[str | None, Any]] = []
    lock = threading.Lock()

    def keep() -> None:  # each pool thread, as it starts
        _reuse.conns = {}
        with lock:
            kept.append(_reuse.conns)

    outcomes: list[Outcome[T]] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs), initializer=keep) as pool:
            futures = [pool.submit(timed, db, job) for db in databases]
            for done, fut in enumerate(as_completed(futures), 1):
                outcome = fut.result()
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome, done, len(databases))
    finally:  # the threads have ended (or are ending with the pool): their connections are closed here
        for conns in kept:
            for conn in list(conns.values()):
                conn.close()
    return sorted(outcomes, key=lambda o: o.database)


def _portable(exc: PgwardenError) -> tuple[type[PgwardenError], str, str | None]:
    """An error as (class, message, hint): PgwardenError's own pickling would drop the hint; a class
    pickle cannot name (a local one) travels as PgwardenError."""
    import pickle  # only when a fleet runs: the start-up of every command

    kind = type(exc)
    try:
        pickle.dumps(kind)
    except (pickle.PicklingError, AttributeError, TypeError):
        kind = PgwardenError
    return kind, exc.message, exc.hint


def _restore(kind: type[PgwardenError], message: str, hint: str | None) -> PgwardenError:
    exc = kind.__new__(kind)
    PgwardenError.__init__(exc, message, hint)
    return exc


class _Pool(Generic[T]):
    """Forked workers taking the next database from a shared counter (in order), answering on one pipe."""

    def __init__(
        self, databases: list[str], job: Callable[[str], T], workers: int, threads: int, on_done: OnDone | None
    ) -> None:
        import multiprocessing  # only when a fleet runs: the start-up of every command

        ctx = multiprocessing.get_context("fork")
        self.databases, self.job, self.on_done = databases, job, on_done
        self.workers, self.threads = workers, threads
        self.next = ctx.Value("i", 0)  # the index of the next database to start
        self.stop = ctx.Event()
        self.reader, self.writer = ctx.Pipe(duplex=False)
        self.write_lock = ctx.Lock()
        self.procs = [ctx.Process(target=self._worker, daemon=True) for _ in range(workers)]
        self.interrupts = 0

    # ---- in the worker processes

    def _worker(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what a Ctrl-C stops
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a command's SIGTERM handler is the parent's
        self.reader.close()
        code = 0
        try:
            pool = [threading.Thread(target=_reusing, args=(self._take,)) for _ in range(self.threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        except BaseException:  # noqa: BLE001 (the worker must end with os._exit, whatever happens)
            code = 1
        finally:
            self._send(("exit", None))
            # no interpreter shutdown: finalisers of objects inherited from the parent (its
            # connections' sockets among them) must not run here
            os._exit(code)

    def _take(self) -> None:
        while not self.stop.is_set():
            with self.next.get_lock():
                i = self.next.value
                if i >= len(self.databases):
                    return
                self.next.value = i + 1
            try:
                outcome = timed(self.databases[i], self.job)
            except Exception as exc:  # a bug or an unexpected driver error: stop the run, say where
                text = "".join(traceback.format_exception(exc))
                self._send(("crash", (i, text)))
                self.stop.set()
                return
            error = _portable(outcome.error) if outcome.error is not None else None
            try:
                self._send(("done", (i, outcome.result, error, outcome.seconds)))
            except Exception as exc:  # noqa: BLE001 (an unpicklable result is a bug of the job: say so)
                self._send(("crash", (i, f"the result for database {self.databases[i]} cannot be sent: {exc}")))
                self.stop.set()
                return

    def _send(self, message: tuple[str, Any]) -> None:
        import pickle  # only when a fleet runs: the start-up of every command

        data = pickle.dumps(message)
        with self.write_lock:
            self.writer.send_bytes(data)

    # ---- in the calling process

    def run(self) -> list[Outcome[T]]:
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, self._interrupt) if main else None
        outcomes: dict[int, Outcome[T]] = {}
        crash: str | None = None
        try:
            for p in self.procs:
                p.start()
            self.writer.close()
            crash = self._collect(outcomes)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            self.stop.set()
            for p in self.procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join()
            self.reader.close()
        if crash is not None:
            raise RuntimeError(f"a database job failed in a worker process:\n{crash}")
        started = self.next.value
        for i in range(min(started, len(self.databases))):
            if i not in outcomes:  # its worker died (killed, out of memory): an error, not a silence
                error = PgwardenError(
                    f"the worker process checking database {self.databases[i]} stopped before it finished",
                    hint="run again for this database (-d NAME); see the system log for why the process ended",
                )
                outcomes[i] = Outcome(self.databases[i], None, error, 0.0)
        if self.interrupts:
            raise KeyboardInterrupt
        return sorted(outcomes.values(), key=lambda o: o.database)

    def _collect(self, outcomes: dict[int, Outcome[T]]) -> str | None:
        """Read the workers' answers until every worker has exited; the first crash, if any."""
        import pickle  # only when a fleet runs: the start-up of every command

        alive, crash = len(self.procs), None
        while alive:
            if not self.reader.poll(0.2):
                if all(not p.is_alive() for p in self.procs) and not self.reader.poll(0):
                    break  # killed workers send no goodbye
                continue
            try:
                kind, body = pickle.loads(self.reader.recv_bytes())
            except EOFError:
                break
            if kind == "exit":
                alive -= 1
            elif kind == "crash":
                crash = crash or body[1]
            else:
                i, result, error, seconds = body
                outcome: Outcome[T] = Outcome(self.databases[i], result, _restore(*error) if error else None, seconds)
                outcomes[i] = outcome
                if self.on_done:
                    self.on_done(outcome, len(outcomes), len(self.databases))
        return crash

    def _interrupt(self, signum: int, frame: object) -> None:
        """First Ctrl-C: start no more databases, let the running ones finish; second: stop them."""
        self.interrupts += 1
        self.stop.set()
        if self.interrupts > 1:
            for p in self.procs:
                if p.is_alive():
                    p.terminate()
