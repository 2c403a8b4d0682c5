"""Naming big groups later (snapshot.with_names, queries/object_names.sql) lists exactly the objects that the
objects query lists when it names every group at once: both read the same object rows (object_rows.sql)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from pgwarden import bookkeeping
from pgwarden.snapshot import Snapshot, inspect, with_names

SCHEMAS = ("s1", "s2", "sqitch")


def _statements(owner: str, other: str) -> list[str]:
    own, oth = sql.Identifier(owner).as_string(None), sql.Identifier(other).as_string(None)
    out: list[str] = []
    for schema in SCHEMAS:
        out += [
            f"CREATE SCHEMA {schema} AUTHORIZATION {own}",
            f"CREATE TABLE {schema}.t1 (id serial, a int)",
            f"CREATE TABLE {schema}.t2 (id int GENERATED ALWAYS AS IDENTITY, a int)",
            f"CREATE TABLE {schema}.t3 (a int)",
            f"CREATE VIEW {schema}.v1 AS SELECT 1 AS a",
            f"CREATE SEQUENCE {schema}.free",
            f"CREATE FUNCTION {schema}.f1(x int, y text) RETURNS int LANGUAGE sql AS 'SELECT x'",
            f"CREATE FUNCTION {schema}.f1(x int) RETURNS int LANGUAGE sql AS 'SELECT x'",
            # migration bookkeeping: a group of its own, named by the objects query whatever its size
            f"CREATE TABLE {schema}.django_migrations (id serial, app text)",
            f"GRANT SELECT ON {schema}.t1, {schema}.t2 TO {oth}",
        ]
        for name in ("t1", "t2", "t3", "v1", "django_migrations"):
            out.append(f"ALTER TABLE {schema}.{name} OWNER TO {own}")
        out += [f"ALTER SEQUENCE {schema}.free OWNER TO {own}", f"ALTER FUNCTION {schema}.f1(int) OWNER TO {own}"]
    # s2's tables another owner's: their sequences follow them (linked)
    out += [f"ALTER TABLE s2.t1 OWNER TO {oth}", f"ALTER TABLE s2.t2 OWNER TO {oth}"]
    return out


def _inspect(conn: psycopg.Connection[Any], database: str, owner: str, threshold: int) -> Snapshot:
    return inspect(
        conn,
        database,
        SCHEMAS,
        owner,
        name_threshold=threshold,
        detailed=("s1",),
        bookkeeping=(bookkeeping.TABLES, bookkeeping.SCHEMAS),
    )


@pytest.mark.parametrize("detailed", [True, False])
def test_naming_groups_later_lists_what_naming_them_at_once_lists(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup, detailed: bool
) -> None:
    owner, other = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("oth"))
    database = pg_cleanup.database(unique_name("names"))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for role in (owner, other):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _statements(owner, other):
            conn.execute(statement.encode())
        every = _inspect(conn, database, owner, 10**6)  # every group named by the objects query
        none = _inspect(conn, database, owner, 0)  # only what is always named: bookkeeping, others' objects
        unnamed = [g for g in none.objects if g.objects is None]
        assert len(unnamed) >= 6, none.objects  # tables, sequences and routines of three schemas
        assert all(not g.bookkeeping for g in unnamed)
        schema_names = {s.oid: s.name for s in none.schemas}
        books = {(schema_names[g.schema], o.name) for g in none.objects if g.bookkeeping for o in g.objects or ()}
        history = {"django_migrations", "django_migrations_id_seq"}
        # in Sqitch's registry schema every table and sequence is bookkeeping (not the view)
        registry = {"t1", "t2", "t3", "free", "t1_id_seq", "t2_id_seq"}
        expected = {(s, n) for s in SCHEMAS for n in history} | {("sqitch", n) for n in registry}
        assert books == expected, none.objects
        later = with_names(conn, none, unnamed, ("s1",) if detailed else ())
    assert [g.key for g in later.objects] == [g.key for g in every.objects]
    if detailed:  # s1's sequences carry their table, as the objects query names them
        assert later.objects == every.objects
        seq = {o.name: o.args for g in later.objects if g.kind == "sequence" for o in g.objects or ()}
        assert seq["t1_id_seq"] == "t1" and seq["free"] is None, seq
    else:
        names = [(g.key, [(o.oid, o.name, o.subkind) for o in g.objects or ()]) for g in later.objects]
        assert names == [(g.key, [(o.oid, o.name, o.subkind) for o in g.objects or ()]) for g in every.objects]
    routines = {o.args for g in later.objects if g.kind == "routine" for o in g.objects or ()}
    assert routines == {"x integer", "x integer, y text"}
    assert replace(later, objects=()) == replace(every, objects=())
