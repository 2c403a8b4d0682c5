"""The policy keys that say any database exactly, applied on a real server and proved by acting as
each role: `defaults` per kind, `except_routines`, listed `routines` and `columns`, a serial's
sequence excepted by name, the `usage` and `connect` profiles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo, run_cli
from pgwarden.policy.names import password_env_for

_OBJECTS = [
    "CREATE SCHEMA app",
    "CREATE SCHEMA staging",
    "CREATE TYPE staging.mood AS ENUM ('calm', 'busy')",
    "CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric)",
    "CREATE TABLE app.customers (id serial PRIMARY KEY, name text, api_key text)",
    "CREATE FUNCTION app.total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(total) FROM app.orders'",
    "CREATE FUNCTION app.wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM app.orders'",
]

_POLICY = """
version = 2

[owner]
name = "{owner}"
login = false

[[roles]]
name = "{app}"
password_env = "{app_env}"

[[roles]]
name = "{bi}"
login = false

[[roles]]
name = "{etl}"
password_env = "{etl_env}"

[[roles]]
name = "{viewer}"
password_env = "{viewer_env}"

[[databases]]
name = "{db}"
schemas = ["app", "staging"]
grants = [
{{ role = "{app}", profile = "readwrite", schemas = ["app"], defaults = ["table"], except_routines = ["app.wipe()"] }},
  {{ role = "{bi}", profile = "readonly", tables = ["app.orders"], except_tables = ["app.orders_id_seq"] }},
{{ role = "{bi}", profile = "readonly", columns = {{ "app.customers" = ["id", "name"] }}, routines = ["app.total()"]}},
  {{ role = "{etl}", profile = "usage", schemas = ["staging"] }},
  {{ role = "{viewer}", profile = "connect" }},
]
"""


@dataclass
class Applied:
    db: str
    owner: str
    app: str
    bi: str
    etl: str
    viewer: str
    dsn: str
    env: dict[str, str | None]
    path: Path

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(db_conninfo(self.dsn, self.db), autocommit=True)


@pytest.fixture
def applied(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> Iterator[Applied]:
    names = {r: pg_cleanup.role(unique_name(r)) for r in ("owner", "app", "bi", "etl", "viewer")}
    db = pg_cleanup.database(unique_name("db"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(names["owner"])))
    admin_conn.execute(
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(names["owner"]))
    )
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as c:
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(names["owner"])))
        for stmt in _OBJECTS:
            c.execute(stmt)
    env: dict[str, str | None] = {password_env_for(names[r]): f"pw-{r}" for r in ("app", "etl", "viewer")}
    path = tmp_path / "policy.toml"
    envs = {f"{r}_env": password_env_for(names[r]) for r in ("app", "etl", "viewer")}
    path.write_text(_POLICY.format(db=db, **names, **envs))
    result = run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"], env=env)
    assert result.exit_code == 0, str(result)
    yield Applied(db, names["owner"], names["app"], names["bi"], names["etl"], names["viewer"], admin_dsn, env, path)


def _as(conn: psycopg.Connection[Any], role: str, statement: str) -> bool:
    """Whether `role` may run `statement` (rolled back either way)."""
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        try:
            with conn.transaction():
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def test_each_key_gives_what_it_says_and_nothing_else(applied: Applied) -> None:
    a = applied
    with a.admin() as c:
        # readwrite on schema app, except the routine app.wipe()
        assert _as(c, a.app, "INSERT INTO app.orders (total) VALUES (1)")
        assert _as(c, a.app, "SELECT app.total()")
        assert not _as(c, a.app, "SELECT app.wipe()")
        # bi: the table it lists, not its serial's sequence; two columns of another; one routine
        assert _as(c, a.bi, "SELECT total FROM app.orders")
        assert not _as(c, a.bi, "SELECT last_value FROM app.orders_id_seq")
        assert _as(c, a.bi, "SELECT id, name FROM app.customers")
        assert not _as(c, a.bi, "SELECT api_key FROM app.customers")
        assert not _as(c, a.bi, "SELECT * FROM app.customers")
        assert _as(c, a.bi, "SELECT app.total()")
        assert not _as(c, a.bi, "SELECT app.wipe()")
        # etl: USAGE on staging (its types), nothing on app
        assert _as(c, a.etl, "SELECT 'calm'::staging.mood")
        assert not _as(c, a.etl, "SELECT 1 FROM app.orders")
        assert not _as(c, a.viewer, "SELECT 'calm'::staging.mood")
        # defaults = ["table"]: a table the owner creates later is the app's at once, a sequence is not
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(a.owner)))
        c.execute("CREATE TABLE app.later (x int)")
        c.execute("CREATE SEQUENCE app.later_seq")
        c.execute("RESET ROLE")
        assert _as(c, a.app, "INSERT INTO app.later VALUES (1)")
        assert not _as(c, a.app, "SELECT nextval('app.later_seq')")
    # connect: viewer logs in, and reaches nothing
    with psycopg.connect(role_conninfo(a.dsn, a.viewer, "pw-viewer", a.db), autocommit=True) as viewer:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            viewer.execute("SELECT 1 FROM app.orders")
    # the schema's grant still covers the sequence: the next apply gives it (what `defaults` says)
    plan = run_cli(["plan", "-c", str(a.path), "--dsn", a.dsn, "--exit-code"], env=a.env)
    assert plan.exit_code == 1 and 'ON SEQUENCE "app"."later_seq"' in plan.stdout, str(plan)
    assert '"app"."later"' not in plan.stdout, str(plan)  # the table got it when it was made


def test_plan_and_probe_agree_with_the_keys_after_apply(applied: Applied) -> None:
    a = applied
    plan = run_cli(["plan", "-c", str(a.path), "--dsn", a.dsn, "--exit-code"], env=a.env)
    assert plan.exit_code == 0, str(plan)
    probe = run_cli(["probe", "-c", str(a.path), "--dsn", a.dsn], env=a.env)
    assert probe.exit_code == 0, str(probe)
    with a.admin() as c:  # drift on a listed column and an excepted sequence is seen, and repaired
        c.execute(sql.SQL("GRANT SELECT (api_key) ON app.customers TO {}").format(sql.Identifier(a.bi)))
        c.execute(sql.SQL("GRANT SELECT ON app.orders_id_seq TO {}").format(sql.Identifier(a.bi)))
        assert _as(c, a.bi, "SELECT api_key FROM app.customers")
    check = run_cli(["check", "-c", str(a.path), "--dsn", a.dsn], env=a.env)
    assert check.exit_code == 1 and "api_key" in check.stdout and "orders_id_seq" in check.stdout, str(check)
    fixed = run_cli(["apply", "-c", str(a.path), "--dsn", a.dsn, "--yes"], env=a.env)
    assert fixed.exit_code == 0, str(fixed)
    with a.admin() as c:
        assert not _as(c, a.bi, "SELECT api_key FROM app.customers")
        assert not _as(c, a.bi, "SELECT last_value FROM app.orders_id_seq")


def test_bad_keys_name_the_file_line_and_key(tmp_path: Path) -> None:
    base = 'version = 2\n[owner]\nname = "o"\n[[roles]]\nname = "r"\n[[databases]]\nname = "d"\nschemas = ["app"]\n'
    for grant, needle in [
        (
            '{ role = "r", profile = "readonly" }',
            "grants[0]: a grant needs schemas, tables, routines, columns or global_defaults",
        ),
        ('{ role = "r", profile = "readonly", routines = ["app.f"] }', "grants[0].routines"),
        ('{ role = "r", profile = "readonly", tables = ["app.t"], defaults = ["table"] }', "grants[0].defaults"),
        ('{ role = "r", profile = "readonly", schemas = ["app"], columns = { "app.t" = ["a"] } }', "already covered"),
        ('{ role = "r", profile = "readonly", schemas = ["app"], defaults = ["view"] }', "grants[0].defaults"),
    ]:
        path = tmp_path / "p.toml"
        path.write_text(base + f"grants = [\n  {grant},\n]\n")
        result = run_cli(["policy", "validate", str(path)])
        assert result.exit_code == 2 and "p.toml:10:" in result.stderr and needle in result.stderr, (grant, str(result))
