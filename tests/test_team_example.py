"""docs/examples/team.toml, the example every release must pass: applied to an empty cluster on every
supported version, then proved by logging in as each role with its password."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from helpers import role_conninfo, run_cli
from pgwarden.server import LocalServer, PgBinaries

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "team.toml"
PASSWORDS = {
    "PGWARDEN_PASSWORD_SHOP_APP": "app-secret",
    "PGWARDEN_PASSWORD_ALICE": "alice-secret",
    "PGWARDEN_PASSWORD_BOB": "bob-secret",
    "PGWARDEN_PASSWORD_ETL": "etl-secret",
    "PGWARDEN_PASSWORD_SHOP_DEPLOY": "deploy-secret",
}
SCHEMA = """
CREATE TABLE app.customers (id serial PRIMARY KEY, name text, email text);
CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric);
CREATE TABLE reporting.daily (day date, total numeric);
CREATE TABLE audit.events (id bigserial PRIMARY KEY, what text);
INSERT INTO app.customers (name, email) VALUES ('Ada', 'ada@example.com');
INSERT INTO reporting.daily VALUES ('2026-12-01', 10);
"""


class Team:
    """The applied example: its cluster, policy file and a way to log in as each role."""

    def __init__(self, server: LocalServer, policy: Path) -> None:
        self.server, self.policy = server, policy
        self.admin = server.conninfo("postgres")

    def cli(self, *args: str) -> Any:
        return run_cli([*args, "-c", str(self.policy), "--dsn", self.admin], env=PASSWORDS)

    def login(self, role: str) -> psycopg.Connection[Any]:
        password = PASSWORDS[f"PGWARDEN_PASSWORD_{role.upper()}"]
        return psycopg.connect(role_conninfo(self.admin, role, password, dbname="shop"), autocommit=True)


@pytest.fixture(scope="module")
def team(pg_binaries: PgBinaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """An empty cluster of its own (the example's names are fixed), the example applied, the
    tables created through the deploy login, and apply run again."""
    server = LocalServer(pg_binaries)
    server.start()
    try:
        policy = tmp_path_factory.mktemp("team") / "team.toml"
        shutil.copy(EXAMPLE, policy)
        t = Team(server, policy)
        first = t.cli("apply", "--yes")
        assert first.exit_code == 0, str(first)
        with t.login("shop_deploy") as deploy:
            deploy.execute(SCHEMA)
        second = t.cli("apply", "--yes")
        assert second.exit_code == 0, str(second)
        yield t
    finally:
        server.cleanup()


def _denied(conn: psycopg.Connection[Any], statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_every_table_is_owned_by_the_owner_and_the_policy_holds(team: Team) -> None:
    with psycopg.connect(team.server.conninfo("shop")) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
            "WHERE relnamespace::regnamespace::text IN ('app', 'reporting', 'audit')"
        ).fetchall()
    assert owners == [("shop_owner",)]
    check = team.cli("check")
    assert check.exit_code == 0, str(check)
    plan = team.cli("plan", "--exit-code")
    assert plan.exit_code == 0, str(plan)


def test_the_app_writes_app_reads_reporting_and_only_appends_to_audit(team: Team) -> None:
    with team.login("shop_app") as app:
        app.execute("INSERT INTO app.orders (total) VALUES (5)")
        assert app.execute("SELECT count(*) FROM app.orders").fetchone() == (1,)
        assert app.execute("SELECT count(*) FROM reporting.daily").fetchone() == (1,)
        _denied(app, "INSERT INTO reporting.daily VALUES (now(), 1)")
        app.execute("INSERT INTO audit.events (what) VALUES ('paid')")
        _denied(app, "SELECT * FROM audit.events")
        _denied(app, "UPDATE audit.events SET what = 'x'")
        _denied(app, "DELETE FROM audit.events")
        _denied(app, "CREATE TABLE app.sneaky (id int)")
        assert app.execute("SHOW statement_timeout").fetchone() == ("5s",)
    with psycopg.connect(team.server.conninfo("postgres")) as conn:
        assert conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'shop_app'").fetchone() == (20,)


def test_an_analyst_reads_reporting_and_customers_but_not_their_email(team: Team) -> None:
    with team.login("alice") as alice:
        assert alice.execute("SELECT count(*) FROM reporting.daily").fetchone() == (1,)
        assert alice.execute("SELECT id, name FROM app.customers").fetchall() == [(1, "Ada")]
        _denied(alice, "SELECT email FROM app.customers")
        _denied(alice, "SELECT * FROM app.customers")
        _denied(alice, "INSERT INTO reporting.daily VALUES (now(), 1)")
        _denied(alice, "UPDATE app.customers SET name = 'x'")
        _denied(alice, "DELETE FROM app.orders")


def test_etl_truncates_reporting_only(team: Team) -> None:
    with team.login("etl") as etl:
        etl.execute("BEGIN")
        etl.execute("TRUNCATE reporting.daily")
        etl.execute("ROLLBACK")
        _denied(etl, "TRUNCATE app.orders")
        _denied(etl, "SELECT * FROM app.orders")


def test_bob_expires_on_the_first_of_january(team: Team) -> None:
    with psycopg.connect(team.server.conninfo("postgres")) as conn:
        row = conn.execute(
            "SELECT rolvaliduntil = '2027-01-01'::timestamptz, pg_has_role('bob', 'analysts', 'USAGE') "
            "FROM pg_roles WHERE rolname = 'bob'"
        ).fetchone()
    assert row == (True, True)


def test_a_new_column_of_an_excepted_table_is_drift_until_applied(team: Team) -> None:
    """Column exceptions are kept right as migrations add columns: check reports the new column the
    analysts should read, apply grants it."""
    with team.login("shop_deploy") as deploy:
        deploy.execute("ALTER TABLE app.customers ADD COLUMN city text")
    with team.login("alice") as alice:
        _denied(alice, "SELECT city FROM app.customers")
    check = team.cli("check", "--format", "json")
    assert check.exit_code == 1, str(check)
    assert any("city" in (f.get("fix") or "") for f in check.json()["findings"]), check.stdout
    assert team.cli("apply", "--yes").exit_code == 0
    with team.login("alice") as alice:
        assert alice.execute("SELECT city FROM app.customers").fetchall() == [(None,)]
        _denied(alice, "SELECT email FROM app.customers")
    assert team.cli("plan", "--exit-code").exit_code == 0
