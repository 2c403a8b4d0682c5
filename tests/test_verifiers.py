"""Password verifiers come from libpq on the admin connection: the server's iteration count, one per
session, and plans that are equal when computed twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import role_conninfo, run_cli, write_policy
from pgwarden.policy import build_policy, password_env_for
from pgwarden.session import Session


def test_a_plan_computed_twice_from_one_snapshot_is_equal(admin_dsn: str, unique_name: Any, pg_cleanup: Any) -> None:
    db, owner, app = unique_name("db"), unique_name("own"), unique_name("app")
    pg_cleanup.database(db)
    for r in (owner, app):
        pg_cleanup.role(r)
    policy = build_policy(database=db, owner=owner, app=[app])
    secrets = {password_env_for(owner): "s3cret-own", password_env_for(app): "s3cret-app"}
    with Session.open(admin_dsn, policy) as session:
        snap = session.snapshot(secrets=secrets)
        first, second = session.plan(snap, secrets), session.plan(snap, secrets)
    assert first == second
    create = [s for s in first.steps if s.action == "create-role"]
    assert len(create) == 2 and all("SCRAM-SHA-256$" in s.sql.as_string(None) for s in create)
    # the clear text is in no statement, and people see a psql variable in its place
    assert not any("s3cret" in s.sql.as_string(None) or "s3cret" in s.render() for s in first.steps)


@pytest.mark.minversion(16)
def test_scram_iterations_of_the_server_apply(
    admin_dsn: str, unique_name: Any, pg_cleanup: Any, tmp_path: Path
) -> None:
    """With scram_iterations = 8192 on the server, a password pgwarden applies is stored with 8192
    iterations (libpq reads the setting the server reports) and logs in."""
    db, owner, app = unique_name("db"), unique_name("own"), unique_name("app")
    pg_cleanup.database(db)
    for r in (owner, app):
        pg_cleanup.role(r)
    path = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    env = {password_env_for(owner): "pw-owner-8192", password_env_for(app): "pw-app-8192"}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET scram_iterations = 8192")
        conn.execute("SELECT pg_reload_conf()")
        try:
            result = run_cli(["apply", "--yes", "-c", str(path), "--dsn", admin_dsn], env=env)
            assert result.exit_code == 0, str(result)
        finally:
            conn.execute("ALTER SYSTEM RESET scram_iterations")
            conn.execute("SELECT pg_reload_conf()")
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (app,)).fetchone()
    assert stored is not None and stored[0].startswith("SCRAM-SHA-256$8192:"), stored
    with psycopg.connect(role_conninfo(admin_dsn, app, "pw-app-8192", dbname=db)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (app,)
    # the same password is recognised as unchanged: the next plan is empty
    again = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--exit-code"], env=env)
    assert again.exit_code == 0, str(again)
