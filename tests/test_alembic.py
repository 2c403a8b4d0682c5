"""pgwarden.contrib.alembic with a real Alembic project (SQLAlchemy 2, psycopg 3) on real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from helpers import db_conninfo, role_conninfo, run_cli, write_policy
from pgwarden.runner import database_url

pytest.importorskip("alembic", reason="the test extra installs alembic and sqlalchemy")

PROJECT = Path(__file__).parent / "projects" / "alembic_proj"


def _alembic(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _assert_one_error(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and [line[:5] for line in lines if line.startswith(("error", "hint"))] == [
        "error",
        "hint:",
    ], stderr


def test_alembic_project(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    db = pg_cleanup.database(unique_name("aldb"))
    owner = pg_cleanup.role(unique_name("alowner"))
    app = pg_cleanup.role(unique_name("alapp"))
    mig = pg_cleanup.role(unique_name("almig"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {f"PGWARDEN_PASSWORD_{owner.upper()}": "owner-pw", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0

    proj = tmp_path / "proj"
    shutil.copytree(PROJECT, proj, ignore=shutil.ignore_patterns("later", "__pycache__"))
    src = str(Path(__file__).parents[1] / "src")
    base = {**{k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}, "PYTHONPATH": src}

    # 1. upgrade through `pgwarden run --as owner`: committed, owned by the owner, check clean
    cwd = os.getcwd()
    os.chdir(proj)
    try:
        res = run_cli(
            ["run", "-c", str(policy), "--dsn", admin_dsn, "--", sys.executable, "-m", "alembic", "upgrade", "head"],
            env={**secrets, "PYTHONPATH": src, "PGWARDEN_DSN": None},
        )
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            )
        }
        assert owners == {owner}

    # 2. the runtime role reads and writes rows (serial and identity keys)
    with psycopg.connect(role_conninfo(admin_dsn, app, "app-pw", db), autocommit=True) as conn:
        conn.execute("INSERT INTO item (name) VALUES ('a')")
        conn.execute("INSERT INTO item_event (item_id) VALUES (1)")

    # 3. a later revision; the runtime role cannot run it (clear error, nothing changed)
    shutil.copy(PROJECT / "later" / "0002_tags.py", proj / "migrations" / "versions" / "0002_tags.py")
    params = conninfo_to_dict(admin_dsn)
    app_url = database_url(app, "app-pw", str(params.get("host")), str(params.get("port")), db)
    bad = _alembic(proj, {**base, "DATABASE_URL": app_url, "PGWARDEN_ROLE": owner}, "upgrade", "head")
    assert bad.returncode == 2
    assert f"cannot act as the owner {owner}" in bad.stderr, bad.stderr
    _assert_one_error(bad.stderr)
    # the same through `pgwarden run --as APP`: the helper acts as the policy's owner ($PGWARDEN_OWNER), not as
    # the role the command was given, so it refuses with one line instead of a SQLAlchemy traceback
    proc = subprocess.run(
        [sys.executable, "-m", "pgwarden", "run", "-c", str(policy), "--dsn", admin_dsn, "--as", app, "--no-check"]
        + ["--", sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=proj,
        env={**base, **secrets, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"error: cannot act as the owner {owner}: " in proc.stderr, proc.stderr
    _assert_one_error(proc.stderr)
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        assert conn.execute("SELECT to_regclass('tag')").fetchone() == (None,)

    # 4. the SET ROLE + commit pitfall: a login that is a member of the owner (no role setting) migrates;
    #    the helper sets the role and commits, so the revision is really there and owned by the owner
    admin_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'mig-pw' IN ROLE {}").format(sql.Identifier(mig), sql.Identifier(owner))
    )
    admin_conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), sql.Identifier(mig)))
    mig_url = database_url(mig, "mig-pw", str(params.get("host")), str(params.get("port")), db)
    ok = _alembic(proj, {**base, "DATABASE_URL": mig_url, "PGWARDEN_ROLE": owner}, "upgrade", "head")
    assert ok.returncode == 0, ok.stderr
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
        assert conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'tag'").fetchone() == (
            owner,
        )
    # covered by the owner's default privileges, without another apply
    with psycopg.connect(role_conninfo(admin_dsn, app, "app-pw", db), autocommit=True) as conn:
        conn.execute("INSERT INTO tag (t) VALUES ('x')")
    admin_conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(db), sql.Identifier(mig)))
    check = run_cli(["run", "-c", str(policy), "--dsn", admin_dsn, "--", sys.executable, "-c", "pass"], env=secrets)
    assert check.exit_code == 0, check
