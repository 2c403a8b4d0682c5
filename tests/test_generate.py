"""init --from-database on real servers: a database set up by hand becomes a policy that plans nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import CliResult, run_cli
from pgwarden.policy import load_policy
from pgwarden.policy.names import password_env_for


@dataclass
class Handmade:
    """A database set up by hand the way teams do, already in the split's shape."""

    db: str
    owner: str
    deploy: str
    app: str
    bi: str
    etl: str
    analysts: str
    alice: str
    bob: str  # in the group without inheriting its rights (SET ROLE only)
    dsn: str  # the admin's, to the postgres database
    env: dict[str, str | None]  # every LOGIN role's password variable

    def conninfo(self, role: str | None = None) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.dsn)
        params["dbname"] = self.db
        if role is not None:
            params["user"] = role
            params["password"] = self.env[password_env_for(role)]
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def _handmade(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    name: Callable[[str], str],
    cleanup: PgCleanup,
    extra: list[str] | None = None,
) -> Handmade:
    roles = {r: cleanup.role(name(r)) for r in ("owner", "deploy", "app", "bi", "etl", "analysts", "alice", "bob")}
    env: dict[str, str | None] = {}
    q = {r: sql.Identifier(n) for r, n in roles.items()}
    for r, n in roles.items():
        if r == "analysts":
            admin_conn.execute(sql.SQL("CREATE ROLE {}").format(q[r]))
            continue
        env[password_env_for(n)] = f"pw-{r}-1"
        admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(q[r], sql.Literal(f"pw-{r}-1")))
    db = cleanup.database(name("db"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), q["owner"]))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(q["owner"], q["deploy"]))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(q["analysts"], q["alice"]))
    if admin_conn.info.server_version >= 160000:
        admin_conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT FALSE").format(q["analysts"], q["bob"]))
    else:  # before 16, inheriting is the member's attribute
        admin_conn.execute(sql.SQL("ALTER ROLE {} NOINHERIT").format(q["bob"]))
        admin_conn.execute(sql.SQL("GRANT {} TO {}").format(q["analysts"], q["bob"]))
    admin_conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET role = {}").format(
            q["deploy"], sql.Identifier(db), sql.Literal(roles["owner"])
        )
    )
    admin_conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '5s'").format(q["app"]))
    admin_conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 20").format(q["app"]))
    admin_conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2031-01-01'").format(q["alice"]))
    admin_conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2030-06-01 12:30:00+00'").format(q["bob"]))
    admin_conn.execute(sql.SQL("COMMENT ON ROLE {} IS 'the BI tool'").format(q["bi"]))
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn) | {"dbname": db}
    with psycopg.connect(
        psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), autocommit=True
    ) as c:
        c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # the split's shape (14's default has it)
        c.execute(sql.SQL("SET ROLE {}").format(q["owner"]))
        for stmt in _SETUP + (extra or []):
            c.execute(sql.SQL(stmt).format(**q, db=sql.Identifier(db)))
    return Handmade(db, *roles.values(), dsn=admin_dsn, env=env)  # type: ignore[arg-type]


#: What the team did by hand, as the owner: schemas, tables, grants and default privileges that
#: match them (the split's shape), one table-level and one column-level exception.
_SETUP = [
    "CREATE SCHEMA app",
    "CREATE SCHEMA reporting",
    "CREATE TABLE app.customers (id serial PRIMARY KEY, name text, email text)",
    "CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric)",
    "CREATE TABLE app.secrets (id int, token text)",
    "CREATE TABLE reporting.daily (day date, total numeric)",
    # bob does not inherit the analysts' rights: he logs in with a CONNECT of his own, then SET ROLE
    "GRANT CONNECT ON DATABASE {db} TO {app}, {bi}, {etl}, {analysts}, {deploy}, {bob}",
    "GRANT USAGE ON SCHEMA app, reporting TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO {app}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO {app}",
    "GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO {app}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO {app}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON SEQUENCES TO {app}",
    # bi reads everything but app.secrets (a table-level exception)
    "GRANT USAGE ON SCHEMA app, reporting TO {bi}",
    "GRANT SELECT ON app.customers, app.orders, reporting.daily TO {bi}",
    "GRANT SELECT ON ALL SEQUENCES IN SCHEMA app TO {bi}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app, reporting GRANT SELECT ON TABLES TO {bi}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app, reporting GRANT SELECT ON SEQUENCES TO {bi}",
    # the analysts group reads app but not customers.email (a column-level exception)
    "GRANT USAGE ON SCHEMA app TO {analysts}",
    "GRANT SELECT (id, name) ON app.customers TO {analysts}",
    "GRANT SELECT ON app.orders, app.secrets TO {analysts}",
    "GRANT SELECT ON ALL SEQUENCES IN SCHEMA app TO {analysts}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO {analysts}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON SEQUENCES TO {analysts}",
    # the ETL job empties and reloads reporting
    "GRANT USAGE ON SCHEMA reporting TO {etl}",
    "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA reporting TO {etl}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO {etl}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT USAGE, SELECT ON SEQUENCES TO {etl}",
]


@pytest.fixture
def handmade(
    admin_conn: psycopg.Connection[Any], admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> Handmade:
    return _handmade(admin_conn, admin_dsn, unique_name, pg_cleanup)


#: A team that also hardened by hand: PUBLIC neither connects nor runs the owner's functions.
_HARDENED = [
    "REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC",
    "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
    "CREATE FUNCTION app.total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(total) FROM app.orders'",
    "CREATE FUNCTION reporting.today() RETURNS date LANGUAGE sql AS 'SELECT current_date'",
    "GRANT EXECUTE ON FUNCTION app.total() TO {app}, {bi}, {analysts}",
    "GRANT EXECUTE ON FUNCTION reporting.today() TO {app}, {bi}, {etl}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT EXECUTE ON FUNCTIONS TO {app}, {bi}, {analysts}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT EXECUTE ON FUNCTIONS TO {app}, {bi}, {etl}",
]


def _init(h: Handmade, path: Path, *args: str) -> CliResult:
    result = run_cli(["init", "--from-database", h.db, "--dsn", h.dsn, "-o", str(path), *args])
    assert result.exit_code == 0, str(result)
    return result


def test_a_handmade_database_becomes_a_policy_that_plans_nothing(handmade: Handmade, tmp_path: Path) -> None:
    h = handmade
    path = tmp_path / "policy.toml"
    result = _init(h, path)
    assert "split forbids" not in result.stderr and "not exact" not in result.stderr, str(result)
    policy = load_policy(path)
    grants = {(g.role, g.profile, g.schemas, g.except_tables, tuple(g.except_columns.items())) for g in policy.grants()}
    assert grants == {
        (h.app, "readwrite", ("app",), (), ()),
        (h.app, "readonly", ("reporting",), (), ()),
        (h.bi, "readonly", ("app", "reporting"), ("app.secrets",), ()),  # the table-level exception
        (h.analysts, "readonly", ("app",), (), (("app.customers", ("email",)),)),  # the column-level one
        (h.etl, "readwrite_truncate", ("reporting",), (), ()),
    }
    assert set(policy.profiles["readwrite_truncate"].table) == {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"}
    assert policy.owner.name == h.owner and policy.owner.deploy_logins == (h.deploy,)
    assert policy.database.schemas == ("app", "reporting")
    access = {a.name: a for a in policy.access}
    assert set(access) == {h.app, h.bi, h.etl, h.analysts} and not access[h.analysts].login
    assert access[h.app].settings == {"statement_timeout": "5s"} and access[h.app].connection_limit == 20
    assert access[h.bi].comment == "the BI tool"
    members = {m.name: m for m in policy.members}
    assert [(m.role, m.inherit, m.set) for m in members[h.alice].member_of] == [(h.analysts, True, True)]
    assert members[h.alice].valid_until == "2031-01-01"
    assert [(m.role, m.inherit, m.set) for m in members[h.bob].member_of] == [(h.analysts, False, True)]
    assert members[h.bob].valid_until == "2030-06-01T12:30:00+00:00"  # an instant, not midnight: said as one
    assert not policy.hardening.revoke_public_connect  # PUBLIC still connects, as the database does
    text = path.read_text()
    assert "PASSWORD" not in text.replace("PGWARDEN_PASSWORD", "") and "pw-" not in text  # never a password
    assert "# readwrite plus TRUNCATE on tables" in text and "# exact: except app.secrets" in text
    plan = run_cli(["plan", "-c", str(path), "--dsn", h.dsn, "--exit-code"], env=h.env)
    assert plan.exit_code == 0, str(plan)


def test_a_hardened_database_gives_the_hardening_switches_on(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    h = _handmade(admin_conn, admin_dsn, unique_name, pg_cleanup, _HARDENED)
    with psycopg.connect(h.conninfo(h.app), autocommit=True) as app:  # what the grants give, proved as the role
        assert app.execute("SELECT app.total()").fetchone() == (None,)
    path = tmp_path / "policy.toml"
    result = _init(h, path)
    assert "not exact" not in result.stderr, str(result)
    policy = load_policy(path)
    assert policy.hardening.revoke_public_connect and policy.hardening.revoke_public_execute
    assert "revoke_public_connect = false" not in path.read_text()
    plan = run_cli(["plan", "-c", str(path), "--dsn", h.dsn, "--exit-code"], env=h.env)
    assert plan.exit_code == 0, str(plan)


def test_probe_passes_right_after_init(handmade: Handmade, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    _init(handmade, path)
    probe = run_cli(["probe", "-c", str(path), "--dsn", handmade.dsn], env=handmade.env)
    assert probe.exit_code == 0, str(probe)


def test_what_the_split_forbids_is_listed_not_written(
    handmade: Handmade, admin_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    h = handmade
    with psycopg.connect(h.conninfo(h.owner), autocommit=True) as owner:
        owner.execute(sql.SQL("GRANT CREATE ON SCHEMA app TO {}").format(sql.Identifier(h.app)))
    with psycopg.connect(h.conninfo(h.app), autocommit=True) as app:  # the hazard is real: the app makes tables
        app.execute("RESET role")
        app.execute("CREATE TABLE app.app_made (id int)")
        assert app.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'app_made'").fetchone() == (h.app,)
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(h.owner), sql.Identifier(h.alice)))
    with psycopg.connect(h.conninfo(h.owner), autocommit=True) as owner:
        owner.execute(sql.SQL("GRANT SELECT ON app.orders TO {} WITH GRANT OPTION").format(sql.Identifier(h.bi)))
    with psycopg.connect(h.conninfo(h.bi), autocommit=True) as bi:  # bi hands its right on
        bi.execute(sql.SQL("GRANT SELECT ON app.orders TO {}").format(sql.Identifier(h.etl)))
    path = tmp_path / "policy.toml"
    result = _init(h, path)
    assert f"table app.app_made is owned by access role {h.app}, not {h.owner}" in result.stderr, str(result)
    assert f"{h.app} may CREATE in schema app: only the owner may" in result.stderr
    assert f"{h.alice} is a member of the owner {h.owner}" in result.stderr
    # issue 20: a grant option is described (grant_option), listed as a hazard, never taken by the first plan
    assert f"{h.bi} may grant SELECT on table app.orders to others: kept (grant_option)" in result.stderr
    assert f"privileges of {h.etl} were granted by {h.bi}, not the owner {h.owner}: plan grants them" in result.stderr
    policy = load_policy(path)
    assert policy.owner.name == h.owner and h.alice not in policy.owner.deploy_logins  # not written as intent
    plan = run_cli(["plan", "-c", str(path), "--dsn", h.dsn, "--exit-code"], env=h.env)
    assert plan.exit_code == 1 and "ALTER TABLE" in plan.stdout and "REVOKE CREATE ON SCHEMA" in plan.stdout, str(plan)
    assert f'GRANT SELECT ON TABLE "app"."orders" TO "{h.etl}"' in plan.stdout, str(plan)
    assert "REVOKE GRANT OPTION" not in plan.stdout, str(plan)
    check = run_cli(["check", "-c", str(path), "--dsn", h.dsn], env=h.env)
    assert check.exit_code == 1 and "app_made" in check.stdout, str(check)
    assert f"privilege.grant-option  table app.orders (role {h.bi})" in check.stdout, str(check)


def test_suggest_writes_fewer_grants_and_says_what_they_change(handmade: Handmade, tmp_path: Path) -> None:
    h = handmade
    result = run_cli(["init", "--from-database", h.db, "--dsn", h.dsn, "--suggest", "-o", "-"])
    assert result.exit_code == 0, str(result)
    # issue 20: what the exact file excepts stays excepted (it used to hand bi app.secrets and the
    # analysts the column email)
    assert "[profiles." not in result.stdout and 'except_tables = ["app.secrets"]' in result.stdout
    assert 'except_columns = { "app.customers" = ["email"] }' in result.stdout
    changes = {line.strip() for line in result.stderr.splitlines() if line.startswith("  +") or line.startswith("  -")}
    assert changes == {f"- {h.etl} TRUNCATE on table reporting.daily"}, result.stderr
    path = tmp_path / "suggested.toml"
    path.write_text(result.stdout)
    plan = run_cli(["plan", "-c", str(path), "--dsn", h.dsn, "--exit-code"], env=h.env)
    assert plan.exit_code == 1, str(plan)
    assert "GRANT SELECT ON TABLE" not in plan.stdout and "REVOKE TRUNCATE" in plan.stdout, str(plan)


def test_from_database_fails_in_one_line(handmade: Handmade, tmp_path: Path) -> None:
    h = handmade
    path = tmp_path / "p.toml"
    for args, needle in [
        # issue 20: a missing database is said as such (it used to hint "run apply to create it"),
        # and --owner may name a role the policy will create (it used to be refused)
        (["--from-database", h.db + "_missing"], f"database {h.db}_missing does not exist"),
        (["--from-database", h.db, "--schema", "nowhere"], "schema nowhere does not exist"),
    ]:
        result = run_cli(["init", *args, "--dsn", h.dsn, "-o", str(path)])
        assert result.exit_code == 2 and result.stderr.startswith("error:") and "Traceback" not in result.stderr, str(
            result
        )
        assert needle in result.stderr and not path.exists(), str(result)
