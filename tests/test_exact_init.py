"""init --from-database is exact on the shapes issue 20 found it wrong on, on real servers.

Each case is a database made by hand. Owned by its owner role, `plan --exit-code` exits 0 right
after init; owned by the superuser (the common case: no owner role yet, `--owner` names one to
create), the plan takes no privilege from any role (its only revokes are the split's CREATE), and
once applied, every role's effective privileges (has_*_privilege, asked of the server) are what
they were, CREATE aside."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli
from pgwarden.policy import load_policy

#: Roles every case has: an app login, a BI group, an ETL login, a person.
ROLES = ("app", "bi", "etl", "alice")

_COMMON = [
    "CREATE SCHEMA app",
    "CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric)",
    "CREATE TABLE app.customers (id serial PRIMARY KEY, name text, api_key text)",
    "CREATE TABLE app.notes (body text)",
    "CREATE FUNCTION app.total() RETURNS numeric LANGUAGE sql AS 'SELECT sum(total) FROM app.orders'",
    "CREATE FUNCTION app.wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM app.notes'",
    "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA app FROM PUBLIC",
    "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
    "GRANT CONNECT ON DATABASE {db} TO {app}, {bi}, {etl}, {alice}",
    "GRANT USAGE ON SCHEMA app TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO {app}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO {app}",
    "GRANT EXECUTE ON FUNCTION app.total() TO {app}",
]

#: name -> the statements that make the shape issue 20 reported as not exact.
CASES: dict[str, list[str]] = {
    # a BI group with SELECT on one table and on some columns of another; an ETL login with USAGE
    # on a schema with nothing in it; default privileges for tables, not for sequences
    "bi-columns-etl-usage-table-defaults": [
        "CREATE SCHEMA staging",
        "GRANT USAGE ON SCHEMA app TO {bi}",
        "GRANT SELECT ON app.orders TO {bi}",
        "GRANT SELECT (id, name) ON app.customers TO {bi}",
        "GRANT USAGE ON SCHEMA staging TO {etl}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
    ],
    # grants on listed tables, and none on their sequences
    "listed-tables-not-their-sequences": [
        "GRANT USAGE ON SCHEMA app TO {bi}",
        "GRANT SELECT ON app.orders, app.customers TO {bi}",
    ],
    # a custom profile (TRUNCATE) with default privileges on tables only: no EXECUTE to gain
    "custom-profile-no-execute": [
        "GRANT USAGE ON SCHEMA app TO {etl}",
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA app TO {etl}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO {etl}",
    ],
    # a person's direct grant on one table: never schema-wide, never default privileges
    "person-one-table": [
        "GRANT USAGE ON SCHEMA app TO {alice}",
        "GRANT SELECT ON app.notes TO {alice}",
    ],
    # found by the property test (notes/exactness-failures.md E2, E4): a column grant without
    # USAGE on the schema; TEMPORARY with CONNECT, and TEMPORARY without it
    "no-usage-and-temporary": [
        "GRANT INSERT (total) ON app.orders TO {bi}",
        "GRANT TEMPORARY ON DATABASE {db} TO {etl}",
        "GRANT USAGE ON SCHEMA app TO {etl}",
        "GRANT SELECT ON app.notes TO {etl}",
        "REVOKE CONNECT ON DATABASE {db} FROM {alice}",
        "GRANT TEMPORARY ON DATABASE {db} TO {alice}",
        "GRANT SELECT ON app.notes TO {alice}",
    ],
    # E7: a role with grants of its own, also a member of another (the app reads what bi reads)
    "access-role-in-access-role": [
        "GRANT USAGE ON SCHEMA app TO {bi}",
        "GRANT SELECT ON app.notes TO {bi}",
        "ADMIN: GRANT {bi} TO {app}",  # run by the admin: memberships are the cluster's
    ],
    # E5: a person in a group WITH ADMIN OPTION
    "member-with-admin": [
        "GRANT USAGE ON SCHEMA app TO {bi}",
        "GRANT SELECT ON app.notes TO {bi}",
        "ADMIN: GRANT {bi} TO {alice} WITH ADMIN OPTION",
        "REVOKE CONNECT ON DATABASE {db} FROM {alice}",  # a person's own CONNECT: not said (not yet)
    ],
    # E1: the owner's default privileges in every schema (no IN SCHEMA) for a role and for PUBLIC
    "global-defaults": [
        "ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {etl}",
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON SEQUENCES TO {bi}",  # bi holds nothing else
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
    ],
    # E6: grants to PUBLIC on a table, a sequence and a column
    "public-grants": [
        "CREATE TABLE app.countries (code text)",
        "GRANT SELECT ON app.countries TO PUBLIC",
        "GRANT USAGE ON SEQUENCE app.orders_id_seq TO PUBLIC",
        "GRANT SELECT (name) ON app.customers TO PUBLIC",
        "GRANT USAGE ON SCHEMA app TO {bi}",
    ],
    # EXECUTE on one routine of two, and a group holding only its USAGE and one sequence
    "listed-routine-and-sequence": [
        "GRANT USAGE ON SCHEMA app TO {bi}",
        "GRANT EXECUTE ON FUNCTION app.wipe() TO {bi}",
        "GRANT USAGE ON SEQUENCE app.orders_id_seq TO {bi}",
    ],
}


@dataclass
class Made:
    db: str
    roles: dict[str, str]
    owner: str  # the owner the policy names (created by the policy when the superuser owns all)
    dsn: str


def _make(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    name: Callable[[str], str],
    cleanup: PgCleanup,
    case: str,
    by_owner: bool,
) -> Made:
    roles = {r: cleanup.role(name(r)) for r in ROLES}
    owner = cleanup.role(name("owner"))
    for r, n in roles.items():
        login = sql.SQL("NOLOGIN" if r == "bi" else "LOGIN")
        admin_conn.execute(sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(n), login))
    if by_owner:
        admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
    db = cleanup.database(name("db"))
    owned = sql.SQL(" OWNER {}").format(sql.Identifier(owner)) if by_owner else sql.SQL("")
    admin_conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(db), owned))
    q = {r: sql.Identifier(n) for r, n in roles.items()}
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as c:
        c.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # 14's default: the split takes it anyway
        c.execute("REVOKE ALL ON DATABASE {} FROM PUBLIC".replace("{}", sql.Identifier(db).as_string(c)))
        for stmt in CASES[case]:
            if stmt.startswith("ADMIN: "):
                c.execute(sql.SQL(stmt.removeprefix("ADMIN: ")).format(**q))
        if by_owner:
            c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
        for stmt in _COMMON + [s for s in CASES[case] if not s.startswith("ADMIN: ")]:
            c.execute(sql.SQL(stmt).format(**q, db=sql.Identifier(db)))
    return Made(db, roles, owner, admin_dsn)


def effective(conninfo: str, roles: list[str]) -> set[tuple[str, ...]]:
    """Every (role, object, privilege) the server says each role has in schema app, the database
    and its schemas, columns included; CREATE is left out (the split takes it)."""
    query = """
    WITH r AS (SELECT unnest(%(roles)s::text[]) AS role)
    SELECT r.role, 'table', c.oid::regclass::text, p
      FROM r, pg_class c, unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
     WHERE c.relnamespace = 'app'::regnamespace AND c.relkind IN ('r', 'v') AND has_table_privilege(r.role, c.oid, p)
    UNION ALL
    SELECT r.role, 'sequence', c.oid::regclass::text, p
      FROM r, pg_class c, unnest(ARRAY['USAGE','SELECT','UPDATE']) p
     WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'S' AND has_sequence_privilege(r.role, c.oid, p)
    UNION ALL
    SELECT r.role, 'column', a.attrelid::regclass::text || '.' || a.attname, p
      FROM r, pg_attribute a JOIN pg_class c ON c.oid = a.attrelid, unnest(ARRAY['SELECT','INSERT','UPDATE']) p
     WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
       AND has_column_privilege(r.role, a.attrelid, a.attnum, p)
    UNION ALL
    SELECT r.role, 'routine', f.oid::regprocedure::text, 'EXECUTE'
      FROM r, pg_proc f WHERE f.pronamespace = 'app'::regnamespace AND has_function_privilege(r.role, f.oid, 'EXECUTE')
    UNION ALL
    SELECT r.role, 'schema', n.nspname, 'USAGE'
      FROM r, pg_namespace n
     WHERE n.nspname NOT LIKE 'pg\\_%%' AND has_schema_privilege(r.role, n.oid, 'USAGE')
    UNION ALL
    SELECT r.role, 'role', g.role, p
      FROM r, r g, unnest(ARRAY['MEMBER', 'USAGE', 'MEMBER WITH ADMIN OPTION']) p
     WHERE r.role <> g.role AND pg_has_role(r.role, g.role, p)
    UNION ALL
    SELECT r.role, 'database', current_database(), p
      FROM r, unnest(ARRAY['CONNECT','TEMPORARY']) p WHERE has_database_privilege(r.role, current_database(), p)
    """
    with psycopg.connect(conninfo, autocommit=True) as c:
        return {tuple(row) for row in c.execute(query, {"roles": roles}).fetchall()}


def _init(m: Made, path: Path, *extra: str) -> str:
    result = run_cli(["init", "--from-database", m.db, "--dsn", m.dsn, "-o", str(path), *extra])
    assert result.exit_code == 0, str(result)
    load_policy(path)  # init never writes a file it would refuse
    return result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_right_after_init_an_owner_owned_database_plans_nothing(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
    case: str,
) -> None:
    m = _make(admin_conn, admin_dsn, unique_name, pg_cleanup, case, by_owner=True)
    path = tmp_path / "policy.toml"
    _init(m, path)
    plan = run_cli(["plan", "-c", str(path), "--dsn", m.dsn, "--exit-code"])
    assert plan.exit_code == 0, path.read_text() + str(plan)
    # probe reads what each role may do from the same keys: acting as each, nothing unexpected
    probe = run_cli(["probe", "-c", str(path), "--dsn", m.dsn])
    assert probe.exit_code == 0, path.read_text() + str(probe)


def _takes(step: dict[str, Any], new_owner: str) -> bool:
    """Whether a step takes a privilege from a role (the split's CREATE aside; the default
    privileges of the owner the plan creates concern objects that do not exist yet)."""
    text = step["sql"]
    future = text.startswith(f'ALTER DEFAULT PRIVILEGES FOR ROLE "{new_owner}"')
    return "REVOKE" in text and not text.startswith("REVOKE CREATE ON") and not future


@pytest.mark.parametrize("case", sorted(CASES))
def test_on_a_superuser_owned_database_the_plan_takes_nothing_and_apply_keeps_every_privilege(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
    case: str,
) -> None:
    m = _make(admin_conn, admin_dsn, unique_name, pg_cleanup, case, by_owner=False)
    names = list(m.roles.values())
    before = effective(db_conninfo(m.dsn, m.db), names)
    path = tmp_path / "policy.toml"
    stderr = _init(m, path, "--owner", m.owner)
    assert "docs/adopting.md" in stderr and f"the owner {m.owner} is still to be made" in stderr, stderr
    plan = run_cli(["plan", "-c", str(path), "--dsn", m.dsn, "--format", "json"])
    steps = json.loads(plan.stdout)["steps"]
    assert [s["sql"] for s in steps if _takes(s, m.owner)] == [], path.read_text()
    assert any(s["sql"].startswith("CREATE ROLE") for s in steps)
    applied = run_cli(["apply", "-c", str(path), "--dsn", m.dsn, "--yes"])
    assert applied.exit_code == 0, str(applied)
    assert effective(db_conninfo(m.dsn, m.db), names) == before
    again = run_cli(["plan", "-c", str(path), "--dsn", m.dsn, "--exit-code"])
    assert again.exit_code == 0, str(again)


def _listed(lines: list[str], columns: dict[str, list[str]]) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """--suggest's `+`/`-` lines as effective privileges (a table's column privileges reach its columns)."""
    plus: set[tuple[str, ...]] = set()
    minus: set[tuple[str, ...]] = set()
    for line in lines:
        sign, role, privilege, _on, kind, name = line.split(" ", 5)
        out = plus if sign == "+" else minus
        out.add((role, kind, name, privilege))
        if kind == "table" and privilege in ("SELECT", "INSERT", "UPDATE"):
            out |= {(role, "column", f"{name}.{c}", privilege) for c in columns.get(name, [])}
    return plus, minus


def test_suggest_changes_exactly_what_it_lists_and_never_an_excepted_column(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    m = _make(admin_conn, admin_dsn, unique_name, pg_cleanup, "bi-columns-etl-usage-table-defaults", by_owner=True)
    names = list(m.roles.values())
    conninfo = db_conninfo(m.dsn, m.db)
    before = effective(conninfo, names)
    path = tmp_path / "suggested.toml"
    result = run_cli(["init", "--from-database", m.db, "--dsn", m.dsn, "--suggest", "-o", str(path)])
    assert result.exit_code == 0, str(result)
    lines = [line.strip() for line in result.stderr.splitlines() if line.startswith(("  + ", "  - "))]
    assert lines, result.stderr  # bi's one table becomes its schema: the suggestion widens something
    assert not any("api_key" in line for line in lines), result.stderr  # never the column bi lacks
    with psycopg.connect(conninfo, autocommit=True) as c:
        rows = c.execute(
            "SELECT c.oid::regclass::text, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
        ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    applied = run_cli(["apply", "-c", str(path), "--dsn", m.dsn, "--yes"])
    assert applied.exit_code == 0, str(applied)
    plus, minus = _listed(lines, columns)
    after = effective(conninfo, names)
    assert after - before == plus - before and before - after == minus & before, lines
