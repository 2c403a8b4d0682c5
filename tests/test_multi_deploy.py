"""Two databases in one version 2 file with a deploy login: one apply, then check is clean on both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from helpers import role_conninfo, run_cli


def _file(dbs: list[str], owner: str, deploy: str, app: str) -> str:
    return f"""\
version = 2

[owner]
name = "{owner}"
login = false
deploy_logins = ["{deploy}"]

[[roles]]
name = "{app}"
password_env = "PGWARDEN_PASSWORD_{app.upper()}"

[[databases]]
name = "{dbs[0]}"
grants = [{{ role = "{app}", profile = "readwrite", schemas = ["public"] }}]

[[databases]]
name = "{dbs[1]}"
grants = [{{ role = "{app}", profile = "readonly", schemas = ["public"] }}]
"""


def test_deploy_login_connect_on_both_databases_is_the_files_design(
    tmp_path: Path, admin_dsn: str, unique_name: Any, pg_cleanup: Any
) -> None:
    dbs = [pg_cleanup.database(unique_name(f"db{i}")) for i in range(2)]
    owner, deploy, app = (pg_cleanup.role(unique_name(k)) for k in ("own", "dep", "app"))
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file(dbs, owner, deploy, app))
    env = {
        "PGWARDEN_DSN": admin_dsn,
        f"PGWARDEN_PASSWORD_{app.upper()}": "app-secret-1",
        f"PGWARDEN_PASSWORD_{deploy.upper()}": "deploy-secret-1",
    }
    applied = run_cli(["apply", "-c", str(cfg), "--yes"], env)
    assert applied.exit_code == 0, applied
    # the deploy login connects to both databases (apply granted it) and acts as the owner there
    for db in dbs:
        with psycopg.connect(role_conninfo(admin_dsn, deploy, "deploy-secret-1", db), autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (owner,)
    checked = run_cli(["check", "-c", str(cfg), "--format", "json"], env)
    assert checked.exit_code == 0, checked.stdout
    assert checked.json()["summary"]["databases"] == 2

    # a database the file does not list stays a finding: only the file's own databases are its design
    other = pg_cleanup.database(unique_name("other"))
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{other}"')
        admin.execute(f'REVOKE CONNECT ON DATABASE "{other}" FROM PUBLIC')
        admin.execute(f'GRANT CONNECT ON DATABASE "{other}" TO "{deploy}"')
    again = run_cli(["check", "-c", str(cfg), "--format", "json"], env)
    assert again.exit_code == 1, again.stdout
    found = [(f["rule"], f["object"], f["role"]) for d in again.json()["databases"] for f in d["findings"]]
    assert found == [("outside.grant", f"database {other}", deploy)] * 2, found
