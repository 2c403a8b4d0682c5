"""Several databases of one cluster: --database NAME|PATTERN and --jobs on plan and apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, run_cli, write_policy
from pgwarden.multi import is_pattern, resolve_databases
from pgwarden.policy import password_env_for


def test_is_pattern() -> None:
    assert is_pattern("tenant_*") and is_pattern("db?") and is_pattern("t[12]")
    assert not is_pattern("tenant_1")


def test_plan_and_apply_every_matching_database(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    prefix = unique_name("tn")
    owner, app = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("app"))
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in range(3)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    # not matched by the pattern: must stay untouched
    other = pg_cleanup.database(unique_name("other"))
    admin_conn.execute(f'CREATE DATABASE "{other}"')
    cfg = write_policy(tmp_path / "p.toml", database=dbs[0], owner=owner, app=[app])
    env = {"PGWARDEN_DSN": admin_dsn}

    assert resolve_databases(admin_dsn, [f"{prefix}_*"]) == sorted(dbs)

    pending = run_cli(["plan", "-c", str(cfg), "-d", f"{prefix}_*", "--exit-code", "--format", "json"], env)
    assert pending.exit_code == 1, pending
    data = pending.json()
    assert [d["database"] for d in data["databases"]] == sorted(dbs)
    assert data["summary"]["with_changes"] == 3

    applied = run_cli(["apply", "-c", str(cfg), "-d", f"{prefix}_*", "-j", "3", "--yes"], env)
    assert applied.exit_code == 0, applied
    assert "3 changed, 0 failed" in applied.stdout

    clean = run_cli(["plan", "-c", str(cfg), "-d", f"{prefix}_*", "--exit-code"], env)
    assert clean.exit_code == 0, clean
    owners = dict(
        admin_conn.execute(
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)", (dbs + [other],)
        ).fetchall()
    )
    assert all(owners[db] == owner for db in dbs)
    assert owners[other] != owner


def test_pattern_matching_nothing_is_an_error(tmp_path: Path, admin_dsn: str) -> None:
    cfg = write_policy(tmp_path / "p.toml", database="x", owner="o", app=["a"])
    result = run_cli(["plan", "-c", str(cfg), "-d", "no_such_db_*"], {"PGWARDEN_DSN": admin_dsn})
    assert result.exit_code == 2
    assert "matches no database" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", ["x" * 64])
def test_database_name_too_long(tmp_path: Path, bad: str) -> None:
    cfg = write_policy(tmp_path / "p.toml", database="x", owner="o", app=["a"])
    result = run_cli(["plan", "-c", str(cfg), "-d", bad, "--dsn", "host=127.0.0.1 port=1"])
    assert result.exit_code == 2
    assert "63 bytes" in result.stderr


def test_check_every_matching_database(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    prefix = unique_name("ck")
    owner, app = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("app"))
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in range(2)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    cfg = write_policy(tmp_path / "p.toml", database=dbs[0], owner=owner, app=[app])
    # passwords set: a LOGIN role without one is a finding of its own
    env = {"PGWARDEN_DSN": admin_dsn, password_env_for(owner): "o-secret", password_env_for(app): "a-secret"}
    assert run_cli(["apply", "-c", str(cfg), "-d", f"{prefix}_*", "--yes"], env).exit_code == 0
    clean = run_cli(["check", "-c", str(cfg), "-d", f"{prefix}_*", "--format", "json"], env)
    assert clean.exit_code == 0, clean
    assert clean.json()["summary"] == {"databases": 2, "failed": 0, "findings": 0, "errors": 0}
    # drift in one database only: check names that database and exits 1
    with psycopg.connect(db_conninfo(admin_dsn, dbs[1]), autocommit=True) as conn:
        conn.execute(f'CREATE TABLE public.stray (id int); GRANT ALL ON public.stray TO "{app}"')
    found = run_cli(["check", "-c", str(cfg), "-d", f"{prefix}_*", "--format", "json"], env)
    assert found.exit_code == 1, found
    per_db = {d["database"]: d for d in found.json()["databases"]}
    assert per_db[dbs[0]]["findings"] == []
    assert any("stray" in f["object"] for f in per_db[dbs[1]]["findings"])


def test_probe_every_matching_database(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    import xml.etree.ElementTree as ET

    prefix = unique_name("pb")
    owner, app = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("app"))
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in range(2)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    cfg = write_policy(tmp_path / "p.toml", database=dbs[0], owner=owner, app=[app])
    env = {"PGWARDEN_DSN": admin_dsn}
    assert run_cli(["apply", "-c", str(cfg), "-d", f"{prefix}_*", "--yes"], env).exit_code == 0
    for db in dbs:
        with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
            conn.execute(f'SET ROLE "{owner}"; CREATE TABLE public.items (id serial primary key, v text)')
    good = run_cli(["probe", "-c", str(cfg), "-d", f"{prefix}_*", "--format", "json"], env)
    assert good.exit_code == 0, good
    assert good.json()["summary"] == {"databases": 2, "failed": 0, "errors": 0}
    # the app may suddenly TRUNCATE in one database only: probe names that database and exits 1
    with psycopg.connect(db_conninfo(admin_dsn, dbs[1]), autocommit=True) as conn:
        conn.execute(f'GRANT TRUNCATE ON public.items TO "{app}"')
    bad = run_cli(["probe", "-c", str(cfg), "-d", f"{prefix}_*", "--format", "junit"], env)
    assert bad.exit_code == 1, bad
    root = ET.fromstring(bad.stdout.split("?>", 1)[1])
    failing = [s.get("name") for s in root.iter("testsuite") if s.get("failures") != "0"]
    assert failing == [f"{dbs[1]}: {app} (readwrite)"], bad.stdout
