"""The core loop on real servers: apply sets up the split, plan is then empty, tampering is found and fixed."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import CliResult, db_conninfo, role_conninfo, run_cli, write_policy
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer


@dataclass
class Split:
    """One policy's names, passwords and policy file, plus helpers to drive the CLI and log in."""

    admin_dsn: str
    path: Path
    database: str
    owner: str
    app: str
    readonly: str
    schemas: tuple[str, ...] = ("public",)
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str | None]:
        return {password_env_for(role): pw for role, pw in self.passwords.items()}

    def cli(self, *args: str, dsn: str | None = None, env: dict[str, str | None] | None = None) -> CliResult:
        merged = {**self.env, **(env or {})}
        return run_cli([*args, "-c", str(self.path), "--dsn", dsn or self.admin_dsn], env=merged)

    def apply(self, *extra: str, dsn: str | None = None) -> CliResult:
        result = self.cli("apply", "--yes", *extra, dsn=dsn)
        assert result.exit_code == 0, str(result)
        return result

    def plan_json(self, dsn: str | None = None) -> dict[str, Any]:
        result = self.cli("plan", "--format", "json", dsn=dsn)
        assert result.exit_code == 0, str(result)
        data: dict[str, Any] = result.json()
        return data

    def assert_clean(self, dsn: str | None = None) -> None:
        result = self.cli("plan", "--exit-code", "--format", "json", dsn=dsn)
        assert result.exit_code == 0, str(result)
        assert result.json()["steps"] == [], str(result)

    def login(self, role: str, dbname: str | None = None) -> psycopg.Connection[Any]:
        info = role_conninfo(self.admin_dsn, role, self.passwords[role], dbname or self.database)
        return psycopg.connect(info, autocommit=True, connect_timeout=10)

    def admin_db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(db_conninfo(self.admin_dsn, self.database), autocommit=True)


def make_split(
    tmp_path: Path,
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    *,
    database: str | None = None,
    owner: str | None = None,
    app: str | None = None,
    readonly: str | None = None,
    schemas: tuple[str, ...] = ("public",),
    passwords: bool = True,
) -> Split:
    split = Split(
        admin_dsn,
        tmp_path / "pgwarden.toml",
        pg_cleanup.database(database or unique_name("db")),
        pg_cleanup.role(owner or unique_name("owner")),
        pg_cleanup.role(app or unique_name("app")),
        pg_cleanup.role(readonly or unique_name("ro")),
        schemas,
    )
    if passwords:
        split.passwords = {r: "pw-" + secrets.token_hex(8) for r in (split.owner, split.app, split.readonly)}
    write_policy(
        split.path,
        database=split.database,
        owner=split.owner,
        app=[split.app],
        readonly=[split.readonly],
        schemas=list(schemas),
    )
    return split


def applied_split(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup, *owner_sql: str
) -> Split:
    """make_split, applied, then `owner_sql` run logged in as the owner (what its migrations make)."""
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    with s.login(s.owner) as owner:
        for statement in owner_sql:
            owner.execute(statement)
    return s


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)


def _denied(conn: psycopg.Connection[Any], statement: sql.Composable | str, match: str) -> None:
    """The statement fails with SQLSTATE 42501 and the server's message contains `match`."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=match):
        conn.execute(statement)


def _verifier(conn: psycopg.Connection[Any], role: str) -> str | None:
    row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    return None if row is None else row[0]


# --- the post's "let's test it", logged in as each role ------------------------------------------------


def test_apply_then_each_role_can_do_exactly_its_part(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    result = split.apply()
    assert "does not exist yet" not in result.stderr, result.stderr
    verifiers = {r: _verifier(admin_conn, r) for r in split.passwords}
    assert all(v and v.startswith("SCRAM-SHA-256$") for v in verifiers.values()), verifiers

    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE scratch (id int)")
        owner.execute("ALTER TABLE scratch ADD COLUMN note text")
        owner.execute("DROP TABLE scratch")
        # created after apply, by the owner: default privileges must cover it with no further run
        owner.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        owner.execute("CREATE TABLE tagged (id int GENERATED ALWAYS AS IDENTITY, tag text)")

    with split.login(split.app) as app:
        app.execute("INSERT INTO items (name) VALUES ('a')")  # the serial sequence is usable
        app.execute("INSERT INTO tagged (tag) VALUES ('t')")
        assert app.execute("SELECT name FROM items").fetchall() == [("a",)]
        app.execute("UPDATE items SET name = 'b'")
        app.execute("DELETE FROM items")
        _denied(app, "ALTER TABLE items ADD COLUMN x int", "must be owner")
        _denied(app, "DROP TABLE items", "must be owner")
        _denied(app, "CREATE TABLE nope (id int)", "permission denied for schema")
        _denied(app, "CREATE TEMP TABLE nope (id int)", "permission denied")
        _denied(app, "CREATE SCHEMA nope", "permission denied")
        _denied(app, "TRUNCATE items", "permission denied")

    with split.login(split.readonly) as ro:
        assert ro.execute("SELECT count(*) FROM items").fetchone() == (0,)
        _denied(ro, "INSERT INTO items (name) VALUES ('x')", "permission denied")
        _denied(ro, "DELETE FROM items", "permission denied")
        _denied(ro, "CREATE TABLE nope (id int)", "permission denied for schema")

    # a role outside the policy cannot even connect
    outsider = pg_cleanup.role(unique_name("outsider"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'outsider-pw'").format(sql.Identifier(outsider)))
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(role_conninfo(split.admin_dsn, outsider, "outsider-pw", split.database), connect_timeout=10)

    # idempotence: nothing to do, and the unchanged passwords were not set again
    split.assert_clean()
    again = split.apply()
    assert "already matched" in again.stdout, str(again)
    assert {r: _verifier(admin_conn, r) for r in split.passwords} == verifiers


def test_apply_without_passwords_creates_roles_without_one_and_says_so(
    tmp_path: Path,
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    admin_conn: psycopg.Connection[Any],
) -> None:
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, passwords=False)
    env = {password_env_for(r): None for r in (split.owner, split.app, split.readonly)}
    result = split.cli("apply", "--yes", env=env)
    assert result.exit_code == 0, str(result)
    assert f"{password_env_for(split.app)} is not set" in result.stderr
    assert _verifier(admin_conn, split.app) is None
    # a password set by hand is left alone by later runs
    admin_conn.execute(sql.SQL("ALTER ROLE {} PASSWORD 'by-hand'").format(sql.Identifier(split.app)))
    before = _verifier(admin_conn, split.app)
    result = split.cli("plan", "--exit-code", env=env)
    assert result.exit_code == 0, str(result)
    assert "keeps its current password" in result.stderr
    assert _verifier(admin_conn, split.app) == before


def test_changed_password_is_planned_and_applied(split: Split, admin_conn: psycopg.Connection[Any]) -> None:
    split.apply()
    split.passwords[split.app] = "new-" + secrets.token_hex(6)
    steps = split.plan_json()["steps"]
    assert [(s["action"], s["object"]) for s in steps] == [("set-password", f"role {split.app}")]
    assert split.passwords[split.app] not in json.dumps(steps)
    split.apply()
    split.assert_clean()
    with split.login(split.app) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (split.app,)


# --- convergence: tamper behind the tool's back, plan names it, apply fixes it ---------------------------


def _tampers(s: Split, outsider: str) -> list[tuple[str, list[str], str]]:
    """(description, SQL run as superuser in the database, text the plan must mention)."""
    t = sql.Identifier("public", "items").as_string(None)
    app, owner = sql.Identifier(s.app).as_string(None), sql.Identifier(s.owner).as_string(None)
    db = sql.Identifier(s.database).as_string(None)
    return [
        ("extra privilege", [f"GRANT TRUNCATE ON {t} TO {app}"], "items"),
        ("missing privilege", [f"REVOKE UPDATE ON {t} FROM {app}"], "items"),
        ("grant option", [f"GRANT SELECT ON {t} TO {app} WITH GRANT OPTION"], "items"),
        ("PUBLIC grant", [f"GRANT SELECT ON {t} TO PUBLIC"], "items"),
        (
            "table owned by someone else",
            [
                "CREATE TABLE public.stray (id int)",
                f"ALTER TABLE public.stray OWNER TO {sql.Identifier(outsider).as_string(None)}",
            ],
            "stray",
        ),
        (
            "default privilege removed",
            [f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public REVOKE INSERT ON TABLES FROM {app}"],
            "default privileges",
        ),
        ("CREATE on public for PUBLIC", ["GRANT CREATE ON SCHEMA public TO PUBLIC"], "schema public"),
        ("app member of the owner", [f"GRANT {owner} TO {app}"], s.app),
        (
            "PUBLIC may connect again",
            [f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO PUBLIC"],
            f"database {s.database}",
        ),
    ]


def test_tampering_is_planned_and_converged(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    split.apply()
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
    split.assert_clean()
    outsider = pg_cleanup.role(unique_name("other"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
    with split.admin_db() as db:
        for what, statements, mention in _tampers(split, outsider):
            for statement in statements:
                db.execute(statement)  # type: ignore[call-overload]
            result = split.cli("plan", "--exit-code", "--format", "json")
            assert result.exit_code == 1, f"{what}: {result}"
            steps = result.json()["steps"]
            assert any(mention in s["object"] for s in steps), f"{what}: {json.dumps(steps, indent=1)}"
            assert all(s["allowed"] for s in steps), f"{what}: {steps}"
            text = split.cli("plan").stdout  # not a terminal: a numbered list, the SQL indented below
            assert f"1. {steps[0]['object']} — {steps[0]['reason']}" in text, text
            assert f"\n     {steps[0]['sql']}\n" in text, text
            applied = split.cli("apply", "--yes")
            assert applied.exit_code == 0, f"{what}: {applied}"
            after = split.cli("plan", "--exit-code", "--format", "json")
            assert after.exit_code == 0 and after.json()["steps"] == [], f"{what}: {after}"
    with split.login(split.app) as app:
        app.execute("INSERT INTO items (name) VALUES ('x')")
        app.execute("INSERT INTO stray VALUES (1)")
        _denied(app, "TRUNCATE items", "permission denied")
        _denied(app, "ALTER TABLE stray ADD COLUMN y int", "must be owner")
        _denied(app, sql.SQL("SET ROLE {}").format(sql.Identifier(split.owner)), "permission denied")


# --- a non-superuser admin (CREATEDB + CREATEROLE, like managed services) ---------------------------------


def _managed_admin(admin_conn: psycopg.Connection[Any], split: Split, name: str) -> str:
    password = "adm-" + secrets.token_hex(8)
    admin_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        )
    )
    return role_conninfo(split.admin_dsn, name, password, "postgres")


def _state(conn: psycopg.Connection[Any], split: Split) -> list[Any]:
    """Roles and databases of the split, to prove that a refused apply changed nothing."""
    names = [split.owner, split.app, split.readonly]
    roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1", (names,)).fetchall()
    dbs = conn.execute("SELECT datname, datacl::text FROM pg_database WHERE datname = %s", (split.database,)).fetchall()
    return [roles, dbs]


@pytest.mark.minversion(15)
def test_createrole_createdb_admin_applies_from_scratch(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    dsn = _managed_admin(admin_conn, split, pg_cleanup.role(unique_name("cloudadmin")))
    planned = split.plan_json(dsn=dsn)
    assert planned["unprivileged"] == 0, json.dumps(planned, indent=1)
    split.apply(dsn=dsn)
    split.assert_clean(dsn=dsn)  # passwords checked by logging in: unchanged ones are not set again
    split.assert_clean()  # the superuser's view agrees
    split.passwords[split.readonly] = "changed-" + secrets.token_hex(4)
    steps = split.plan_json(dsn=dsn)["steps"]
    assert [(s["action"], s["role"]) for s in steps] == [("set-password", split.readonly)], steps
    split.apply(dsn=dsn)
    split.assert_clean(dsn=dsn)
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE items (id serial PRIMARY KEY)")
    with split.login(split.app) as app:
        app.execute("INSERT INTO items DEFAULT VALUES")
        _denied(app, "DROP TABLE items", "must be owner")
        _denied(app, "CREATE TABLE nope (id int)", "permission denied for schema")


@pytest.mark.maxversion(14)
def test_createrole_admin_on_14_is_told_public_needs_its_owner(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    dsn = _managed_admin(admin_conn, split, pg_cleanup.role(unique_name("cloudadmin")))
    planned = split.plan_json(dsn=dsn)
    blocked = [s for s in planned["steps"] if not s["allowed"]]
    assert blocked and all(s["object"] == "schema public" for s in blocked), json.dumps(planned, indent=1)
    assert all("owner of schema public" in s["needs"] for s in blocked), json.dumps(blocked, indent=1)
    before = _state(admin_conn, split)
    refused = split.cli("apply", "--yes", dsn=dsn)
    assert refused.exit_code == 2, str(refused)
    assert refused.stderr.startswith("error: ") and "--skip-unprivileged" in refused.stderr, str(refused)
    assert _state(admin_conn, split) == before
    done = split.apply("--skip-unprivileged", dsn=dsn)
    assert 'REVOKE CREATE ON SCHEMA "public" FROM PUBLIC' in done.stdout, str(done)
    # everything else converged; only the step needing the owner of public remains
    remaining = split.plan_json(dsn=dsn)["steps"]
    assert remaining and all(not s["allowed"] for s in remaining), remaining
    with split.login(split.app) as app:
        _denied(app, "CREATE TEMP TABLE nope (id int)", "permission denied")
    # the printed SQL, run by the owner of public, closes the gap
    with split.admin_db() as db:
        for step in remaining:
            db.execute(step["sql"])
    split.assert_clean(dsn=dsn)


def test_plan_allowed_predictions_hold_for_a_plain_role(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    name = pg_cleanup.role(unique_name("plain"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'plain-pw'").format(sql.Identifier(name)))
    dsn = role_conninfo(split.admin_dsn, name, "plain-pw", "postgres")
    planned = split.plan_json(dsn=dsn)
    assert planned["unprivileged"] > 0 and any(
        s["action"] == "create-role" and not s["allowed"] for s in planned["steps"]
    )
    before = _state(admin_conn, split)
    result = split.cli("apply", "--yes", dsn=dsn)
    assert result.exit_code == 2, str(result)
    assert result.stderr.startswith("error: ") and "superuser or CREATEROLE" in result.stderr, str(result)
    assert "Traceback" not in result.stderr
    assert _state(admin_conn, split) == before


# --- bad input: one clear line, exit 2, nothing changed ----------------------------------------------------


def _assert_one_error(result: CliResult, *needles: str) -> None:
    assert result.exit_code == 2, str(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), str(result)
    assert all(not line.startswith("error:") for line in lines[1:]), str(result)
    assert all(line.startswith("hint: ") for line in lines[1:]), str(result)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], str(result)


def test_connection_failures_are_one_line(
    split: Split, pg_server: LocalServer, admin_conn: psycopg.Connection[Any]
) -> None:
    wrong = role_conninfo(split.admin_dsn, pg_server.superuser, "not-the-password", "postgres")
    result = split.cli("plan", dsn=wrong)
    _assert_one_error(result, "password authentication failed")
    assert "not-the-password" not in result.stderr
    closed = "host=127.0.0.1 port=1 user=x dbname=postgres connect_timeout=3"
    _assert_one_error(split.cli("apply", "--yes", dsn=closed), "cannot open")
    missing = db_conninfo(split.admin_dsn, split.database + "_nowhere")
    _assert_one_error(split.cli("plan", dsn=missing), "does not exist")
    _assert_one_error(split.cli("apply", dsn=split.admin_dsn), "needs confirmation")
    assert _state(admin_conn, split) == [[], []]


def test_bad_policy_files_change_nothing(split: Split, admin_conn: psycopg.Connection[Any]) -> None:
    good = split.path.read_text()
    split.path.write_text(good.replace("[owner]", "[owner\n"))
    _assert_one_error(split.cli("apply", "--yes"), "invalid TOML", f"{split.path}:")
    split.path.write_text(good.replace("[owner]", "[owner]\ncolour = 'blue'"))
    line = good.splitlines().index("[owner]") + 2
    _assert_one_error(split.cli("apply", "--yes"), f"{split.path}:{line}", "owner.colour", "unknown key")
    split.path.write_text(good.replace(f'name = "{split.app}"', f'name = "{"x" * 64}"'))
    _assert_one_error(split.cli("apply", "--yes"), "access[0].name", "64 bytes")
    assert _state(admin_conn, split) == [[], []]


# --- names that need quoting ------------------------------------------------------------------------


def test_names_with_quotes_spaces_capitals_and_unicode(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    tag = unique_name("")
    split = make_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        database=f'Bäcker "DB" {tag}',
        owner=f"Owner O'Brien {tag}",
        app=f'app "Ünïcode" {tag}',
        readonly=f"Read Only {tag}",
        schemas=("Schéma Ü", "public"),
    )
    split.apply()
    split.assert_clean()
    schema = sql.Identifier("Schéma Ü")
    table = sql.Identifier("Schéma Ü", 'Tab "le"')
    with split.login(split.owner) as owner:
        owner.execute(sql.SQL("CREATE TABLE {} (id serial, val text)").format(table))
    with split.login(split.app) as app:
        app.execute(sql.SQL("INSERT INTO {} (val) VALUES ('x')").format(table))
        _denied(app, sql.SQL("DROP TABLE {}").format(table), "must be owner")
        _denied(app, sql.SQL("CREATE TABLE {}.t (id int)").format(schema), "permission denied for schema")
    with split.login(split.readonly) as ro:
        assert ro.execute(sql.SQL("SELECT val FROM {}").format(table)).fetchall() == [("x",)]
    split.assert_clean()


# --- passwords stay secret --------------------------------------------------------------------------


def test_clear_text_passwords_reach_no_log_and_no_output(
    split: Split, pg_server: LocalServer, admin_conn: psycopg.Connection[Any]
) -> None:
    admin_conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    outputs = [split.cli("plan"), split.cli("plan", "--format", "sql"), split.cli("plan", "--format", "json")]
    outputs.append(split.apply())
    split.passwords[split.app] = "rotated-" + secrets.token_hex(6)
    outputs += [split.cli("plan", "--format", "sql"), split.apply("--format", "json")]
    statements = " ".join(r[0] for r in admin_conn.execute("SELECT query FROM pg_stat_statements"))
    log = pg_server.read_log()
    for role, password in split.passwords.items():
        assert password not in log, f"password of {role} in the server log"
        assert password not in statements, f"password of {role} in pg_stat_statements"
        for out in outputs:
            assert password not in out.stdout + out.stderr, str(out)
        verifier = _verifier(admin_conn, role)
        assert verifier is not None and verifier.startswith("SCRAM-SHA-256$4096:")
        with split.login(role) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)


# --- brown-field and big schemas -----------------------------------------------------------------------------


BROWNFIELD = """
CREATE TABLE orders (id serial, placed date NOT NULL) PARTITION BY RANGE (placed);
CREATE TABLE orders_2024 PARTITION OF orders FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
CREATE VIEW customer_names AS SELECT name FROM customers;
CREATE MATERIALIZED VIEW customer_count AS SELECT count(*) AS n FROM customers;
CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE sql AS 'SELECT i + 1';
CREATE PROCEDURE touch() LANGUAGE sql AS 'SELECT 1';
"""


def test_brownfield_database_gets_what_it_lacks_and_loses_the_rest(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    ext = next(
        (
            e
            for e in ("pg_trgm", "hstore", "citext")
            if admin_conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (e,)).fetchone()
        ),
        None,
    )
    if ext is None:
        pytest.skip("no contrib extension (pg_trgm, hstore, citext) in these binaries")
    # the owner and the database exist before pgwarden; the owner created everything, granted nothing
    owner, app = sql.Identifier(split.owner), sql.Identifier(split.app)
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(owner))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(app))
    admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(split.database), owner))
    bi = pg_cleanup.role(unique_name("bi"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(bi)))
    with split.admin_db() as db:
        db.execute(sql.SQL("CREATE EXTENSION {} SCHEMA public").format(sql.Identifier(ext)))
        ext_acl = db.execute(
            "SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND oid IN (SELECT objid FROM pg_depend WHERE deptype = 'e') ORDER BY 1"
        ).fetchall()
        ext_procs = db.execute(
            "SELECT count(*), string_agg(proacl::text, ',') FROM pg_proc p JOIN pg_depend d "
            "ON d.objid = p.oid AND d.deptype = 'e' WHERE pronamespace = 'public'::regnamespace"
        ).fetchone()
        db.execute(sql.SQL("SET ROLE {}").format(owner))
        db.execute(BROWNFIELD)
        db.execute(sql.SQL("GRANT ALL ON customers TO {}").format(app))  # too much
        db.execute(sql.SQL("GRANT SELECT ON customers TO {}").format(sql.Identifier(bi)))  # not in the policy
        db.execute("RESET ROLE")
    planned = split.plan_json()
    objects = " ".join(s["object"] for s in planned["steps"])
    assert "customers" in objects and any(s["destructive"] for s in planned["steps"]), objects
    split.apply()
    split.assert_clean()
    with split.admin_db() as db:
        assert (
            db.execute(
                "SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND oid IN (SELECT objid FROM pg_depend WHERE deptype = 'e') ORDER BY 1"
            ).fetchall()
            == ext_acl
        )
        assert (
            db.execute(
                "SELECT count(*), string_agg(proacl::text, ',') FROM pg_proc p JOIN pg_depend d "
                "ON d.objid = p.oid AND d.deptype = 'e' WHERE pronamespace = 'public'::regnamespace"
            ).fetchone()
            == ext_procs
        )
        grantees = db.execute(
            "SELECT DISTINCT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE c.relname = 'customers' AND c.relnamespace = 'public'::regnamespace"
        ).fetchall()
    assert sql.Identifier(bi).as_string(None) not in {g[0] for g in grantees}
    with split.login(split.app) as conn:
        conn.execute("INSERT INTO orders (placed) VALUES ('2024-05-01'), ('2025-05-01')")
        assert conn.execute("SELECT count(*) FROM orders_2024").fetchone() == (1,)
        conn.execute("INSERT INTO customers (name) VALUES ('c')")
        assert conn.execute("SELECT name FROM customer_names").fetchall() == [("c",)]
        conn.execute("SELECT n FROM customer_count")
        assert conn.execute("SELECT add_one(1)").fetchone() == (2,)
        conn.execute("CALL touch()")
        _denied(conn, "TRUNCATE customers", "permission denied")
        # 17+ checks MAINTAIN, older versions ownership: either way SQLSTATE 42501
        _denied(conn, "REFRESH MATERIALIZED VIEW customer_count", "must be owner|permission denied")
    with split.login(split.readonly) as conn:
        _denied(conn, "INSERT INTO customers (name) VALUES ('x')", "permission denied")
        # the hardening: functions are not executable by PUBLIC, only by the access roles
    outsider = pg_cleanup.role(unique_name("fn"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
    with split.admin_db() as db:
        row = db.execute("SELECT has_function_privilege(%s, 'public.add_one(int)', 'EXECUTE')", (outsider,)).fetchone()
        assert row == (False,)


def test_big_schema_uses_one_statement_per_kind(split: Split, admin_conn: psycopg.Connection[Any]) -> None:
    owner = sql.Identifier(split.owner)
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(owner))
    admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(split.database), owner))
    with split.admin_db() as db:
        db.execute(sql.SQL("SET ROLE {}").format(owner))
        db.execute(
            "DO $$ BEGIN FOR i IN 1..320 LOOP EXECUTE format('CREATE TABLE t%s (id serial)', i); END LOOP; END $$"
        )
    steps = split.plan_json()["steps"]
    table_grants = [s for s in steps if s["action"] == "grant" and "TABLE" in s["sql"] and "DEFAULT" not in s["sql"]]
    assert table_grants and all("ON ALL TABLES IN SCHEMA" in s["sql"] for s in table_grants), table_grants
    assert {s["count"] for s in table_grants} == {320}
    assert len(steps) < 40, [s["sql"] for s in steps]
    split.apply()
    split.assert_clean()
    with split.login(split.app) as conn:
        conn.execute("INSERT INTO t320 DEFAULT VALUES")
