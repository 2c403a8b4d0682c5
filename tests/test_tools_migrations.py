"""sqitch, dbmate and ActiveRecord migrations for real through `pgwarden run --as owner` (PostgreSQL 14 and 17).

14 and 17 stand for both sides of PostgreSQL 15's change to the public schema, where migration tools
keep their history tables. Each tool must be installed (.ci/run installs them); outside CI a missing
tool skips with the reason, under CI=true it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, role_conninfo, run_cli, write_policy
from pgwarden.fingerprint import LEDGER_SCHEMA
from pgwarden.policy import password_env_for
from pgwarden.server import PgBinaries

PROJECTS = Path(__file__).parent / "projects"
VERSIONS = (14, 17)


@dataclass(frozen=True)
class Tool:
    project: str
    argv: tuple[str, ...]
    probe: tuple[str, ...]  # exits 0 when the tool and its PostgreSQL driver are installed
    history: str  # the table the tool records applied migrations in


TOOLS = {
    # db:pg: with no host/user/database: sqitch (DBD::Pg and psql) takes them from the libpq environment
    "sqitch": Tool("sqitch", ("sqitch", "deploy", "--verify", "db:pg:"), ("sqitch", "--version"), "sqitch.changes"),
    # dbmate reads DATABASE_URL (the password never on argv); it keeps no schema dump here
    "dbmate": Tool("dbmate", ("dbmate", "--no-dump-schema", "up"), ("dbmate", "--version"), "public.schema_migrations"),
    "activerecord": Tool(
        "activerecord",
        ("ruby", "migrate.rb"),
        ("ruby", "-e", "require 'active_record'; require 'pg'"),
        "public.schema_migrations",
    ),
}


def _require(tool: Tool) -> None:
    """Skip (locally) or fail (CI) when the tool is not installed: a missing tool never passes silently."""
    try:
        ok = subprocess.run(list(tool.probe), capture_output=True, timeout=60, check=False).returncode == 0
    except FileNotFoundError:
        ok = False
    if not ok:
        reason = f"{tool.probe[0]} for {tool.project} is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_migration_tool_through_run_as_owner(
    name: str,
    pg_version: int,
    pg_binaries: PgBinaries,
    request: pytest.FixtureRequest,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    if pg_version not in VERSIONS:
        pytest.skip(f"migration tools run on PostgreSQL {' and '.join(map(str, VERSIONS))} (either side of 15)")
    tool = TOOLS[name]
    _require(tool)
    admin_dsn: str = request.getfixturevalue("admin_dsn")
    pg_cleanup: Any = request.getfixturevalue("pg_cleanup")
    db = pg_cleanup.database(unique_name(f"{name}db"))
    owner = pg_cleanup.role(unique_name(f"{name}owner"))
    app = pg_cleanup.role(unique_name(f"{name}app"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {password_env_for(owner): "owner-pw", password_env_for(app): "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0

    project = tmp_path / name
    shutil.copytree(PROJECTS / tool.project, project)
    env = {
        **secrets,
        "PGWARDEN_DSN": None,
        # sqitch runs psql: the one of the server under test
        "PATH": f"{pg_binaries.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SQITCH_FULLNAME": "pgwarden tests",
        "SQITCH_EMAIL": "tests@example.com",
    }
    cwd = os.getcwd()
    os.chdir(project)
    try:
        res = run_cli(["run", "-c", str(policy), "--dsn", admin_dsn, "--as", "owner", "--", *tool.argv], env=env)
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res
    assert f"every object is owned by {owner}" in res.stderr, res

    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        # the history table exists, where the owner could create it, and the owner owns everything but
        # pgwarden's ledger, which the admin keeps out of the owner's reach (docs/change-control.md)
        history = conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)", [tool.history]
        )
        assert history.fetchone() == (owner,), f"{tool.history} is missing or not owned by {owner}"
        others = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', %s)"
            " AND c.relowner <> %s::regrole",
            [LEDGER_SCHEMA, owner],
        ).fetchall()
        assert others == [], others
    # a clean check, with no further apply
    check = run_cli(["check", "-c", str(policy), "--dsn", admin_dsn, "--format", "json"], env=secrets)
    assert check.exit_code == 0, check
    assert json.loads(check.stdout)["findings"] == [], check
    # the app role uses the new table at once: insert (key from a sequence), select
    with psycopg.connect(role_conninfo(admin_dsn, app, "app-pw", db), autocommit=True) as conn:
        extra = ", now(), now()" if name == "activerecord" else ""
        cols = "name, created_at, updated_at" if name == "activerecord" else "name"
        row = conn.execute(f"INSERT INTO widgets ({cols}) VALUES ('w'{extra}) RETURNING id").fetchone()  # noqa: S608
        assert row is not None
        assert conn.execute("SELECT name FROM widgets WHERE id = %s", row).fetchone() == ("w",)
