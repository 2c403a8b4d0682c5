"""Every reason and hint is true of what its step or fix does, on a real server.

Scenarios drift a database in several ways; every step of the plan is then checked against its own
SQL (a reason names exactly objects its statement touches) and against the server after apply (a
role that "must hold only X on schema S" holds exactly X there; one that "must hold nothing" holds
nothing); every printed fix is run and must take its finding away and nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import CliResult, db_conninfo, run_cli

OBJECT_WORDS = ("table", "view", "materialized view", "sequence", "foreign table", "partitioned table")
ENV = {"PGWARDEN_PASSWORD_EXACT_APP": "exact-app-pw", "PGWARDEN_PASSWORD_EXACT_ALICE": "exact-alice-pw"}


def _policy(owner: str, app: str, analysts: str, alice: str, db: str, mode: str = "authoritative") -> str:
    return f"""version = 2
mode = "{mode}"
[owner]
name = "{owner}"
login = false
[[roles]]
name = "{app}"
password_env = "PGWARDEN_PASSWORD_EXACT_APP"
[[roles]]
name = "{analysts}"
login = false
[[roles]]
name = "{alice}"
password_env = "PGWARDEN_PASSWORD_EXACT_ALICE"
member_of = ["{analysts}"]
[[databases]]
name = "{db}"
schemas = ["app", "reporting"]
grants = [
  {{ role = "{app}", profile = "readwrite", schemas = ["app"] }},
  {{ role = "{analysts}", profile = "readonly", schemas = ["reporting"] }},
  {{ role = "{analysts}", profile = "readonly", tables = ["app.totals"] }},
]
"""


class Scene:
    def __init__(self, tmp_path: Path, dsn: str, names: dict[str, str]) -> None:
        self.path, self.dsn, self.n = tmp_path / "pgwarden.toml", dsn, names

    def write(self, mode: str = "authoritative") -> None:
        n = self.n
        self.path.write_text(_policy(n["owner"], n["app"], n["analysts"], n["alice"], n["db"], mode))

    def cli(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return run_cli([*args, "-c", str(self.path), "--dsn", self.dsn], env=env if env is not None else ENV)

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(db_conninfo(self.dsn, self.n["db"]), autocommit=True)

    def schema_privs(self, role: str, schema: str) -> set[str]:
        with self.db() as conn:
            return {
                p
                for p in ("USAGE", "CREATE")
                if conn.execute("SELECT has_schema_privilege(%s, %s, %s)", (role, schema, p)).fetchone() == (True,)
                and self._direct(conn, role, schema, p)
            }

    @staticmethod
    def _direct(conn: psycopg.Connection[Any], role: str, schema: str, privilege: str) -> bool:
        row = conn.execute(
            "SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a "
            "WHERE n.nspname = %s AND a.grantee = %s::regrole AND a.privilege_type = %s",
            (schema, role, privilege),
        ).fetchone()
        return row is not None and row[0] > 0


@pytest.fixture
def scene(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Scene:
    names = {k: pg_cleanup.role(unique_name(k)) for k in ("owner", "app", "analysts", "alice")}
    names["db"] = pg_cleanup.database(unique_name("db"))
    s = Scene(tmp_path, admin_dsn, names)
    s.write()
    assert s.cli("apply", "--yes").exit_code == 0
    with s.db() as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(names["owner"])))
        conn.execute("CREATE TABLE app.orders (id int)")
        conn.execute("CREATE MATERIALIZED VIEW app.totals AS SELECT count(*) AS n FROM app.orders")
        conn.execute("CREATE TABLE reporting.daily (n int)")
    return s


def _drift(s: Scene) -> None:
    """Grants by hand behind pgwarden's back: analysts may use and create in app and create in
    reporting, alice (a member, granted nothing herself) may use reporting."""
    n = s.n
    with s.db() as conn:
        for statement in (
            "GRANT USAGE, CREATE ON SCHEMA app TO {analysts}",
            "GRANT CREATE ON SCHEMA reporting TO {analysts}",
            "GRANT USAGE ON SCHEMA reporting TO {alice} WITH GRANT OPTION",
        ):
            query = sql.SQL(statement).format(**{k: sql.Identifier(v) for k, v in n.items() if k != "db"})
            conn.execute(query)


def _objects_named(reason: str) -> list[tuple[str, str]]:
    """(schema, name) of every `kind schema.name` a reason names."""
    words = "|".join(sorted((re.escape(w) for w in OBJECT_WORDS), key=len, reverse=True))
    return re.findall(rf"\b(?:{words}) ([\w$]+)\.([\w$]+)", reason)


def _check_step_against_its_sql(step: dict[str, Any]) -> None:
    reason, statement = step["reason"], step["sql"]
    assert "managed schemas" not in reason, step  # a step never touches every managed schema
    for schema, name in _objects_named(reason):
        assert f'"{schema}"."{name}"' in statement, step
    for schema in re.findall(r"\bschema ([\w$]+)", reason):
        assert f'"{schema}"' in statement, step
    if "IN SCHEMA" in statement:  # a bulk statement: its reason says which schema, and no single object
        assert not _objects_named(reason), step


def test_every_plan_reason_is_true_of_its_sql_and_of_the_server_after_apply(scene: Scene) -> None:
    s, n = scene, scene.n
    _drift(s)
    result = s.cli("plan", "--format", "json")
    assert result.exit_code == 0, str(result)
    steps = result.json()["steps"]
    assert steps
    for step in steps:
        _check_step_against_its_sql(step)
    by_schema: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for step in steps:
        if step["object"].startswith("schema ") and step["role"]:
            by_schema.setdefault((step["role"], step["object"].split(" ", 1)[1]), []).append(step)
    # the listed materialized view: its reason names it, and only it
    mv = [st for st in steps if st["object"] == "materialized view app.totals" and st["role"] == n["analysts"]]
    assert mv and all("app.totals" in st["reason"] for st in mv), steps
    assert s.cli("apply", "--yes").exit_code == 0
    checked = 0
    for (role, schema), role_steps in by_schema.items():
        for step in role_steps:
            after = s.schema_privs(role, schema)
            only = re.search(r"must hold only ([A-Z, ]+) on schema", step["reason"])
            if only:
                assert after == set(only.group(1).split(", ")), (step, after)
            elif "must hold nothing" in step["reason"]:
                assert after == set(), (step, after)
            elif "only the owner may create" in step["reason"]:
                assert "CREATE" not in after, (step, after)
            elif "must not be able to grant" in step["reason"]:
                kept = re.search(r"it keeps ([A-Z, ]+)\)", step["reason"])
                assert kept and set(kept.group(1).split(", ")) <= after, (step, after)
            checked += 1
    assert checked >= 3  # analysts on app and reporting, alice on reporting
    # USAGE that is wanted stayed: the analysts still read reporting and the listed view
    assert s.schema_privs(n["analysts"], "reporting") == {"USAGE"}
    assert s.schema_privs(n["analysts"], "app") == {"USAGE"}  # the listed app.totals needs it


def test_additive_apply_gives_a_passwordless_login_its_password_as_the_hint_says(scene: Scene) -> None:
    s, n = scene, scene.n
    with s.db() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(n["app"])))
    s.write(mode="additive")
    check = s.cli("check", "--format", "json")
    found = [f for f in check.json()["findings"] if f["rule"] == "login.no-password" and f["role"] == n["app"]]
    assert found and "run pgwarden apply" in found[0]["message"], check.stdout
    assert s.cli("apply", "--yes").exit_code == 0  # what the hint says, in the policy's (additive) mode
    conninfo = psycopg.conninfo.make_conninfo(db_conninfo(s.dsn, n["db"]), user=n["app"])
    with psycopg.connect(conninfo, password=ENV["PGWARDEN_PASSWORD_EXACT_APP"]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (n["app"],)
    after = s.cli("check", "--format", "json").json()["findings"]
    assert not [f for f in after if f["rule"] == "login.no-password"]


def test_the_writable_search_path_fix_revokes_create_and_keeps_public_on_the_path(scene: Scene) -> None:
    s, n = scene, scene.n
    with s.db() as conn:
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # public is not managed here
        # the hazard is real: the app can plant an object where its unqualified names resolve
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(n["app"])))
        conn.execute("CREATE FUNCTION public.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        conn.execute("RESET ROLE")
        conn.execute("DROP FUNCTION public.planted()")
    check = s.cli("check", "--format", "json")
    found = [f for f in check.json()["findings"] if f["rule"] == "settings.writable-search-path"]
    assert found, check.stdout
    fix = found[0]["fix"]
    assert fix == 'REVOKE CREATE ON SCHEMA "public" FROM PUBLIC', fix  # minimal: no search_path rewritten
    with s.db() as conn:
        conn.execute(fix)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(n["app"])))
        assert "public" in str(conn.execute("SHOW search_path").fetchone())
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE FUNCTION public.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    after = s.cli("check", "--format", "json").json()["findings"]
    assert not [f for f in after if f["rule"] == "settings.writable-search-path"]
