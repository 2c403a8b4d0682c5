"""The kinds registry's per-kind traits are PostgreSQL's: what acldefault() gives PUBLIC, which catalog an
object is a row of, how scopes name an object. Planners, rules and report read them instead of spelling them."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgwarden.kinds import KINDS, PROFILE_KINDS, kind

#: acldefault()'s object type letter for the kinds whose PUBLIC default the registry states
_ACLDEFAULT = {"database": "d", "schema": "n", "table": "r", "sequence": "s", "routine": "f", "type": "T"}


@pytest.mark.parametrize("name", sorted(_ACLDEFAULT))
def test_public_is_what_acldefault_gives_public(admin_conn: psycopg.Connection[Any], name: str) -> None:
    rows = admin_conn.execute(
        'SELECT a.privilege_type FROM aclexplode(acldefault(%s::"char", 10::oid)) AS a WHERE a.grantee = 0',
        [_ACLDEFAULT[name]],
    ).fetchall()
    assert {r[0] for r in rows} == set(kind(name).public)


def test_each_object_kind_is_a_row_of_its_catalog(admin_conn: psycopg.Connection[Any], unique_name: Any) -> None:
    """A table, a sequence, a function and a type made here are found in the catalog their kind names."""
    schema = unique_name("kinds")
    admin_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        objects = {
            "table": ("CREATE TABLE {}.t (id int)", "SELECT %s::regclass::oid", "t"),
            "sequence": ("CREATE SEQUENCE {}.s", "SELECT %s::regclass::oid", "s"),
            "routine": ("CREATE FUNCTION {}.f(integer) RETURNS int LANGUAGE sql AS 'SELECT 1'", None, "f(integer)"),
            "type": ("CREATE TYPE {}.e AS ENUM ('a')", "SELECT %s::regtype::oid", "e"),
        }
        for name, (create, lookup, obj) in objects.items():
            admin_conn.execute(sql.SQL(create).format(sql.Identifier(schema)))  # type: ignore[arg-type]
            qualified = f"{sql.Identifier(schema).as_string(admin_conn)}.{obj}"
            oid = admin_conn.execute(lookup or "SELECT %s::regprocedure::oid", [qualified]).fetchone()
            assert oid is not None
            catalog = kind(name).catalog
            found = admin_conn.execute(
                sql.SQL("SELECT count(*) FROM pg_catalog.{} WHERE oid = %s").format(sql.Identifier(catalog)), [oid[0]]
            ).fetchone()
            assert found == (1,), (name, catalog)
    finally:
        admin_conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_scopes_name_a_routine_by_its_arguments_and_a_sequence_with_its_table() -> None:
    assert kind("routine").scope_name("f", "integer, text") == ("f(integer, text)", None)
    assert kind("routine").scope_name("g", None) == ("g()", None)
    assert kind("sequence").scope_name("orders_id_seq", "orders") == ("orders_id_seq", "orders")
    assert kind("table").scope_name("orders", "ignored") == ("orders", None)
    # every kind profiles grant says where its objects live (plan steps and findings name them by it)
    assert all(KINDS[k].catalog for k in PROFILE_KINDS)


@pytest.mark.parametrize("name", [n for n, k in KINDS.items() if k.all_word and k.defacl_code])
def test_bulk_says_whether_grant_on_all_in_schema_exists(
    admin_conn: psycopg.Connection[Any], unique_name: Any, name: str
) -> None:
    """The planner writes `GRANT ... ON ALL <all_word> IN SCHEMA` only for a kind whose `bulk` is set:
    the server accepts it for those and refuses it (a syntax error) for the others (types)."""
    k, role = kind(name), unique_name("bulk")
    statement = sql.SQL("GRANT {} ON ALL {} IN SCHEMA public TO {}").format(
        sql.SQL(k.privileges[0]), sql.SQL(k.all_word or ""), sql.Identifier(role)
    )
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        if k.bulk:
            admin_conn.execute(statement)
        else:
            with pytest.raises(psycopg.errors.SyntaxError):
                admin_conn.execute(statement)
    finally:
        admin_conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {0}").format(sql.Identifier(role)))
        admin_conn.execute(
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {0}").format(sql.Identifier(role))
        )
        admin_conn.execute(sql.SQL("REVOKE ALL ON ALL ROUTINES IN SCHEMA public FROM {0}").format(sql.Identifier(role)))
        admin_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.parametrize("name", list(KINDS))
def test_what_public_may_keep_is_what_it_holds_by_default(name: str) -> None:
    """kept_from_public never says PUBLIC may keep what acldefault does not give it (the planners
    tolerate it, report counts it as expected), and the hardening takes routines' EXECUTE away."""
    k = kind(name)
    assert set(k.kept_from_public(False)) <= set(k.public)
    assert kind("routine").kept_from_public(False) == {"EXECUTE"} and not kind("routine").kept_from_public(True)
    assert kind("type").kept_from_public(True) == {"USAGE"}


def test_the_report_schema_lists_the_profile_kinds() -> None:
    """report --format json counts privileges per profile kind (report.KINDS): its JSON schema's enum is
    the registry's, so a kind added to PROFILE_KINDS fails here until the schema says it."""
    schema = json.loads(files("pgwarden.schemas").joinpath("report.json").read_text())
    cell = schema["properties"]["privileges"]["items"]["properties"]["kind"]
    assert tuple(cell["enum"]) == PROFILE_KINDS
