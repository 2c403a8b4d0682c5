"""The NOLOGIN owner with deploy logins: a deploy login's session acts as the owner, whatever the client."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from helpers import role_conninfo, run_cli
from pgwarden.policy import build_policy, password_env_for


def test_deploy_login_creates_objects_owned_by_owner(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: Any, tmp_path: Path
) -> None:
    db = pg_cleanup.database(unique_name("dldb"))
    owner = pg_cleanup.role(unique_name("dlowner"))
    app = pg_cleanup.role(unique_name("dlapp"))
    deployer = pg_cleanup.role(unique_name("deployer"))
    base = build_policy(database=db, owner=owner, app=[app])
    policy = base.model_copy(
        update={"owner": base.owner.model_copy(update={"login": False, "deploy_logins": (deployer,)})}
    )
    path = tmp_path / "pgwarden.toml"
    path.write_text(policy.to_toml(), encoding="utf-8")
    secrets = {password_env_for(deployer): "deploy-pw", password_env_for(app): "app-pw"}
    res = run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"], env=secrets)
    assert res.exit_code == 0, res

    # a plain client session of the deploy login (no SET ROLE) creates a table
    with psycopg.connect(role_conninfo(admin_dsn, deployer, "deploy-pw", db), autocommit=True) as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == (owner, deployer)
        conn.execute("CREATE TABLE deployed (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)")
        row = conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'deployed'").fetchone()
        assert row == (owner,)
    # covered by the owner's default privileges: the app writes at once
    with psycopg.connect(role_conninfo(admin_dsn, app, "app-pw", db), autocommit=True) as conn:
        conn.execute("INSERT INTO deployed (v) VALUES ('x')")
    # the owner itself cannot log in
    try:
        psycopg.connect(role_conninfo(admin_dsn, owner, "x", db)).close()
        raise AssertionError("the NOLOGIN owner logged in")
    except psycopg.OperationalError:
        pass
    # `pgwarden run --as owner` goes through the deploy login and checks clean
    script = "import os; print(os.environ['PGUSER'], os.environ['PGWARDEN_ROLE'], os.environ['PGWARDEN_MIGRATE'])"
    res = run_cli(
        ["run", "-c", str(path), "--dsn", admin_dsn, "--as", "owner", "--", sys.executable, "-c", script], env=secrets
    )
    assert res.exit_code == 0, res
    assert f"running as {deployer} (acting as {owner})" in res.stderr
    plan = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--exit-code"], env=secrets)
    assert plan.exit_code == 0, plan
