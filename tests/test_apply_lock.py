"""apply's advisory lock works whatever database the admin DSN names, and is one lock for the whole cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import PgCleanup
from helpers import run_cli, write_policy
from pgwarden.executor import LOCK_KEY
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer


def _setup(
    tmp_path: Path, server: LocalServer, unique_name: Callable[[str], str], cleanup: PgCleanup
) -> tuple[Path, str, dict[str, str]]:
    admin = server.conninfo("postgres")
    db = cleanup.database(unique_name("lockdb"))
    owner, app = cleanup.role(unique_name("owner")), cleanup.role(unique_name("app"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(make_conninfo(admin, dbname=db), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.t (id int)")
    path = write_policy(tmp_path / "p.toml", database=db, owner=owner, app=[app])
    return path, db, {password_env_for(r): f"pw-{r}" for r in (owner, app)}


def test_apply_with_the_dsn_naming_the_managed_database(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """PGDATABASE=shop (or a DSN naming it): apply used to wait for its own cluster lock and give up."""
    path, db, env = _setup(tmp_path, pg_server, unique_name, pg_cleanup)
    in_db = make_conninfo(pg_server.conninfo("postgres"), dbname=db)
    args = ["-c", str(path), "--dsn", in_db]
    first = run_cli(["apply", "--yes", "--lock-timeout", "2s", *args], env=env)
    assert first.exit_code == 0, str(first)
    assert "lock could not be taken" not in first.stderr
    assert run_cli(["plan", "--exit-code", *args], env=env).exit_code == 0
    # the same with PGDATABASE naming it and no dbname in the DSN
    bare = make_conninfo(pg_server.conninfo("postgres"))
    bare = " ".join(p for p in bare.split() if not p.startswith("dbname="))
    with psycopg.connect(in_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.t2 (id int)")  # something to apply again
    second = run_cli(
        ["apply", "--yes", "--lock-timeout", "2s", "-c", str(path), "--dsn", bare], env={**env, "PGDATABASE": db}
    )
    assert second.exit_code == 0, str(second)
    assert "t2" in second.stdout
    assert run_cli(["plan", "--exit-code", *args], env=env).exit_code == 0


def test_applies_whose_dsns_name_different_databases_wait_for_each_other(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """The cluster lock is one lock: an apply whose DSN names the managed database waits, in `postgres`, for
    the lock an apply whose DSN names `postgres` holds (held here by hand)."""
    path, db, env = _setup(tmp_path, pg_server, unique_name, pg_cleanup)
    admin = pg_server.conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pgwarden",
                "apply",
                "--yes",
                "-c",
                str(path),
                "--dsn",
                make_conninfo(admin, dbname=db),
            ],
            env={**os.environ, **env, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        waiting = 0
        deadline = time.monotonic() + 60
        while not waiting and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            row = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (LOCK_KEY & 0xFFFFFFFF,),
            ).fetchone()
            waiting = int(row[0]) if row else 0
        still_running = proc.poll() is None
        holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    out, err = proc.communicate(timeout=120)
    assert waiting == 1 and still_running, f"apply did not wait for the cluster lock:\n{out}\n{err}"
    assert proc.returncode == 0, out + err
    assert "waiting" in err
    assert run_cli(["plan", "--exit-code", "-c", str(path), "--dsn", admin], env=env).exit_code == 0
