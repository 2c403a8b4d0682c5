"""Issue 20's last shapes, on real servers: grant options (a grant's `grant_option`), the owner's default
privileges ON TYPES (`type_usage`), and PUBLIC's CREATE on a schema public the policy does not manage
(`hardening.revoke_public_create`). init describes each, so the first plan takes nothing; the keys
keep what is held and never grant a grant option; check keeps grant options in view."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli
from pgwarden.policy import load_policy


def _db(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    name: Callable[[str], str],
    cleanup: PgCleanup,
    statements: list[str],
) -> tuple[str, dict[str, str]]:
    """A database owned by its owner role (so `plan --exit-code` right after init must exit 0)."""
    roles = {r: cleanup.role(name(r)) for r in ("owner", "bi", "app", "other")}
    q = {r: sql.Identifier(n) for r, n in roles.items()}
    admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(q["owner"]))
    admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(q["bi"]))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(q["app"]))
    admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(q["other"]))
    db = cleanup.database(name("db"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), q["owner"]))
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as c:
        c.execute("REVOKE ALL ON DATABASE {} FROM PUBLIC".replace("{}", sql.Identifier(db).as_string(c)))
        c.execute(sql.SQL("SET ROLE {}").format(q["owner"]))
        c.execute("CREATE SCHEMA app")
        c.execute("CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric)")
        c.execute("CREATE TABLE app.notes (body text)")
        c.execute("CREATE FUNCTION app.total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(total) FROM app.orders'")
        c.execute("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA app FROM PUBLIC")
        c.execute("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
        c.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), q["app"]))
        for stmt in statements:
            c.execute(sql.SQL(stmt).format(**q, db=sql.Identifier(db)))
    return db, roles


def _init(admin_dsn: str, db: str, path: Path) -> str:
    result = run_cli(["init", "--from-database", db, "--dsn", admin_dsn, "-o", str(path)])
    assert result.exit_code == 0, str(result)
    load_policy(path)
    return result.stderr


def _options(conninfo: str, role: str) -> set[tuple[str, str]]:
    """(object, privilege) `role` holds WITH GRANT OPTION, as the server says."""
    query = """
    SELECT 'database', p FROM unnest(ARRAY['CONNECT', 'TEMPORARY']) p
     WHERE has_database_privilege(%(r)s, current_database(), p || ' WITH GRANT OPTION')
    UNION ALL SELECT 'schema app', 'USAGE' WHERE has_schema_privilege(%(r)s, 'app', 'USAGE WITH GRANT OPTION')
    UNION ALL SELECT c.oid::regclass::text, p FROM pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) p
     WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r'
       AND has_table_privilege(%(r)s, c.oid, p || ' WITH GRANT OPTION')
    UNION ALL SELECT c.oid::regclass::text, p FROM pg_class c, unnest(ARRAY['SELECT', 'UPDATE', 'USAGE']) p
     WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'S'
       AND has_sequence_privilege(%(r)s, c.oid, p || ' WITH GRANT OPTION')
    UNION ALL SELECT 'app.total()', 'EXECUTE'
     WHERE has_function_privilege(%(r)s, 'app.total()', 'EXECUTE WITH GRANT OPTION')
    """
    with psycopg.connect(conninfo, autocommit=True) as c:
        return {(str(a), str(b)) for a, b in c.execute(query, {"r": role}).fetchall()}


GRANT_OPTIONS = [
    "GRANT CONNECT ON DATABASE {db} TO {bi} WITH GRANT OPTION",
    "GRANT USAGE ON SCHEMA app TO {bi} WITH GRANT OPTION",
    "GRANT SELECT ON app.orders TO {bi} WITH GRANT OPTION",
    "GRANT INSERT ON app.orders TO {bi}",
    "GRANT SELECT ON app.notes TO {bi}",  # held without the option: kept so, never given one
    "GRANT USAGE ON SEQUENCE app.orders_id_seq TO {bi} WITH GRANT OPTION",
    "GRANT EXECUTE ON FUNCTION app.total() TO {bi} WITH GRANT OPTION",
]


def test_grant_options_are_described_kept_never_granted_and_reported(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    db, roles = _db(admin_conn, admin_dsn, unique_name, pg_cleanup, GRANT_OPTIONS)
    conninfo = db_conninfo(admin_dsn, db)
    held = _options(conninfo, roles["bi"])
    assert held == {
        ("database", "CONNECT"),
        ("schema app", "USAGE"),
        ("app.orders", "SELECT"),
        ("app.orders_id_seq", "USAGE"),
        ("app.total()", "EXECUTE"),
    }
    # the hazard is real: acting as bi, it hands SELECT on app.orders to a role the policy never names
    with psycopg.connect(conninfo, autocommit=True) as c, c.transaction(force_rollback=True):
        c.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(roles["bi"])))
        c.execute(sql.SQL("GRANT SELECT ON app.orders TO {}").format(sql.Identifier(roles["other"])))
        granted = c.execute("SELECT has_table_privilege(%s, 'app.orders', 'SELECT')", [roles["other"]]).fetchone()
        assert granted == (True,)
    path = tmp_path / "policy.toml"
    stderr = _init(admin_dsn, db, path)
    assert "grant options held by roles other than the owner: the policy keeps them" in stderr, stderr
    assert "grant_option" in path.read_text()
    plan = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--exit-code"])
    assert plan.exit_code == 0, path.read_text() + str(plan)
    assert _options(conninfo, roles["bi"]) == held
    # check keeps each one in view
    check = run_cli(["check", "-c", str(path), "--dsn", admin_dsn, "--format", "json"])
    found = [f for f in json.loads(check.stdout)["findings"] if f["rule"] == "privilege.grant-option"]
    assert {f["object"] for f in found} >= {f"database {db}", "schema app", "table app.orders"}, found
    assert all(f["role"] == roles["bi"] for f in found)
    # the key is what keeps them: without it, apply takes the options (the privileges stay)
    text = re.sub(r", grant_option = \[[^\]]*\]", "", path.read_text())
    assert "grant_option" not in text
    path.write_text(text)
    steps = json.loads(run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--format", "json"]).stdout)["steps"]
    revokes = [s["sql"] for s in steps if s["sql"].startswith("REVOKE GRANT OPTION FOR")]
    assert len(revokes) == len(held), steps
    assert not any("WITH GRANT OPTION" in s["sql"] for s in steps)
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"]).exit_code == 0
    assert _options(conninfo, roles["bi"]) == set()
    with psycopg.connect(conninfo, autocommit=True) as c:
        assert c.execute("SELECT has_table_privilege(%s, 'app.orders', 'SELECT')", [roles["bi"]]).fetchone() == (True,)


def test_a_grant_option_key_never_grants_an_option(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    """grant_option = ["SELECT"] on a grant whose role holds SELECT without the option: nothing changes;
    on a new table the grant reaches, SELECT is granted, without the option."""
    db, roles = _db(admin_conn, admin_dsn, unique_name, pg_cleanup, ["GRANT USAGE ON SCHEMA app TO {bi}"])
    path = tmp_path / "policy.toml"
    _init(admin_dsn, db, path)
    text = path.read_text()
    grant = f'{{ role = "{roles["bi"]}", profile = "readonly", schemas = ["app"], grant_option = ["SELECT", "USAGE"] }}'
    path.write_text(re.sub(r"grants = \[\n", "grants = [\n  " + grant.replace("\\", "\\\\") + ",\n", text, count=1))
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"]).exit_code == 0
    conninfo = db_conninfo(admin_dsn, db)
    with psycopg.connect(conninfo, autocommit=True) as c:
        assert c.execute("SELECT has_table_privilege(%s, 'app.notes', 'SELECT')", [roles["bi"]]).fetchone() == (True,)
    assert _options(conninfo, roles["bi"]) == set()
    again = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--exit-code"])
    assert again.exit_code == 0, str(again)


def _type_defaults(conninfo: str, owner: str) -> set[tuple[str, str, str]]:
    """(schema or '*', grantee, privilege) of the owner's default privileges ON TYPES."""
    query = """
    SELECT COALESCE(NULLIF(d.defaclnamespace, 0)::regnamespace::text, '*'), a.grantee::regrole::text, a.privilege_type
      FROM pg_default_acl d, aclexplode(d.defaclacl) a
     WHERE d.defaclrole = %(o)s::regrole AND d.defaclobjtype = 'T' AND a.grantee NOT IN (0, %(o)s::regrole)
    """
    with psycopg.connect(conninfo, autocommit=True) as c:
        return {(str(a), str(b), str(p)) for a, b, p in c.execute(query, {"o": owner}).fetchall()}


def test_the_owners_default_privileges_on_types_are_described_and_planned(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    statements = [
        "GRANT USAGE ON SCHEMA app TO {bi}",
        "GRANT SELECT ON app.notes TO {bi}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE ON TYPES TO {bi}",
        "ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO {app}",  # app holds nothing else
    ]
    db, roles = _db(admin_conn, admin_dsn, unique_name, pg_cleanup, statements)
    conninfo = db_conninfo(admin_dsn, db)
    before = _type_defaults(conninfo, roles["owner"])
    assert before == {("app", roles["bi"], "USAGE"), ("*", roles["app"], "USAGE")}
    path = tmp_path / "policy.toml"
    _init(admin_dsn, db, path)
    policy = load_policy(path)
    assert policy.profiles["type_usage"].type == ("USAGE",)
    plan = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--exit-code"])
    assert plan.exit_code == 0, path.read_text() + str(plan)
    # the keys are planned like the tables': dropped by hand, apply sets them again
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles["owner"])))
        c.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA app REVOKE USAGE ON TYPES FROM {}").format(
            sql.Identifier(roles["bi"])))  # fmt: skip
        c.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES REVOKE USAGE ON TYPES FROM {}").format(sql.Identifier(roles["app"]))
        )
    assert _type_defaults(conninfo, roles["owner"]) == set()
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"]).exit_code == 0
    assert _type_defaults(conninfo, roles["owner"]) == before


def test_public_create_on_an_unmanaged_public_is_kept_and_said(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    db, roles = _db(admin_conn, admin_dsn, unique_name, pg_cleanup, ["GRANT USAGE ON SCHEMA app TO {bi}"])
    conninfo = db_conninfo(admin_dsn, db)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL 14's default, granted on any version
    path = tmp_path / "policy.toml"
    stderr = _init(admin_dsn, db, path)
    assert "PUBLIC may CREATE in schema public (the PostgreSQL 14 default): kept" in stderr, stderr
    policy = load_policy(path)
    assert policy.database.schemas == ("app",) and not policy.hardening.revoke_public_create
    plan = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn, "--exit-code"])
    assert plan.exit_code == 0, path.read_text() + str(plan)
    with psycopg.connect(conninfo, autocommit=True) as c:
        held = c.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [roles["other"]]).fetchone()
        assert held == (True,)
    # the switch on (the default for a hand-written policy): apply revokes it
    path.write_text(path.read_text().replace("revoke_public_create = false", "revoke_public_create = true"))
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"]).exit_code == 0
    with psycopg.connect(conninfo, autocommit=True) as c:
        held = c.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [roles["other"]]).fetchone()
        assert held == (False,)


def test_suggest_keeps_grant_options_and_type_defaults_as_they_are(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    """--suggest broadens grants on objects only: the grant options stay described and the owner's defaults on
    types stay a `type_usage` grant (never the nearest built-in profile, which would give SELECT on the schema)."""
    statements = [*GRANT_OPTIONS, "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE ON TYPES TO {app}"]
    db, roles = _db(admin_conn, admin_dsn, unique_name, pg_cleanup, statements)
    conninfo = db_conninfo(admin_dsn, db)
    held, types = _options(conninfo, roles["bi"]), _type_defaults(conninfo, roles["owner"])
    path = tmp_path / "suggested.toml"
    result = run_cli(["init", "--from-database", db, "--dsn", admin_dsn, "--suggest", "-o", str(path)])
    assert result.exit_code == 0, str(result)
    # what the suggestion narrows is listed (and its grant option goes with it); nothing else changes
    narrowed = {(m[2], m[1]) for m in re.findall(r"^  - (\S+) (\w+) on \w+ (\S+)$", result.stderr, re.M)}
    assert narrowed == {("app.orders_id_seq", "USAGE"), ("app.orders", "INSERT")}, result.stderr
    policy = load_policy(path)
    app_grants = [g for g in policy.database.grants if g.role == roles["app"]]
    assert [g.profile for g in app_grants] == ["type_usage"], path.read_text()
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"]).exit_code == 0
    assert _options(conninfo, roles["bi"]) == held - narrowed
    assert _type_defaults(conninfo, roles["owner"]) == types
    with psycopg.connect(conninfo, autocommit=True) as c:  # the app reads nothing it did not read
        assert c.execute("SELECT has_table_privilege(%s, 'app.notes', 'SELECT')", [roles["app"]]).fetchone() == (False,)
