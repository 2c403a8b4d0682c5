"""The guard judged by what it does: each way around it is first proved (a DDL that escapes the owner
goes through), then check finds it (drift.guard), then one apply repairs it and the DDL is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from test_check import check_json
from test_core import Split
from test_guard import split  # noqa: F401 - the fixture: a split with the guard applied


def _escapes(split: Split, setup: str = "") -> bool:  # noqa: F811
    """Whether a superuser creates a table in a managed schema without acting as the owner (the
    classic migration run as postgres) and it goes through; always rolled back."""
    with split.admin_db() as db:
        try:
            with db.transaction(force_rollback=True):
                if setup:
                    db.execute(setup)  # type: ignore[call-overload]
                db.execute("CREATE TABLE public.escaped (id int)")
            return True
        except psycopg.errors.InsufficientPrivilege as exc:
            assert "pgwarden guard" in str(exc)
            return False


def _repaired(split: Split) -> None:  # noqa: F811
    code, data = check_json(split)
    guard = [f for f in data["findings"] if f["rule"] == "drift.guard"]
    assert code == 1 and guard and all(f["severity"] == "high" for f in guard), json.dumps(data["findings"], indent=1)
    split.apply()
    split.assert_clean()


@pytest.fixture
def other(admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> str:
    """A plain role outside the policy, with a password."""
    name = pg_cleanup.role(unique_name("other"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-other'").format(sql.Identifier(name)))
    return name


TRIGGER_TAMPERS = [
    # disabled for ordinary sessions only, or for replica sessions only
    "ALTER EVENT TRIGGER pgwarden_guard ENABLE REPLICA",
    # the same name on another event, or with a filter that leaves tables out
    "DROP EVENT TRIGGER pgwarden_guard; "
    "CREATE EVENT TRIGGER pgwarden_guard ON sql_drop EXECUTE FUNCTION pgwarden.guard()",
    "DROP EVENT TRIGGER pgwarden_guard; CREATE EVENT TRIGGER pgwarden_guard ON ddl_command_end "
    "WHEN TAG IN ('CREATE FUNCTION') EXECUTE FUNCTION pgwarden.guard()",
]


@pytest.mark.parametrize("tamper", TRIGGER_TAMPERS, ids=["replica-only", "other-event", "tag-filter"])
def test_a_trigger_of_the_same_name_that_does_not_guard_is_drift(split: Split, tamper: str) -> None:  # noqa: F811
    assert not _escapes(split)
    with split.admin_db() as db:
        db.execute(tamper)  # type: ignore[call-overload]
    assert _escapes(split)  # the path is real
    _repaired(split)
    assert not _escapes(split)


def test_session_replication_role_does_not_pass_the_guard(split: Split) -> None:  # noqa: F811
    replica = "SET LOCAL session_replication_role = replica"
    assert not _escapes(split, replica)  # installed ENABLE ALWAYS: it fires in replica sessions too
    with split.admin_db() as db:
        db.execute("ALTER EVENT TRIGGER pgwarden_guard ENABLE")  # the default: origin sessions only
    assert _escapes(split, replica) and not _escapes(split)
    _repaired(split)
    assert not _escapes(split, replica)


def test_a_function_handed_to_another_role_is_taken_back(split: Split, other: str) -> None:  # noqa: F811
    with split.admin_db() as db:
        db.execute(sql.SQL("ALTER FUNCTION pgwarden.guard() OWNER TO {}").format(sql.Identifier(other)))
        db.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA pgwarden TO {}").format(sql.Identifier(other)))
    # its new owner empties it (acting as that role), and the guard lets everything through
    with split.admin_db() as db:
        db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(other)))
        db.execute(
            "CREATE OR REPLACE FUNCTION pgwarden.guard() RETURNS event_trigger LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'BEGIN END'"
        )
    assert _escapes(split)
    _repaired(split)
    assert not _escapes(split)
    with split.admin_db() as db:
        owner, private = db.execute(
            "SELECT pg_get_userbyid(p.proowner), NOT has_function_privilege(%s, p.oid, 'EXECUTE') "
            "FROM pg_proc p WHERE p.oid = 'pgwarden.guard()'::regprocedure",
            (other,),
        ).fetchone()  # type: ignore[misc]
        assert owner != other and private
        assert db.execute("SELECT has_schema_privilege(%s, 'pgwarden', 'USAGE')", (other,)).fetchone() == (False,)


def test_execute_granted_to_a_role_and_a_schema_handed_away_are_drift(split: Split, other: str) -> None:  # noqa: F811
    with split.admin_db() as db:
        db.execute(sql.SQL("GRANT EXECUTE ON FUNCTION pgwarden.guard() TO {}").format(sql.Identifier(other)))
        assert db.execute("SELECT has_function_privilege(%s, 'pgwarden.guard()', 'EXECUTE')", (other,)).fetchone() == (
            True,
        )
    _repaired(split)
    with split.admin_db() as db:
        assert db.execute("SELECT has_function_privilege(%s, 'pgwarden.guard()', 'EXECUTE')", (other,)).fetchone() == (
            False,
        )
        db.execute(sql.SQL("ALTER SCHEMA pgwarden OWNER TO {}").format(sql.Identifier(other)))
    # the schema's owner may drop what is in it (the trigger goes with the function)
    with split.admin_db() as db:
        db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(other)))
        db.execute("DROP FUNCTION pgwarden.guard() CASCADE")
    assert _escapes(split)
    _repaired(split)
    assert not _escapes(split)


def test_ddl_that_hands_a_managed_object_or_schema_away_is_refused(
    split: Split,  # noqa: F811
    other: str,
    admin_conn: psycopg.Connection[Any],
) -> None:
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE public.t (id int)")
        owner.execute("CREATE SEQUENCE public.s")
        owner.execute("CREATE VIEW public.v AS SELECT 1 AS x")
        owner.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        owner.execute("CREATE TYPE public.ty AS (a int)")
        owner.execute("COMMENT ON SCHEMA public IS 'the app'")  # a managed schema the owner changes: allowed
    # what ALTER ... OWNER TO needs: the owner is a member of the new owner, which may create in the schema
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(other), sql.Identifier(split.owner)))
    with split.admin_db() as db:
        db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(other)))
    to = sql.Identifier(other).as_string(None)
    statements = [
        f"ALTER TABLE public.t OWNER TO {to}",
        f"ALTER SEQUENCE public.s OWNER TO {to}",
        f"ALTER VIEW public.v OWNER TO {to}",
        f"ALTER FUNCTION public.f() OWNER TO {to}",
        f"ALTER TYPE public.ty OWNER TO {to}",
    ]
    with split.login(split.owner) as owner:  # acting as the owner, which may hand its objects to `other`
        for statement in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgwarden guard"):
                owner.execute(statement)  # type: ignore[call-overload]
    with split.admin_db() as db:  # a schema: its owner may drop everything in it
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgwarden guard: schema public"):
            db.execute(f"ALTER SCHEMA public OWNER TO {to}")  # type: ignore[call-overload]
        db.execute("SET ROLE NONE")
        with split.login(split.owner) as owner:
            owner.execute("DROP TABLE public.t")
        db.execute("DROP SCHEMA public CASCADE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgwarden guard: schema public"):
            db.execute(f"CREATE SCHEMA public AUTHORIZATION {to}")  # type: ignore[call-overload]
    admin_conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(other), sql.Identifier(split.owner)))
    split.apply()  # public comes back, owned by the owner
    split.assert_clean()


def test_reassign_owned_is_not_seen_by_event_triggers_but_check_finds_it(
    split: Split,  # noqa: F811
    other: str,
) -> None:
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE public.t (id int)")
    with split.admin_db() as db:  # REASSIGN OWNED fires no event trigger: nothing can refuse it
        db.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(other)))
        assert db.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.t'::regclass"
        ).fetchone() == (other,)
    code, data = check_json(split)
    assert code == 1 and any("public.t" in f["object"] for f in data["findings"]), json.dumps(
        data["findings"], indent=1
    )
    split.apply()
    split.assert_clean()
    with split.admin_db() as db:
        assert db.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.t'::regclass"
        ).fetchone() == (split.owner,)


def test_a_stored_event_triggers_off_is_reset_at_every_level(
    split: Split,  # noqa: F811
    pg_version: int,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> None:
    if pg_version < 17:
        pytest.skip("the event_triggers setting is PostgreSQL 17+")
    person = pg_cleanup.role(unique_name("person"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-person'").format(sql.Identifier(person)))
    split.passwords[person] = "pw-person"
    db_name, who = sql.Identifier(split.database), sql.Identifier(person)
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), who))
    levels = [
        sql.SQL("ALTER ROLE {} SET event_triggers = off").format(who),
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET event_triggers = off").format(who, db_name),
        sql.SQL("ALTER DATABASE {} SET event_triggers = off").format(db_name),
    ]
    member = sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), who)
    for level in levels:
        admin_conn.execute(level)
        # the member forgets SET ROLE: its session starts with the guard off, and the table escapes
        with split.login(person) as conn, conn.transaction(force_rollback=True):
            conn.execute("CREATE TABLE public.escaped (id int)")
        # drift.guard, or drift.role-setting where the database's superuser-only settings are reset already
        code, data = check_json(split)
        resets = [f for f in data["findings"] if '"event_triggers"' in (f["fix"] or "")]
        assert code == 1 and len(resets) == 1, json.dumps(data["findings"], indent=1)
        assert resets[0]["rule"] in ("drift.guard", "drift.role-setting") and resets[0]["severity"] == "high", resets
        split.apply()  # (it also takes back person's membership: outside.member-of-owner)
        split.assert_clean()
        admin_conn.execute(member)
        with split.login(person) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="pgwarden guard"):
            conn.execute("CREATE TABLE public.escaped (id int)")
