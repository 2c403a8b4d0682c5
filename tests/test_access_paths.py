"""check judges paths: an excepted table or column that the role it is excepted from reaches by any
path is a finding. Each class is first proved by acting as the role (alice, an analyst, logs in and
reads the excepted email), then found by `check`, then (where one statement or the policy removes
it) removed by `apply`, after which the proof fails. On the team example (docs/examples/team.toml),
whose analysts read app.customers except its email."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from pgwarden.server import LocalServer, PgBinaries
from test_team_example import EXAMPLE, SCHEMA, Team


@pytest.fixture(scope="module")
def team(pg_binaries: PgBinaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    server = LocalServer(pg_binaries)
    server.start()
    try:
        policy = tmp_path_factory.mktemp("paths") / "team.toml"
        shutil.copy(EXAMPLE, policy)
        t = Team(server, policy)
        assert t.cli("apply", "--yes").exit_code == 0
        with t.login("shop_deploy") as deploy:
            deploy.execute(SCHEMA)
        assert t.cli("apply", "--yes").exit_code == 0
        yield t
    finally:
        server.cleanup()


def _admin(team: Team) -> psycopg.Connection[Any]:
    return psycopg.connect(team.server.conninfo("shop"), autocommit=True)


def _alice_reads(team: Team, query: str) -> list[Any] | None:
    """What alice gets from `query`; None when PostgreSQL refuses it."""
    with team.login("alice") as alice:
        try:
            return alice.execute(query).fetchall()
        except errors.InsufficientPrivilege:
            return None


def _path_findings(team: Team) -> list[dict[str, Any]]:
    result = team.cli("check", "--format", "json")
    assert result.exit_code in (0, 1), str(result)
    return [f for f in result.json()["findings"] if f["rule"] == "exception.path"]


def _probed(team: Team, needle: str) -> list[dict[str, Any]]:
    """probe's tries of the paths around the exceptions whose object mentions `needle`."""
    result = team.cli("probe", "--format", "json")
    assert result.exit_code in (0, 1), str(result)
    tries = [a for a in result.json()["attempts"] if a["action"] == "read-excepted" and needle in a["object"]]
    assert result.exit_code == (1 if any(not a["ok"] for a in tries) else result.exit_code)
    return tries


def _except(team: Team, grant_line: str, replacement: str) -> str:
    """Edit the analysts' app grant in the policy file; returns the old text to put back."""
    old = team.policy.read_text("utf-8")
    assert grant_line in old
    team.policy.write_text(old.replace(grant_line, replacement), encoding="utf-8")
    return old


ANALYSTS_APP = 'except_columns = { "app.customers" = ["email"] } }'


def test_a_view_over_the_excepted_column_is_a_finding_until_the_policy_excepts_it(team: Team) -> None:
    with team.login("shop_deploy") as deploy:
        deploy.execute("CREATE VIEW app.customer_contacts AS SELECT id, email FROM app.customers")
    assert team.cli("apply", "--yes").exit_code == 0  # the policy's readonly on app covers the view
    assert _alice_reads(team, "SELECT email FROM app.customer_contacts") == [("ada@example.com",)]
    assert _alice_reads(team, "SELECT email FROM app.customers") is None  # the exception itself holds
    found = _path_findings(team)
    mine = [f for f in found if f["object"] == "app.customers.email" and "app.customer_contacts" in f["message"]]
    assert mine and mine[0]["role"] == "analysts" and mine[0]["fix"] is None, found
    assert "add app.customer_contacts to the grant's except_tables" in mine[0]["message"]
    tried = _probed(team, "app.customer_contacts")  # probe walks the path as analysts: a failure
    assert tried and all(a["role"] == "analysts" and a["outcome"] == "allowed" and not a["ok"] for a in tried)
    old = _except(team, ANALYSTS_APP, ANALYSTS_APP[:-2] + ', except_tables = ["app.customer_contacts"] }')
    try:
        assert team.cli("apply", "--yes").exit_code == 0
        assert _alice_reads(team, "SELECT email FROM app.customer_contacts") is None
        assert not [f for f in _path_findings(team) if "customer_contacts" in f["message"]]
        assert not _probed(team, "app.customer_contacts")
    finally:
        team.policy.write_text(old, encoding="utf-8")
        with team.login("shop_deploy") as deploy:
            deploy.execute("DROP VIEW app.customer_contacts")


def test_a_definer_routine_that_reads_the_column_is_a_finding_with_what_to_change(team: Team) -> None:
    with team.login("shop_deploy") as deploy:
        deploy.execute(
            "CREATE FUNCTION app.customer_emails() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER "
            "SET search_path = pg_catalog AS 'SELECT email FROM app.customers'"
        )
    try:
        assert team.cli("apply", "--yes").exit_code == 0  # readonly gives EXECUTE on app's routines
        assert _alice_reads(team, "SELECT app.customer_emails()") == [("ada@example.com",)]
        mine = [f for f in _path_findings(team) if "customer_emails" in f["message"]]
        assert mine and mine[0]["object"] == "app.customers.email" and mine[0]["role"] == "analysts", mine
        assert "make it SECURITY INVOKER" in mine[0]["message"] and mine[0]["fix"] is None
        tried = _probed(team, "customer_emails")  # asked of the server: the routine is not run
        assert [(a["method"], a["outcome"], a["ok"]) for a in tried] == [("inquiry", "allowed", False)], tried
        with team.login("shop_deploy") as deploy:
            deploy.execute("ALTER FUNCTION app.customer_emails() SECURITY INVOKER")
        assert _alice_reads(team, "SELECT app.customer_emails()") is None
        assert not [f for f in _path_findings(team) if "customer_emails" in f["message"]]
    finally:
        with team.login("shop_deploy") as deploy:
            deploy.execute("DROP FUNCTION app.customer_emails()")


def test_a_parent_table_reads_an_excepted_partition_until_the_policy_excepts_the_parent(team: Team) -> None:
    with team.login("shop_deploy") as deploy:
        deploy.execute(
            "CREATE TABLE app.leads (id int, email text) PARTITION BY RANGE (id);"
            "CREATE TABLE app.leads_vip PARTITION OF app.leads FOR VALUES FROM (0) TO (100);"
            "INSERT INTO app.leads VALUES (1, 'vip@example.com')"
        )
    base = _except(team, ANALYSTS_APP, ANALYSTS_APP[:-2] + ', except_tables = ["app.leads_vip"] }')
    try:
        assert team.cli("apply", "--yes").exit_code == 0
        assert _alice_reads(team, "SELECT email FROM app.leads_vip") is None
        assert _alice_reads(team, "SELECT email FROM app.leads") == [("vip@example.com",)]
        mine = [f for f in _path_findings(team) if f["object"] == "app.leads_vip"]
        assert mine and "parent app.leads" in mine[0]["message"], _path_findings(team)
        assert "add app.leads to the grant's except_tables" in mine[0]["message"]
        _except(team, '"app.leads_vip"]', '"app.leads_vip", "app.leads"]')
        assert team.cli("apply", "--yes").exit_code == 0
        assert _alice_reads(team, "SELECT email FROM app.leads") is None
        assert not [f for f in _path_findings(team) if f["object"] == "app.leads_vip"]
    finally:
        team.policy.write_text(base, encoding="utf-8")
        with team.login("shop_deploy") as deploy:
            deploy.execute("DROP TABLE app.leads")
        assert team.cli("apply", "--yes").exit_code == 0


@pytest.mark.parametrize(
    ("setup", "fix"),
    [
        # a role outside the policy that reads the table, granted to the group
        (
            "CREATE ROLE h4_reader; GRANT USAGE ON SCHEMA app TO h4_reader; "
            "GRANT SELECT ON app.customers TO h4_reader; GRANT h4_reader TO analysts",
            'REVOKE "h4_reader" FROM "analysts"',
        ),
        # the predefined role that reads every table
        ("GRANT pg_read_all_data TO analysts", 'REVOKE "pg_read_all_data" FROM "analysts"'),
        # PUBLIC, on the column itself
        (
            "GRANT SELECT (email) ON app.customers TO PUBLIC",
            'REVOKE SELECT ("email") ON TABLE "app"."customers" FROM PUBLIC',
        ),
    ],
    ids=["membership", "predefined", "public"],
)
def test_a_role_path_to_the_excepted_column_is_a_finding_that_apply_removes(team: Team, setup: str, fix: str) -> None:
    with _admin(team) as db:
        db.execute(setup)
    try:
        assert _alice_reads(team, "SELECT email FROM app.customers") == [("ada@example.com",)]
        mine = [f for f in _path_findings(team) if f["object"] == "app.customers.email"]
        assert [f["fix"] for f in mine] == [fix], mine
        tried = _probed(team, "app.customers.email")
        assert [(a["outcome"], a["ok"]) for a in tried] == [("allowed", False)], tried
        applied = team.cli("apply", "--yes")
        assert applied.exit_code == 0, str(applied)
        assert _alice_reads(team, "SELECT email FROM app.customers") is None
        assert not [f for f in _path_findings(team) if f["object"] == "app.customers.email"]
    finally:
        if "h4_reader" in setup:
            with _admin(team) as db:
                db.execute("DROP OWNED BY h4_reader; DROP ROLE h4_reader")
