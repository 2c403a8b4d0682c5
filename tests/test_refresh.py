"""Materialized views an app must refresh: MAINTAIN on 17+, the owner's refresh routine on 14-16, found
by check when missing, proved by acting as the role (issue 22, item 6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from pgwarden.refresh import Refresh, create_sql, grant_sql, owner_sql, revoke_sql, routine_name
from test_core import Split, make_split

VIEWS = (
    "CREATE TABLE items (id int PRIMARY KEY, price int NOT NULL)",
    "INSERT INTO items VALUES (1, 10)",
    "CREATE MATERIALIZED VIEW totals AS SELECT 1 AS id, count(*) AS n, sum(price) AS total FROM items",
    "CREATE UNIQUE INDEX ON totals (id)",  # REFRESH ... CONCURRENTLY needs one
    "CREATE MATERIALIZED VIEW other AS SELECT count(*) AS n FROM items",
)


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    with s.login(s.owner) as owner:
        for statement in VIEWS:
            owner.execute(statement)
    s.apply()
    return s


def _declare(split: Split, *views: str, role: str | None = None) -> None:
    """Add the database's `refresh` to the (version 1) policy file: `role` (the app) may refresh `views`."""
    text = split.path.read_text("utf-8")
    marker = "schemas = "
    at = text.index("\n", text.index(marker)) + 1
    entry = f'refresh = [{{ role = "{role or split.app}", views = [{", ".join(f"{v!r}" for v in views)}] }}]\n'
    split.path.write_text(text[:at] + entry.replace("'", '"') + text[at:], "utf-8")


def _refresh(split: Split, role: str, view: str, version: int, *, concurrently: bool = False) -> str | None:
    """Refresh `view` acting as `role` (logged in), as an app does on this version: REFRESH on 17+, the
    role's refresh routine before. None when it worked (committed), else the server's error."""
    with split.login(role) as conn:
        try:
            if version >= 17:
                how = sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL("")
                conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(how, sql.Identifier("public", view)))
            else:
                conn.execute(
                    sql.SQL("SELECT {}(%s::regclass, %s)").format(sql.Identifier("public", routine_name(split.app))),
                    (f"public.{view}", concurrently),
                )
        except psycopg.Error as exc:
            return f"{exc.sqlstate}: {exc}"
    return None


def _findings(split: Split) -> list[dict[str, Any]]:
    result = split.cli("check", "--format", "json")
    assert result.exit_code in (0, 1), str(result)
    return [f for f in result.json()["findings"] if f["rule"] == "refresh.missing"]


def _total(split: Split) -> tuple[int, int]:
    with split.login(split.app) as app:
        row = app.execute("SELECT n, total FROM totals").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_declared_refresh_fails_before_apply_and_works_after_for_that_view_only(
    split: Split, pg_version: int
) -> None:
    assert _refresh(split, split.app, "totals", pg_version) is not None  # the app cannot, before any policy line
    _declare(split, "public.totals")
    # the hazard is real: the app that must refresh cannot, and check says so
    assert (error := _refresh(split, split.app, "totals", pg_version)) and error.startswith("42"), error
    (found,) = _findings(split)
    assert found["role"] == split.app and found["fix"], found
    assert "public.totals" in found["message"], found
    check = split.cli("check")
    assert check.exit_code == 1 and "refresh.missing" in check.stdout, str(check)

    split.apply()
    with split.login(split.app) as app:
        app.execute("INSERT INTO items VALUES (2, 5)")
    assert _total(split) == (1, 10)  # not refreshed yet
    assert _refresh(split, split.app, "totals", pg_version) is None
    assert _total(split) == (2, 15)  # the refresh really ran, as the app
    with split.login(split.app) as app:
        app.execute("INSERT INTO items VALUES (3, 1)")
    assert _refresh(split, split.app, "totals", pg_version, concurrently=True) is None
    assert _total(split) == (3, 16)
    # that view only, that role only
    assert (error := _refresh(split, split.app, "other", pg_version)) and error.startswith("42501"), error
    assert (error := _refresh(split, split.readonly, "totals", pg_version)) and error.startswith("42501"), error
    assert _findings(split) == [], [f["message"] for f in _findings(split)]
    split.assert_clean()
    report = split.cli("report", "--format", "json").json()
    assert report["summary"]["deviations"] == 0, [c for c in report["privileges"] if c["deviation"]]
    probe = split.cli("probe", "--format", "json")
    assert probe.exit_code == 0, str(probe)
    refreshes = [a for a in probe.json()["attempts"] if a["action"] == "refresh"]
    assert {(a["role"], a["object"], a["expected"], a["outcome"]) for a in refreshes} >= {
        (split.app, "public.totals", "allowed", "allowed"),
        (split.app, "public.other", "denied", "denied"),
        (split.readonly, "public.totals", "denied", "denied"),
    }, refreshes


@pytest.mark.maxversion(16)
def test_the_refresh_routine_refuses_what_is_not_declared_and_a_changed_one_is_found(split: Split) -> None:
    """14-16: the routine checks its argument on the server (a table, another view: refused); a routine
    replaced by hand to refresh anything is found by check and made again by apply."""
    _declare(split, "public.totals")
    split.apply()
    routine = sql.Identifier("public", routine_name(split.app))
    with split.login(split.app) as app:
        for target in ("public.items", "public.other"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not refresh"):
                app.execute(sql.SQL("SELECT {}(%s::regclass)").format(routine), (target,))
    with split.login(split.owner) as owner:  # a routine that refreshes whatever it is given
        owner.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {}(matview regclass, concurrent boolean DEFAULT false) RETURNS void "
                "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp "
                "AS $$ BEGIN EXECUTE format('REFRESH MATERIALIZED VIEW %s', matview); END $$"
            ).format(routine)
        )
    with split.login(split.app) as app:
        app.execute(sql.SQL("SELECT {}('public.other'::regclass)").format(routine))  # the hazard: any view
    (found,) = _findings(split)
    assert "its body is not the one" in found["message"], found
    with split.login(split.owner) as owner:
        owner.execute(found["fix"])  # the printed fix runs, as the owner
    assert _findings(split) == []
    with split.login(split.app) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(sql.SQL("SELECT {}('public.other'::regclass)").format(routine))
    split.assert_clean()

    # SECURITY INVOKER: the routine refreshes with the app's rights, so not at all
    function = sql.SQL("{}(regclass, boolean)").format(routine)
    with split.login(split.owner) as owner:
        owner.execute(sql.SQL("ALTER FUNCTION {} SECURITY INVOKER").format(function))
    assert _refresh(split, split.app, "totals", 16) is not None
    (found,) = _findings(split)
    assert "not SECURITY DEFINER" in found["message"], found
    split.apply()
    assert _refresh(split, split.app, "totals", 16) is None and _findings(split) == []

    # runnable by another role: the readonly role could refresh too
    with split.login(split.owner) as owner:
        owner.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(function, sql.Identifier(split.readonly)))
    assert _refresh(split, split.readonly, "totals", 16) is None  # the hazard: through the app's routine
    (found,) = _findings(split)
    assert f"{split.readonly} may run it too" in found["message"], found
    split.apply()
    assert _refresh(split, split.readonly, "totals", 16) is not None and _findings(split) == []
    split.assert_clean()


@pytest.mark.minversion(17)
def test_maintain_revoked_by_hand_is_found_and_its_fix_runs(split: Split, pg_version: int) -> None:
    _declare(split, "public.totals")
    split.apply()
    with split.login(split.owner) as owner:
        owner.execute(sql.SQL("REVOKE MAINTAIN ON totals FROM {}").format(sql.Identifier(split.app)))
    assert _refresh(split, split.app, "totals", pg_version) is not None
    (found,) = _findings(split)
    assert found["object"] == "materialized view public.totals" and "MAINTAIN" in found["fix"], found
    with split.login(split.owner) as owner:
        owner.execute(found["fix"])
    assert _refresh(split, split.app, "totals", pg_version) is None and _findings(split) == []


def test_a_misspelt_or_wrong_kind_of_view_is_refused_with_a_hint(split: Split) -> None:
    _declare(split, "public.totls")
    plan = split.cli("plan")
    assert plan.exit_code == 2, str(plan)
    assert "materialized view 'public.totls' does not exist" in plan.stderr and "public.totals" in plan.stderr
    _declare(split, "public.items")  # a table cannot be refreshed (the first line still names totls: redo)
    text = split.path.read_text("utf-8")
    split.path.write_text("\n".join(line for line in text.splitlines() if "totls" not in line) + "\n", "utf-8")
    plan = split.cli("plan")
    assert plan.exit_code == 2 and "materialized view 'public.items' does not exist" in plan.stderr, str(plan)


def test_additive_mode_gives_the_refresh_and_nothing_more(split: Split, pg_version: int) -> None:
    """Additive apply adds the refresh; the routine's default EXECUTE for PUBLIC (14-16) is no existing
    grant and goes with it: another role cannot refresh."""
    _declare(split, "public.totals")
    split.apply("--mode", "additive")
    assert _refresh(split, split.app, "totals", pg_version) is None
    assert (error := _refresh(split, split.readonly, "totals", pg_version)) and error.startswith("42501"), error
    assert _findings(split) == []


@pytest.mark.minversion(17)
def test_among_many_tables_the_view_still_gets_its_grant(split: Split, pg_version: int) -> None:
    """Over the naming threshold (200 objects of a kind in a schema) the listed view is still granted one
    by one (a bulk `ON ALL TABLES` would give MAINTAIN on every table)."""
    with split.login(split.owner) as owner:
        owner.execute(
            "DO $$ BEGIN FOR i IN 1..260 LOOP EXECUTE format('CREATE TABLE t%s (id int)', i); END LOOP; END $$"
        )
    split.apply()
    _declare(split, "public.totals")
    split.apply()
    assert _refresh(split, split.app, "totals", pg_version) is None
    assert _refresh(split, split.app, "other", pg_version) is not None
    with split.login(split.app) as app:  # MAINTAIN on no other table
        assert app.execute(
            "SELECT bool_or(has_table_privilege(format('t%s', i), 'MAINTAIN')) FROM generate_series(1, 260) i"
        ).fetchone() == (False,)
    split.assert_clean()


def _by_routine(split: Split, role: str, view: str) -> str | None:
    """Refresh `view` acting as `role` through the app's refresh routine (on every version): None when it
    worked, else the server's SQLSTATE."""
    with split.login(role) as conn:
        try:
            conn.execute(
                sql.SQL("SELECT {}(%s::regclass, false)").format(sql.Identifier("public", routine_name(split.app))),
                (f"public.{view}",),
            )
        except psycopg.Error as exc:
            return exc.sqlstate
    return None


def _leftover(split: Split, pg_version: int) -> None:
    """The app's refresh routine, left behind: on 14-16 the real way (declared, applied, no longer
    declared); on 17+ as a 14-16 apply made it before an upgrade (its own statements, by hand)."""
    text = split.path.read_text("utf-8")
    if pg_version <= 16:
        _declare(split, "public.totals")
        assert split.apply().exit_code == 0
        split.path.write_text(text, "utf-8")
        return
    refresh = Refresh(split.app, "public", ("totals",))
    with split.admin_db() as conn:
        conn.execute(create_sql(refresh))
        conn.execute(owner_sql(refresh, split.owner))
        conn.execute(revoke_sql(refresh, ()))
        conn.execute(grant_sql(refresh))


def test_a_refresh_routine_the_policy_no_longer_declares_is_dropped_never_granted(
    split: Split, pg_version: int
) -> None:
    """The profiles give EXECUTE on a schema's routines: a refresh routine left from a refresh the policy
    no longer declares was granted to every access role, so the readonly role could refresh the view as
    the owner. Now plan drops it (withheld in additive mode) and grants nothing on it; a readonly role that
    was given it (as the old plan did) can refresh through it until apply, not after."""
    _leftover(split, pg_version)
    assert _by_routine(split, split.app, "totals") is None  # still the app's, though no longer declared
    plan = split.plan_json()
    routine = routine_name(split.app)
    about = [s for s in plan["steps"] if routine in s["object"]]
    assert [(s["action"], s["destructive"]) for s in about] == [("refresh-routine", True)], about
    assert about[0]["sql"].startswith(f'DROP FUNCTION "public"."{routine}"(matview regclass'), about
    additive = split.cli("plan", "--mode", "additive", "--format", "json").json()
    assert not [s for s in additive["steps"] if routine in s["object"]], additive["steps"]
    assert [s["sql"] for s in additive.get("withheld", []) if routine in s["object"]] == [about[0]["sql"]]

    with split.admin_db() as conn:  # what the plan before this change did: EXECUTE for every profile
        conn.execute(
            sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {}").format(sql.Identifier(split.readonly))
        )
    assert _by_routine(split, split.readonly, "totals") is None  # the hazard is real: readonly refreshes
    check = split.cli("check", "--format", "json")
    assert check.exit_code == 1, str(check)
    found = [f for f in check.json()["findings"] if routine in (f["object"] or "")]
    assert any(f["fix"] == about[0]["sql"] for f in found), found
    assert not [s for s in split.plan_json()["steps"] if routine in s["object"] and s["action"] != "refresh-routine"]

    assert split.apply().exit_code == 0
    for role in (split.readonly, split.app):
        assert _by_routine(split, role, "totals") == "42883"  # no such function: nobody refreshes through it
    split.assert_clean()
    assert split.cli("check").exit_code == 0
