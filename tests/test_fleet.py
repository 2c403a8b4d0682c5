"""The per-database runner (pgwarden.fleet): worker processes, errors per database, order, Ctrl-C, a dead worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli
from pgwarden.errors import ConnectError, PgwardenError
from pgwarden.fleet import Outcome, run_each

NAMES = ["d", "b", "a", "c", "f", "e"]
MULTICORE = (os.cpu_count() or 1) > 1


def test_outcomes_sorted_and_errors_kept_per_database_with_class_and_hint() -> None:
    lock = threading.Lock()  # not picklable: the job reaches the workers through fork, not pickle

    def job(name: str) -> tuple[str, int]:
        with lock:
            pass
        if name == "b":
            raise ConnectError(f"cannot open database {name}", hint="is it accepting connections?")
        return name.upper(), os.getpid()

    outcomes = run_each(NAMES, job, jobs=4)
    assert [o.database for o in outcomes] == sorted(NAMES)
    failed = {o.database: o.error for o in outcomes if o.error is not None}
    assert list(failed) == ["b"]
    error = failed["b"]
    assert isinstance(error, ConnectError) and error.exit_code == 2
    assert (error.message, error.hint) == ("cannot open database b", "is it accepting connections?")
    assert {o.database: o.result[0] for o in outcomes if o.result} == {n: n.upper() for n in NAMES if n != "b"}
    pids = {o.result[1] for o in outcomes if o.result}
    if MULTICORE:  # the per-database work runs in worker processes, not in the caller's
        assert os.getpid() not in pids


@pytest.mark.skipif(not MULTICORE, reason="one core: the runner uses threads whatever runs beside it")
def test_a_process_with_another_thread_running_is_never_forked() -> None:
    # a module that thread is importing (check's background imports did) would reach a forked worker
    # half-made: the runner then keeps to threads of its own process
    release = threading.Event()
    other = threading.Thread(target=release.wait, daemon=True)
    other.start()
    try:
        outcomes = run_each(NAMES, lambda name: os.getpid(), jobs=4)
    finally:
        release.set()
        other.join()
    assert {o.result for o in outcomes} == {os.getpid()}
    forked = run_each(NAMES, lambda name: os.getpid(), jobs=4)  # alone again: worker processes
    assert os.getpid() not in {o.result for o in forked}


def test_progress_is_reported_in_the_caller_once_per_database() -> None:
    seen: list[tuple[str, int, int, int]] = []

    def on_done(o: Outcome[Any], done: int, total: int) -> None:
        seen.append((o.database, done, total, os.getpid()))

    run_each(NAMES, lambda n: n, jobs=3, on_done=on_done)
    assert sorted(s[0] for s in seen) == sorted(NAMES)
    assert [s[1] for s in seen] == list(range(1, len(NAMES) + 1))
    assert {s[2] for s in seen} == {len(NAMES)} and {s[3] for s in seen} == {os.getpid()}


def test_an_unexpected_exception_stops_the_run_and_is_raised_with_its_traceback() -> None:
    def job(name: str) -> str:
        if name == "c":
            raise ZeroDivisionError("a bug in the job")
        return name

    with pytest.raises(RuntimeError) as caught:
        run_each(NAMES, job, jobs=2)
    if MULTICORE:
        assert "ZeroDivisionError: a bug in the job" in str(caught.value)


@pytest.mark.skipif(not MULTICORE, reason="one core: the runner uses threads, no worker process to kill")
def test_a_worker_that_dies_is_an_error_for_its_database_not_a_silence() -> None:
    def job(name: str) -> str:
        if name == "c":
            os.kill(os.getpid(), signal.SIGKILL)
        return name

    outcomes = run_each(NAMES, job, jobs=2)
    by_name = {o.database: o for o in outcomes}
    assert sorted(by_name) == sorted(NAMES)  # the other worker took over the rest
    dead = by_name["c"].error
    assert dead is not None and "stopped before it finished" in dead.message
    # one thread per worker here: only the database the dead worker was on is lost, and said so
    assert {n: o.result for n, o in by_name.items() if n != "c"} == {n: n for n in NAMES if n != "c"}


@pytest.mark.skipif(not MULTICORE, reason="one core: the runner uses threads (no Ctrl-C handling of its own)")
def test_ctrl_c_lets_running_databases_finish_reports_them_and_starts_no_more() -> None:
    many = [f"db{i:02d}" for i in range(20)]
    seen: list[Outcome[Any]] = []

    def job(name: str) -> str:
        time.sleep(0.3)
        return name

    def on_done(o: Outcome[Any], done: int, total: int) -> None:
        seen.append(o)
        if done == 1:
            os.kill(os.getpid(), signal.SIGINT)  # what a Ctrl-C in the terminal sends

    # Python's own Ctrl-C handler, as in a terminal (a test worker may have been started with SIGINT ignored)
    started_with = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_each(many, job, jobs=2, on_done=on_done)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the caller's handler is back
    finally:
        signal.signal(signal.SIGINT, started_with)
    # the jobs that were running finished and were reported; the rest were never started
    assert 1 <= len(seen) < len(many)
    assert all(o.result == o.database and o.error is None for o in seen)


def test_admin_connection_is_reused_from_one_database_to_the_next(
    admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    dbs, job = _four_databases(admin_dsn, admin_conn, unique_name, pg_cleanup, "fr")
    outcomes = run_each(dbs, job, jobs=2)
    pids = {o.result for o in outcomes}
    assert all(o.error is None for o in outcomes)
    if MULTICORE:  # two workers of one thread each: at most two admin connections for four databases
        # (one when a loaded machine lets the first worker take every database before the second starts)
        assert 1 <= len(pids) <= 2
    assert _ended(admin_conn, pids)  # closed when the run ends


def test_threads_keep_the_admin_connection_from_one_database_to_the_next_too(
    admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    # `--jobs 1`, one core, or a caller that is not alone: the jobs run in threads of the caller,
    # and each database used to open (and the server to start and end) an admin connection of its own
    dbs, job = _four_databases(admin_dsn, admin_conn, unique_name, pg_cleanup, "ft")
    outcomes = run_each(dbs, job, jobs=1, processes=False)
    assert all(o.error is None for o in outcomes) and [o.database for o in outcomes] == sorted(dbs)
    pids = {o.result for o in outcomes}
    assert len(pids) == 1  # one thread: one admin connection for the four databases
    two = run_each(dbs, job, jobs=2, processes=False)
    pids |= {o.result for o in two}
    assert len(pids) <= 3
    assert _ended(admin_conn, pids)  # closed when each run ends


def _ended(admin_conn: Any, pids: set[int], seconds: float = 10.0) -> bool:
    """Whether the backends `pids` are gone: a closed connection's backend exits on its own a moment
    after the client hangs up, so it may still be listed just then (a run that left one open fails)."""
    deadline = time.monotonic() + seconds
    while True:
        left = admin_conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)).fetchone()
        if left == (0,) or time.monotonic() > deadline:
            return left == (0,)
        time.sleep(0.05)


def _four_databases(
    admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any, prefix: str
) -> tuple[list[str], Callable[[str], int]]:
    """Four empty databases, and a job that opens a session on one and returns its admin connection's pid."""
    from pgwarden.policy import build_policy
    from pgwarden.session import Session

    dbs = [pg_cleanup.database(unique_name(prefix)) for _ in range(4)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')

    def job(name: str) -> int:
        policy = build_policy(database=name, owner="o", app=["a"])
        with Session.open(admin_dsn, policy) as session:
            assert session.target_exists()
            return int(session.admin.info.backend_pid)

    return dbs, job


def _file(dbs: list[str], owner: str, app: str) -> str:
    entries = "\n".join(
        f'[[databases]]\nname = "{db}"\ngrants = [{{ role = "{app}", profile = "readwrite", schemas = ["public"] }}]\n'
        for db in dbs
    )
    roles = f'[owner]\nname = "{owner}"\nlogin = false\n\n[[roles]]\nname = "{app}"\nlogin = false\n'
    return f"version = 2\n\n{roles}\n{entries}"


def test_check_jobs_2_reports_every_database_in_order_and_exits_2_when_one_cannot_be_reached(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    owner, app = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("app"))
    prefix = unique_name("fl")
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in range(4)]
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file(dbs, owner, app))
    env = {"PGWARDEN_DSN": admin_dsn}
    applied = run_cli(["apply", "-c", str(cfg), "--yes", "-j", "2", "-d", f"{prefix}_[012]"], env)
    assert applied.exit_code == 0, applied
    # drift in one database: a grant the policy does not give, made as the admin
    with psycopg_connect(admin_dsn, dbs[1]) as conn:
        conn.execute(f'CREATE TABLE t (id int); ALTER TABLE t OWNER TO "{owner}"; GRANT SELECT ON t TO PUBLIC')
    admin_conn.execute(f'CREATE DATABASE "{dbs[3]}" ALLOW_CONNECTIONS false')

    first = run_cli(["check", "-c", str(cfg), "-j", "2", "--format", "json"], env)
    assert first.exit_code == 2, first  # one database could not be checked: the job was not done
    envelope = first.json()
    assert [d["database"] for d in envelope["databases"]] == dbs
    by_name = {d["database"]: d for d in envelope["databases"]}
    assert "not currently accepting connections" in by_name[dbs[3]]["error"]
    assert [f["rule"] for f in by_name[dbs[0]]["findings"]] == []
    assert any("PUBLIC" in (f.get("fix") or "") for f in by_name[dbs[1]]["findings"]), by_name[dbs[1]]
    assert envelope["summary"]["errors"] == 1
    again = run_cli(["check", "-c", str(cfg), "-j", "2", "--format", "json"], env)

    def timeless(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "databases": [{k: v for k, v in d.items() if k != "seconds"} for d in doc["databases"]]}

    # the same document, whatever order the workers finished in (but for how long each took)
    assert timeless(again.json()) == timeless(envelope)

    text = run_cli(["check", "-c", str(cfg), "-j", "2"], env)
    assert text.exit_code == 2
    assert dbs[3] in text.stdout + text.stderr and "Traceback" not in text.stderr


def psycopg_connect(dsn: str, dbname: str) -> Any:
    import psycopg

    from helpers import db_conninfo

    return psycopg.connect(db_conninfo(dsn, dbname), autocommit=True)


def test_d_pattern_matching_none_of_the_files_databases_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file(["shop", "shop_eu"], "own", "app"))
    # a file of plain names needs no cluster to know: the unreachable DSN is never used
    result = run_cli(["check", "-c", str(cfg), "-d", "audit*", "--dsn", "host=127.0.0.1 port=1"])
    assert result.exit_code == 2, result
    error, hint = result.stderr.strip().splitlines()[-2:]
    assert error == f"error: --database 'audit*' matches none of the databases of {cfg} (shop, shop_eu)"
    assert hint.startswith("hint: ")
    assert "Traceback" not in result.stderr


def test_an_error_class_that_cannot_travel_arrives_as_a_pgwarden_error_with_its_words() -> None:
    class Odd(PgwardenError):  # local: pickle cannot name it in the caller
        pass

    def job(name: str) -> None:
        raise Odd(f"odd {name}", hint=f"fix {name}")

    outcomes = run_each(["x", "y"], job, jobs=2)
    assert [(str(o.error), o.error.hint) for o in outcomes if o.error] == [("odd x", "fix x"), ("odd y", "fix y")]
    assert all(isinstance(o.error, PgwardenError) for o in outcomes)


@pytest.mark.skipif(not MULTICORE, reason="one core: the runner uses threads (no Ctrl-C handling of its own)")
def test_ctrl_c_during_apply_of_a_fleet_exits_130_naming_exactly_the_databases_it_changed(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    import subprocess
    import sys

    from helpers import write_policy

    prefix = unique_name("ci")
    owner, app = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("app"))
    dbs = [pg_cleanup.database(f"{prefix}_{i:02d}") for i in range(10)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    cfg = write_policy(tmp_path / "p.toml", database=dbs[0], owner=owner, app=[app])
    argv = [sys.executable, "-m", "pgwarden", "apply", "-c", str(cfg), "-d", f"{prefix}_*", "-j", "2", "--yes"]
    env = {**os.environ, "PGWARDEN_DSN": admin_dsn, "NO_COLOR": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # the first database done: Ctrl-C, as in a terminal
        lines.append(line)
        if line.startswith("[1/10] "):
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=120)
    text = "".join(lines) + err
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    owned = {
        r[0]
        for r in admin_conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s) AND pg_get_userbyid(datdba) = %s", (dbs, owner)
        )
    }
    # what it says it kept is exactly what changed: the finished databases, never a half-applied one
    said = {db for db in dbs if f"committed in database {db}" in text}
    assert said == owned, text
    assert 1 <= len(owned) < len(dbs), text  # the running ones finished; the rest were never started
