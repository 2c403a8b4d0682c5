"""Hazard reads made cheaper: what a role owns through pg_shdepend, and the reads left out where they find nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from helpers import db_conninfo
from pgwarden.fetch import fetch
from pgwarden.rows import FunctionRow, OwnedRow, RlsRow
from pgwarden.snapshot import ServerInfo

#: One object of each kind hazard_owned.sql reads, made in schema `s` and owned by role `r` (a superuser:
#: some kinds need one as their owner; pg_shdepend records a superuser's objects as any role's).
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
    "conversion": "CREATE CONVERSION s.cv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8; "
    "ALTER CONVERSION s.cv OWNER TO r",
    "operator": "CREATE OPERATOR s.=== (leftarg = int, rightarg = int, function = int4eq); "
    "ALTER OPERATOR s.=== (int, int) OWNER TO r",
    "operator family and class": "CREATE OPERATOR CLASS s.oc FOR TYPE int USING btree AS OPERATOR 3 =, "
    "FUNCTION 1 btint4cmp(int, int); ALTER OPERATOR CLASS s.oc USING btree OWNER TO r; "
    "ALTER OPERATOR FAMILY s.oc USING btree OWNER TO r",
    "text search configuration": "CREATE TEXT SEARCH CONFIGURATION s.tc (copy = simple); "
    "ALTER TEXT SEARCH CONFIGURATION s.tc OWNER TO r",
    "text search dictionary": "CREATE TEXT SEARCH DICTIONARY s.di (template = simple); "
    "ALTER TEXT SEARCH DICTIONARY s.di OWNER TO r",
    "statistics": "CREATE TABLE s.st (a int, b int); CREATE STATISTICS s.sx ON a, b FROM s.st; "
    "ALTER STATISTICS s.sx OWNER TO r",
    "language": "CREATE FUNCTION s.h() RETURNS language_handler LANGUAGE c AS '$libdir/plpgsql', "
    "'plpgsql_call_handler'; CREATE LANGUAGE lx HANDLER s.h; ALTER LANGUAGE lx OWNER TO r",
    "foreign-data wrapper and server": "CREATE FOREIGN DATA WRAPPER w; ALTER FOREIGN DATA WRAPPER w OWNER TO r; "
    "CREATE SERVER sv FOREIGN DATA WRAPPER w; ALTER SERVER sv OWNER TO r",
    "event trigger": "CREATE FUNCTION s.et() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'; "
    "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION s.et(); ALTER EVENT TRIGGER et OWNER TO r",
    "publication": "CREATE PUBLICATION pu; ALTER PUBLICATION pu OWNER TO r",
    "extension": "SET ROLE r; CREATE EXTENSION pg_stat_statements SCHEMA s; RESET ROLE",
    "subscription": "CREATE SUBSCRIPTION su CONNECTION 'dbname=none' PUBLICATION p "
    "WITH (connect = false, slot_name = NONE); ALTER SUBSCRIPTION su OWNER TO r",
    "large object": "",  # made in the test: ALTER LARGE OBJECT needs its oid
    "database": "",  # the test's database itself
}


def _owned(conn: psycopg.Connection[Any], query: str, roles: list[int]) -> list[OwnedRow]:
    return fetch(conn, query, OwnedRow, {"roles": roles})


def _server(conn: psycopg.Connection[Any], schemas: list[str]) -> ServerInfo:
    return fetch(conn, "server", ServerInfo, {"settings": [], "schemas": schemas})[0]


@pytest.fixture
def database(admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any) -> str:
    name = pg_cleanup.database(unique_name("skip"))
    admin_conn.execute(f'CREATE DATABASE "{name}"')
    return name


@pytest.mark.parametrize("kind", sorted(OWNED_KINDS))
def test_what_a_role_owns_is_read_from_pg_shdepend_as_from_every_catalog(
    kind: str, admin_dsn: str, admin_conn: Any, database: str, unique_name: Any, pg_cleanup: Any
) -> None:
    role = pg_cleanup.role(unique_name("own"))
    admin_conn.execute(f'CREATE ROLE "{role}" SUPERUSER')
    if kind == "database":
        admin_conn.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA s")
        if kind == "large object":
            lo = conn.execute("SELECT lo_create(0)").fetchone()[0]
            conn.execute(f'ALTER LARGE OBJECT {int(lo)} OWNER TO "{role}"')
        for statement in OWNED_KINDS[kind].split("; ") if OWNED_KINDS[kind] else []:
            quoted = f'"{role}"'
            conn.execute(
                statement.replace("OWNER TO r", f"OWNER TO {quoted}")
                .replace("AUTHORIZATION r", f"AUTHORIZATION {quoted}")
                .replace("SET ROLE r", f"SET ROLE {quoted}")
            )
        try:
            oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]
            owned, scanned = _owned(conn, "hazard_owned", [oid]), _owned(conn, "hazard_owned_scan", [oid])
        finally:
            if kind == "subscription":  # a database with a subscription cannot be dropped
                conn.execute("DROP SUBSCRIPTION su")
    assert scanned, kind  # every catalog's owner column finds it ...
    assert owned == scanned, kind  # ... and so does the read through pg_shdepend, row for row


def test_a_role_that_owns_nothing_here_owns_nothing_either_way(
    admin_dsn: str, admin_conn: Any, database: str, unique_name: Any, pg_cleanup: Any
) -> None:
    role = pg_cleanup.role(unique_name("else"))
    admin_conn.execute(f'CREATE ROLE "{role}"')
    other = pg_cleanup.database(unique_name("other"))
    admin_conn.execute(f'CREATE DATABASE "{other}" OWNER "{role}"')  # another database, and objects there
    with psycopg.connect(db_conninfo(admin_dsn, other), autocommit=True) as conn:
        conn.execute(f'CREATE TABLE t (id int); ALTER TABLE t OWNER TO "{role}"; CREATE PUBLICATION p')
        conn.execute(f'ALTER PUBLICATION p OWNER TO "{role}"')
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        oid = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]
        assert _owned(conn, "hazard_owned", [oid]) == _owned(conn, "hazard_owned_scan", [oid]) == []


def test_row_security_and_security_definer_routines_are_seen_where_their_reads_find_them(
    admin_dsn: str, database: str
) -> None:
    with psycopg.connect(db_conninfo(admin_dsn, database), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app; CREATE SCHEMA other")
        nsp = [conn.execute("SELECT 'app'::regnamespace::oid").fetchone()[0]]
        before = _server(conn, ["app"])
        assert not before.definers
        assert fetch(conn, "hazard_rls", RlsRow, {"schemas": nsp}) == []
        assert fetch(conn, "hazard_functions", FunctionRow, {"roles": [], "schemas": nsp}) == []
        # row security on a table of another schema: a view in app over it is what hazard_rls finds
        conn.execute("CREATE TABLE other.t (id int); ALTER TABLE other.t ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE VIEW app.v AS SELECT * FROM other.t")
        conn.execute("CREATE FUNCTION other.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        middle = _server(conn, ["app"])
        assert not middle.definers  # a definer outside the managed schemas: not read
        assert fetch(conn, "hazard_rls", RlsRow, {"schemas": nsp}) != []
        conn.execute("CREATE FUNCTION app.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        assert _server(conn, ["app"]).definers
        assert fetch(conn, "hazard_functions", FunctionRow, {"roles": [], "schemas": nsp}) != []
