"""`pgwarden run`: the command's environment, its exit code, and the check of what it created."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from helpers import db_conninfo, role_conninfo, run_cli, write_policy
from pgwarden.connect import dsn_params
from pgwarden.errors import PgwardenError
from pgwarden.policy import build_policy, password_env_for
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
    server = dsn_params("host=/tmp/sock port=5433 user=postgres")
    env = command_env(policy, resolve_role(policy, "owner"), server, parent)
    assert env["PGUSER"] == "shop_owner" and env["PGPASSWORD"] == "o p@ss"
    assert env["PGHOST"] == "/tmp/sock" and env["PGPORT"] == "5433" and env["PGDATABASE"] == "shop"
    assert "PGSSLMODE" not in env and env["HOME"] == "/root" and env["PGWARDEN_MIGRATE"] == "1"
    assert env["DATABASE_URL"] == "postgresql://shop_owner:o%20p%40ss@/shop?host=%2Ftmp%2Fsock&port=5433"
    assert env["PGCONNECT_TIMEOUT"] == "10" and env["PGWARDEN_OWNER"] == "shop_owner"
    app = command_env(policy, resolve_role(policy, "shop_app"), {"host": "db", "sslmode": "require"}, parent)
    assert app["PGUSER"] == "shop_app" and "PGPASSWORD" not in app and "PGWARDEN_MIGRATE" not in app
    assert app["PGWARDEN_OWNER"] == "shop_owner" and app["PGWARDEN_ROLE"] == "shop_app"
    assert app["PGSSLMODE"] == "require" and app["DATABASE_URL"] == "postgresql://shop_app@db/shop?sslmode=require"
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


# The command reports where it connected and as whom; its environment's PGHOST/PGPORT too.
_WHERE = (
    "import os, sys, psycopg; c = psycopg.connect(''); "
    "print('at', os.environ['PGHOST'], os.environ['PGPORT'], *c.execute("
    "'SELECT inet_server_port(), current_user, current_database()').fetchone(), file=open(sys.argv[1], 'w'))"
)
_NO_PG = {k: None for k in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE", "PGWARDEN_DSN")}


def test_run_reaches_the_server_pgwarden_checked(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: Any, tmp_path: Path
) -> None:
    """--dsn, PG* variables only, and a service file: the command gets the admin connection's server."""
    db = pg_cleanup.database(unique_name("wheredb"))
    owner = pg_cleanup.role(unique_name("whereowner"))
    app = pg_cleanup.role(unique_name("whereapp"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {password_env_for(owner): "owner-pw", password_env_for(app): "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    admin = {k: str(v) for k, v in conninfo_to_dict(admin_dsn).items()}
    host, port = admin["host"], admin["port"]
    admin_env = {"PGHOST": host, "PGPORT": port, "PGUSER": admin["user"], "PGPASSWORD": admin["password"]}
    admin_env["PGDATABASE"] = "postgres"
    service = tmp_path / "pg_service.conf"
    service.write_text(
        "[warden_admin]\n" + "".join(f"{k}={v}\n" for k, v in conninfo_to_dict(admin_dsn).items()), encoding="utf-8"
    )
    configs: dict[str, tuple[list[str], dict[str, str | None]]] = {
        # a stray PGHOST/PGPORT in the parent must not win over --dsn
        "--dsn": (["--dsn", admin_dsn], {**_NO_PG, "PGHOST": "/nonexistent", "PGPORT": "1"}),
        "PG* only": ([], {**_NO_PG, **admin_env}),
        "PGSERVICE": ([], {**_NO_PG, "PGSERVICE": "warden_admin", "PGSERVICEFILE": str(service)}),
    }
    out = tmp_path / "where"
    for name, (args, env) in configs.items():
        res = run_cli(
            ["run", "-c", str(policy), *args, "--as", app, "--", sys.executable, "-c", _WHERE, str(out)],
            env={**env, **secrets},
        )
        assert res.exit_code == 0, f"{name}: {res}"
        # the command's own connection (libpq environment) reached the checked server as the app role
        assert out.read_text().split() == ["at", host, port, port, app, db], f"{name}: {res}"
    # docs/alembic.md: a tool taking a URL argument gets `postgresql+psycopg://`, all from the environment
    # (the password never on its command line)
    url_only = (
        "import sys, sqlalchemy as sa; e = sa.create_engine(sys.argv[1]); "
        "open(sys.argv[2], 'w').write(e.connect().execute(sa.text('SELECT current_user')).scalar())"
    )
    argv = ["--", sys.executable, "-c", url_only, "postgresql+psycopg://", str(out)]
    res = run_cli(["run", "-c", str(policy), "--dsn", admin_dsn, "--as", app, *argv], env={**_NO_PG, **secrets})
    assert res.exit_code == 0 and out.read_text() == app, res


def test_run_refuses_before_the_command_when_the_login_would_not_act_as_it_should(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    db = pg_cleanup.database(unique_name("refdb"))
    owner = pg_cleanup.role(unique_name("refowner"))
    app = pg_cleanup.role(unique_name("refapp"))
    deployer = pg_cleanup.role(unique_name("refdeploy"))
    base = build_policy(database=db, owner=owner, app=[app])
    policy = base.model_copy(
        update={"owner": base.owner.model_copy(update={"login": False, "deploy_logins": (deployer,)})}
    )
    path = write_policy(tmp_path / "pgwarden.toml", policy)
    secrets = {password_env_for(deployer): "deploy-pw", password_env_for(app): "app-pw"}
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    marker = tmp_path / "ran"
    touch = ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]

    # 1. the deploy login's role setting is gone: the command would run as the deploy login itself
    admin_conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} RESET role").format(sql.Identifier(deployer), sql.Identifier(db))
    )
    with psycopg.connect(role_conninfo(admin_dsn, deployer, "deploy-pw", db)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (deployer,)  # the hazard is real
    res = run_cli(["run", "-c", str(path), "--dsn", admin_dsn, *touch], env=secrets)
    assert res.exit_code == 2 and not marker.exists(), res
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: sessions of {deployer} in {db} act as {deployer}, not as the owner {owner}"), (
        res
    )
    assert lines[1].startswith("hint:") and "pgwarden apply" in lines[1] and "acting as" not in res.stderr, res
    # the `pgwarden apply` the hint names puts it back, and the command runs acting as the owner
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    res = run_cli(["run", "-c", str(path), "--dsn", admin_dsn, *touch], env=secrets)
    assert res.exit_code == 0 and marker.exists() and f"running as {deployer} (acting as {owner})" in res.stderr, res
    marker.unlink()

    # 2. the role's password variable is unset and no ~/.pgpass covers it: refused, no prompt, nothing run
    res = run_cli(["run", "-c", str(path), "--dsn", admin_dsn, "--as", app, *touch], env={password_env_for(app): None})
    assert res.exit_code == 2 and not marker.exists(), res
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: cannot log in as {app} to {db}:") and "password" in lines[0], res
    assert (
        lines[1] == f"hint: set {password_env_for(app)} (passed as PGPASSWORD), or add {app} to ~/.pgpass ($PGPASSFILE)"
    )
    # a PGPASSFILE entry covers it: kept in the command's environment, and the login check passes
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:{db}:{app}:app-pw\n", encoding="utf-8")
    pgpass.chmod(0o600)
    res = run_cli(
        ["run", "-c", str(path), "--dsn", admin_dsn, "--as", app, *touch],
        env={password_env_for(app): None, "PGPASSFILE": str(pgpass)},
    )
    assert res.exit_code == 0 and marker.exists(), res

    # 3. no database yet: nothing to run against
    other = write_policy(tmp_path / "other.toml", database=unique_name("nodb"), owner=owner, app=[app])
    res = run_cli(["run", "-c", str(other), "--dsn", admin_dsn, "--as", app, "--no-check", *touch], env=secrets)
    assert res.exit_code == 2 and "does not exist" in res.stderr, res
