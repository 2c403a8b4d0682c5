"""`pgwarden run`: the command's environment, its exit code, and the check of what it created."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, run_cli, write_policy
from pgwarden.errors import PgwardenError
from pgwarden.policy import build_policy
from pgwarden.runner import command_env, database_url, resolve_role


def test_command_env_replaces_pg_variables() -> None:
    policy = build_policy(database="shop", owner="shop_owner", app=["shop_app"])
    parent = {
        "PGUSER": "postgres",
        "PGPASSWORD": "admin-secret",
        "PGSSLMODE": "disable",
        "DATABASE_URL": "x",
        "PGWARDEN_PASSWORD_SHOP_OWNER": "o p@ss",
        "HOME": "/root",
    }
    env = command_env(policy, resolve_role(policy, "owner"), "host=/tmp/sock port=5433 user=postgres", parent)
    assert env["PGUSER"] == "shop_owner" and env["PGPASSWORD"] == "o p@ss"
    assert env["PGHOST"] == "/tmp/sock" and env["PGPORT"] == "5433" and env["PGDATABASE"] == "shop"
    assert "PGSSLMODE" not in env and env["HOME"] == "/root" and env["PGWARDEN_MIGRATE"] == "1"
    assert env["DATABASE_URL"] == "postgresql://shop_owner:o%20p%40ss@/shop?host=%2Ftmp%2Fsock&port=5433"
    app = command_env(policy, resolve_role(policy, "shop_app"), "host=db", parent)
    assert app["PGUSER"] == "shop_app" and "PGPASSWORD" not in app and "PGWARDEN_MIGRATE" not in app
    assert database_url("u", None, "db.example", "5432", "d b") == "postgresql://u@db.example:5432/d%20b"
    with pytest.raises(PgwardenError, match="not in the policy"):
        resolve_role(policy, "nobody")


def test_run_exit_codes_and_findings(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: Any, tmp_path: Path
) -> None:
    db = pg_cleanup.database(unique_name("rundb"))
    owner = pg_cleanup.role(unique_name("runowner"))
    app = pg_cleanup.role(unique_name("runapp"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {f"PGWARDEN_PASSWORD_{owner.upper()}": "owner-pw", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    args = ["run", "-c", str(policy), "--dsn", admin_dsn, "--as", "owner", "--", sys.executable, "-c"]

    # the command connects with what it was given (libpq environment) and its objects are fine
    create = (
        "import psycopg; psycopg.connect('').execute('CREATE TABLE good (id serial PRIMARY KEY)').connection.commit()"
    )
    ok = run_cli([*args, create], env=secrets)
    assert ok.exit_code == 0, ok
    # the command's exit code is returned
    assert run_cli([*args, "import sys; sys.exit(3)"], env=secrets).exit_code == 3
    # an object created by another role (the admin, as a careless migration would) is reported with its fix
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute("CREATE TABLE bad (id int)")
    bad = run_cli(
        ["run", "-c", str(policy), "--dsn", admin_dsn, "--format", "json", "--", sys.executable, "-c", "pass"],
        env=secrets,
    )
    assert bad.exit_code == 1, bad
    data = json.loads(bad.stdout)
    fixes = " ".join(f["fix"] or "" for f in data["findings"])
    assert "ALTER TABLE" in fixes and "OWNER TO" in fixes, data
    # no command at all is a usage error
    assert run_cli(["run", "-c", str(policy), "--dsn", admin_dsn]).exit_code == 2
