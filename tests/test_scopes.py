"""Grants as profile x scope on a real server: listed tables reach their own sequences, excepted
tables get nothing, a role holds nothing in a database where it has no grant, and what the scopes
give is exactly what the role can do (acting as it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo, run_cli


def _policy(owner: str, app: str, db: str, other: str) -> str:
    return f"""version = 2
[owner]
name = "{owner}"
[[roles]]
name = "{app}"
password_env = "PGWARDEN_PASSWORD_SCOPED_APP"
[[databases]]
name = "{db}"
schemas = ["app", "audit"]
grants = [
  {{ role = "{app}", profile = "readwrite", schemas = ["app"], except_tables = ["app.secrets"] }},
  {{ role = "{app}", profile = "append", tables = ["audit.events"] }},
]
[[databases]]
name = "{other}"
"""


def _denied(conn: psycopg.Connection[Any], statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_listed_and_excepted_tables_and_a_database_without_grants(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    owner, app = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("app"))
    db, other = pg_cleanup.database(unique_name("db")), pg_cleanup.database(unique_name("other"))
    path = tmp_path / "pgwarden.toml"
    path.write_text(_policy(owner, app, db, other))
    env = {"PGWARDEN_PASSWORD_SCOPED_APP": "scoped-pw"}

    def cli(*args: str) -> Any:
        return run_cli([*args, "-c", str(path), "--dsn", admin_dsn], env=env)

    for name in (db, other):
        result = run_cli(["apply", "--yes", "-c", str(path), "--dsn", admin_dsn, "-d", name], env=env)
        assert result.exit_code == 0, str(result)
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
        conn.execute(
            "CREATE TABLE app.orders (id serial PRIMARY KEY, total int);"
            "CREATE TABLE app.secrets (id serial PRIMARY KEY, v text);"
            "CREATE TABLE audit.events (id bigserial PRIMARY KEY, what text);"
            "CREATE TABLE audit.other (id bigserial PRIMARY KEY, what text)"
        )
        # what default privileges gave the excepted table and what nothing gave audit.events
        assert conn.execute(
            "SELECT has_table_privilege(%s, 'app.secrets', 'SELECT'), "
            "has_table_privilege(%s, 'audit.events', 'INSERT')",
            (app, app),
        ).fetchone() == (True, False)
    first = run_cli(["apply", "--yes", "-c", str(path), "--dsn", admin_dsn, "-d", db], env=env)
    assert first.exit_code == 0, str(first)
    with psycopg.connect(role_conninfo(admin_dsn, app, "scoped-pw", db), autocommit=True) as conn:
        conn.execute("INSERT INTO app.orders (total) VALUES (1)")
        _denied(conn, "SELECT * FROM app.secrets")
        conn.execute("INSERT INTO audit.events (what) VALUES ('x')")  # the bigserial's sequence too
        _denied(conn, "SELECT * FROM audit.events")
        _denied(conn, "INSERT INTO audit.other (what) VALUES ('x')")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(role_conninfo(admin_dsn, app, "scoped-pw", other)).close()
    again = run_cli(["plan", "--exit-code", "-c", str(path), "--dsn", admin_dsn, "-d", db], env=env)
    assert again.exit_code == 0, str(again)
