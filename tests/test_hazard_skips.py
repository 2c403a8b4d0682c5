"""The hazard reads check leaves out (server.sql: owning, rls, definers) are exactly those that would return no row."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from helpers import db_conninfo
from pgwarden.fetch import fetch
from pgwarden.rows import FunctionRow, OwnedRow, RlsRow
from pgwarden.snapshot import ServerInfo

#: One object of each kind hazard_owned.sql reads, made in schema `s`, owned by role `r`.
OWNED_KINDS = {
    "table": "CREATE TABLE s.t (id int); ALTER TABLE s.t OWNER TO r",
    "view": "CREATE VIEW s.v AS SELECT 1 AS x; ALTER VIEW s.v OWNER TO r",
    "sequence": "CREATE SEQUENCE s.q; ALTER SEQUENCE s.q OWNER TO r",
    "function": "CREATE FUNCTION s.f() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION s.f() OWNER TO r",
    "composite type": "CREATE TYPE s.c AS (a int); ALTER TYPE s.c OWNER TO r",
    "enum": "CREATE TYPE s.e AS ENUM ('a'); ALTER TYPE s.e OWNER TO r",
    "domain": "CREATE DOMAIN s.d AS int; ALTER DOMAIN s.d OWNER TO r",
    "range": "CREATE TYPE s.rg AS RANGE (subtype = int8); ALTER TYPE s.rg OWNER TO r",
    "schema": "CREATE SCHEMA s2 AUTHORIZATION r",
    "collation": 'CREATE COLLATION s.co FROM "C"; ALTER COLLATION s.co OWNER TO r',
    "operator": "CREATE OPERATOR s.=== (leftarg = int, rightarg = int, function = int4eq); "
    "ALTER OPERATOR s.=== (int, int) OWNER TO r",
    "text search dictionary": "CREATE TEXT SEARCH DICTIONARY s.di (template = simple); "
    "ALTER TEXT SEARCH DICTIONARY s.di OWNER TO r",
    "statistics": "CREATE TABLE s.st (a int, b int); CREATE STATISTICS s.sx ON a, b FROM s.st; "
    "ALTER STATISTICS s.sx OWNER TO r",
    "large object": "",  # made in the test: ALTER LARGE OBJECT needs its oid
    "publication": "CREATE PUBLICATION pu; ALTER PUBLICATION pu OWNER TO r",
}


def _run(conn: psycopg.Connection[Any], statements: str, role: str) -> None:
    for statement in statements.split("; "):
        conn.execute(
            statement.replace("OWNER TO r", f'OWNER TO "{role}"').replace("AUTHORIZATION r", f'AUTHORIZATION "{role}"')
        )


def _server(conn: psycopg.Connection[Any], roles: list[str], schemas: list[str]) -> ServerInfo:
    return fetch(conn, "server", ServerInfo, {"settings": [], "owning": roles, "schemas": schemas})[0]


@pytest.fixture
def database(admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any) -> str:
    name = pg_cleanup.database(unique_name("skip"))
    admin_conn.execute(f'CREATE DATABASE "{name}"')
    return name


@pytest.mark.parametrize("kind", sorted(OWNED_KINDS))
def test_a_role_that_owns_one_object_of_any_kind_is_asked_about(
    kind: str, admin_dsn: str, admin_conn: Any, database: str, unique_name: Any, pg_cleanup: Any
) -> None:
    role = pg_cleanup.role(unique_name("own"))
    admin_conn.execute(f'CREATE ROLE "{role}"')
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA s")
        if kind == "large object":
            oid = conn.execute("SELECT lo_create(0)").fetchone()[0]
            conn.execute(f'ALTER LARGE OBJECT {int(oid)} OWNER TO "{role}"')
        else:
            _run(conn, OWNED_KINDS[kind], role)
        server = _server(conn, [role], [])
        oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]
        owned = fetch(conn, "hazard_owned", OwnedRow, {"roles": [oid]})
        if kind == "publication":
            conn.execute("DROP PUBLICATION pu")
    assert owned, kind  # hazard_owned.sql finds it ...
    assert list(server.owning) == [oid], kind  # ... so check asks for it


def test_a_role_that_owns_nothing_here_is_left_out_and_its_read_would_return_nothing(
    admin_dsn: str, admin_conn: Any, database: str, unique_name: Any, pg_cleanup: Any
) -> None:
    idle, elsewhere = pg_cleanup.role(unique_name("idle")), pg_cleanup.role(unique_name("else"))
    admin_conn.execute(f'CREATE ROLE "{idle}"; CREATE ROLE "{elsewhere}"')
    other = pg_cleanup.database(unique_name("other"))
    admin_conn.execute(f'CREATE DATABASE "{other}"')
    with psycopg.connect(db_conninfo(admin_dsn, other), autocommit=True) as conn:
        conn.execute(f'CREATE TABLE t (id int); ALTER TABLE t OWNER TO "{elsewhere}"')  # another database's
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        server = _server(conn, [idle, elsewhere, "no_such_role"], [])
        oids = [r[0] for r in conn.execute("SELECT oid FROM pg_roles WHERE rolname IN (%s, %s)", (idle, elsewhere))]
        assert fetch(conn, "hazard_owned", OwnedRow, {"roles": oids}) == []
    assert list(server.owning) == []
    # a database is a shared object: owning one counts in every database
    admin_conn.execute(f'ALTER DATABASE "{other}" OWNER TO "{elsewhere}"')
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        assert list(_server(conn, [elsewhere], []).owning) != []


def test_row_security_and_security_definer_routines_are_seen_where_their_reads_find_them(
    admin_dsn: str, database: str
) -> None:
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app; CREATE SCHEMA other")
        nsp = [conn.execute("SELECT 'app'::regnamespace::oid").fetchone()[0]]
        before = _server(conn, [], ["app"])
        assert not before.rls and not before.definers
        assert fetch(conn, "hazard_rls", RlsRow, {"schemas": nsp}) == []
        assert fetch(conn, "hazard_functions", FunctionRow, {"roles": [], "schemas": nsp}) == []
        # row security on a table of another schema: a view in app over it is what hazard_rls finds
        conn.execute("CREATE TABLE other.t (id int); ALTER TABLE other.t ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE VIEW app.v AS SELECT * FROM other.t")
        conn.execute("CREATE FUNCTION other.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        middle = _server(conn, [], ["app"])
        assert middle.rls and not middle.definers  # a definer outside the managed schemas: not read
        assert fetch(conn, "hazard_rls", RlsRow, {"schemas": nsp}) != []
        conn.execute("CREATE FUNCTION app.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        assert _server(conn, [], ["app"]).definers
        assert fetch(conn, "hazard_functions", FunctionRow, {"roles": [], "schemas": nsp}) != []
