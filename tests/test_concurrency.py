"""Concurrency: four applies at once take turns under the advisory lock; plan/check/probe during apply never error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import PgCleanup
from helpers import write_policy
from pgwarden.executor import LOCK_KEY
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer
from test_atomicity import slow_on_one_version

TABLES = 400  # owned by the admin: a few hundred ALTER ... OWNER statements, so that the runs overlap


def _pgwarden(args: list[str], path: Path, dsn: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pgwarden", *args, "-c", str(path), "--dsn", dsn],
        env={**os.environ, **env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _setup(
    tmp_path: Path, server: LocalServer, unique_name: Callable[[str], str], cleanup: PgCleanup
) -> tuple[Path, dict[str, str]]:
    admin = server.conninfo("postgres")
    db = cleanup.database(unique_name("conc"))
    owner, app, ro = (cleanup.role(unique_name(s)) for s in ("owner", "app", "ro"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(make_conninfo(admin, dbname=db), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN FOR i IN 1..{} LOOP "
                "EXECUTE format('CREATE TABLE public.t%s (id int)', i); END LOOP; END $$"
            ).format(sql.Literal(TABLES))
        )
    path = write_policy(tmp_path / "p.toml", database=db, owner=owner, app=[app], readonly=[ro])
    env = {password_env_for(r): f"pw-{r}" for r in (owner, app, ro)}
    return path, env


def test_four_applies_at_once_take_turns(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    path, env = _setup(tmp_path, pg_server, unique_name, pg_cleanup)
    admin = pg_server.conninfo("postgres")
    t0 = time.monotonic()
    # Hold apply's lock ourselves until all four are queued behind it, so that they surely overlap
    # however fast one apply is (each pytest-xdist worker has its own servers: the waiting
    # advisory locks on this one are these four).
    with psycopg.connect(admin, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        procs = [_pgwarden(["apply", "--yes"], path, admin, env) for _ in range(4)]
        queued = 0
        deadline = time.monotonic() + 120
        while queued < 4 and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.1)
            row = holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()
            queued = int(row[0]) if row else 0
        holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    elapsed = time.monotonic() - t0
    waited = sum("waiting" in err for _, _, err in results)
    print(f"\nconcurrency: 4 applies in {elapsed:.1f}s; {waited} said they were waiting for the lock")
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err and "deadlock" not in err, err
    assert queued == 4, f"only {queued} of the 4 applies queued behind the lock"
    assert waited == 4, "a run that had to wait did not say so"
    final = _pgwarden(["plan", "--exit-code"], path, admin, env)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, out + err


@pytest.mark.slow
def test_readers_during_apply_see_either_state(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup, pg_version: int
) -> None:
    slow_on_one_version(pg_version)
    path, env = _setup(tmp_path, pg_server, unique_name, pg_cleanup)
    admin = pg_server.conninfo("postgres")
    db = path.read_text().split('name = "', 1)[1].split('"', 1)[0]
    outcomes: list[tuple[str, int, str, float, float]] = []
    stop = threading.Event()

    def reader(args: list[str]) -> None:
        while not stop.is_set():
            started = time.monotonic()
            p = _pgwarden(args, path, admin, env)
            out, err = p.communicate(timeout=300)
            outcomes.append((args[0], p.returncode, err, started, time.monotonic()))

    readers = [threading.Thread(target=reader, args=(a,)) for a in (["plan", "--exit-code"], ["check"], ["probe"])]
    for t in readers:
        t.start()
    # Keep apply's transaction open for a while: an application session holds a lock on one of the
    # tables apply must ALTER, and apply waits for it (its lock_timeout raised so that it does not give up).
    with psycopg.connect(make_conninfo(admin, dbname=db)) as blocker:
        blocker.execute("LOCK TABLE public.t99 IN ACCESS SHARE MODE")
        apply = _pgwarden(["apply", "--yes", "--lock-timeout", "60s"], path, admin, env)
        with psycopg.connect(admin, autocommit=True) as watch:
            deadline = time.monotonic() + 60
            waiting_sql = (
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwarden' AND datname = %s "
                "AND wait_event_type = 'Lock'"
            )
            while time.monotonic() < deadline and not (watch.execute(waiting_sql, (db,)).fetchone() or (0,))[0]:
                time.sleep(0.02)
        tx_open = time.monotonic()
        time.sleep(3.0)
        tx_close = time.monotonic()
        blocker.rollback()
    out, err = apply.communicate(timeout=300)
    time.sleep(0.5)
    stop.set()
    for t in readers:
        t.join(timeout=300)
    assert apply.returncode == 0, out + err
    summary = {cmd: sorted({code for c, code, _, _, _ in outcomes if c == cmd}) for cmd in ("plan", "check", "probe")}
    # runs that overlapped the time apply's transaction was open (probe may wait on apply's table locks)
    during = {
        cmd: sum(1 for c, _, _, t0, t1 in outcomes if c == cmd and t0 < tx_close and t1 > tx_open) for cmd in summary
    }
    print(
        f"\nreaders during apply: {len(outcomes)} runs, exit codes {summary}, overlapping apply's "
        f"open transaction: {during}"
    )
    for cmd, code, err, _, _ in outcomes:
        # 0 (clean) or 1 (found the pending changes); 2 would mean the reader failed
        assert code in (0, 1), f"{cmd} exit {code}: {err}"
        assert "Traceback" not in err, err
    assert all(during.values()), f"a reader never ran while apply's transaction was open: {during}"
