"""The guard: an event trigger that refuses, at DDL time, objects the owner would not own.

The wrong-login accident (a member of the owner forgets SET ROLE) is refused instead of found
afterwards; the owner and a deploy login acting as it work as before; check sees a guard dropped or
changed behind pgwarden's back, apply repairs it, and apply removes it when the policy says so."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from conftest import PgCleanup
from helpers import role_conninfo, run_cli
from pgwarden.policy import load_policy, password_env_for
from test_check import check_json
from test_core import Split, make_split

PROJECT = Path(__file__).parent / "projects" / "django_site"


def _guarded(split: Split, enabled: bool = True, deploy: str | None = None) -> None:
    policy = load_policy(split.path)
    update: dict[str, Any] = {"guard": policy.guard.model_copy(update={"enabled": enabled})}
    if deploy is not None:
        update["owner"] = policy.owner.model_copy(update={"deploy_logins": (deploy,)})
    split.path.write_text(policy.model_copy(update=update).to_toml(), "utf-8")


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    _guarded(s)
    s.apply()
    return s


def _owner_of(split: Split, table: str) -> str | None:
    with split.admin_db() as db:
        row = db.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)", (table,)
        ).fetchone()
    return None if row is None else row[0]


def test_a_member_of_the_owner_without_set_role_is_refused_and_the_owner_is_not(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    person = pg_cleanup.role(unique_name("person"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-person'").format(sql.Identifier(person)))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(person)))
    info = role_conninfo(split.admin_dsn, person, "pw-person", split.database)
    with psycopg.connect(info, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute("CREATE TABLE public.forgot_set_role (id serial PRIMARY KEY)")
        assert "pgwarden guard" in str(refused.value) and split.owner in str(refused.value)
        hint = refused.value.diag.message_hint or ""
        assert f"SET ROLE {split.owner}" in hint and "pgwarden run --as owner" in hint, hint
        # with SET ROLE the same login creates it, owned by the owner
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.owner)))
        conn.execute("CREATE TABLE public.with_set_role (id serial PRIMARY KEY)")
    assert _owner_of(split, "public.forgot_set_role") is None  # nothing was created
    assert _owner_of(split, "public.with_set_role") == split.owner
    # the superuser is refused too (the migration run as postgres), outside the managed schemas it is not
    with split.admin_db() as db:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("CREATE TABLE public.by_postgres (id int)")
        db.execute("CREATE SCHEMA elsewhere")
        db.execute("CREATE TABLE elsewhere.free (id int)")
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE public.by_owner (id int)")
        owner.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    code, data = check_json(split)
    # the only finding: person, outside the policy, can act as the owner (issue 21)
    found = [(f["rule"], f["role"]) for f in data["findings"]]
    assert code == 1 and found == [("outside.member-of-owner", person)], json.dumps(data, indent=1)


def test_a_deploy_login_acting_as_the_owner_creates_normally(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    deploy = pg_cleanup.role(unique_name("deploy"))
    _guarded(split, deploy=deploy)
    split.passwords[deploy] = "pw-deploy"
    split.apply()
    with psycopg.connect(role_conninfo(split.admin_dsn, deploy, "pw-deploy", split.database), autocommit=True) as c:
        c.execute("CREATE TABLE public.deployed (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)")
    assert _owner_of(split, "public.deployed") == split.owner


def test_check_sees_a_guard_dropped_disabled_or_changed_and_apply_repairs_it(split: Split) -> None:
    tampers = [
        "DROP EVENT TRIGGER pgwarden_guard",
        "ALTER EVENT TRIGGER pgwarden_guard DISABLE",
        "CREATE OR REPLACE FUNCTION pgwarden.guard() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog, pg_temp AS 'BEGIN END'",
        "GRANT EXECUTE ON FUNCTION pgwarden.guard() TO PUBLIC",
    ]
    for tamper in tampers:
        with split.admin_db() as db:
            db.execute(tamper)  # type: ignore[call-overload]
        code, data = check_json(split)
        guard = [f for f in data["findings"] if f["rule"] == "drift.guard"]
        assert code == 1 and guard and all(f["severity"] == "high" for f in guard), (tamper, data)
        split.apply()
        split.assert_clean()
        with split.admin_db() as db, pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("CREATE TABLE public.after_repair (id int)")


def test_apply_with_the_guard_off_removes_it(split: Split) -> None:
    _guarded(split, enabled=False)
    plan = split.plan_json()
    assert {s["action"] for s in plan["steps"]} == {"guard"}, plan
    split.apply()
    split.assert_clean()
    with split.admin_db() as db:
        assert db.execute("SELECT count(*) FROM pg_event_trigger WHERE evtname = 'pgwarden_guard'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgwarden'").fetchone() == (0,)
        db.execute("CREATE TABLE public.unguarded (id int)")  # nothing refuses it any more


def test_a_non_superuser_admin_is_told_what_the_guard_needs(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    with split.admin_db() as db:
        db.execute("DROP EVENT TRIGGER pgwarden_guard")
    admin = pg_cleanup.role(unique_name("admin"))
    admin_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD 'pw-admin'").format(sql.Identifier(admin))
    )
    admin_conn.execute(
        sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(split.owner), sql.Identifier(admin))
    )
    dsn = role_conninfo(split.admin_dsn, admin, "pw-admin", "postgres")
    plan = split.plan_json(dsn=dsn)
    guard = [s for s in plan["steps"] if s["action"] == "guard"]
    assert guard and all(not s["allowed"] and s["needs"] == "superuser" for s in guard), plan


def test_a_django_migration_passes_through_pgwarden_run(split: Split, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(PROJECT, site, ignore=shutil.ignore_patterns("later", "__pycache__"))
    params = conninfo_to_dict(split.admin_dsn)
    src = str(Path(__file__).parents[1] / "src")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"},
        **{password_env_for(r): pw for r, pw in split.passwords.items()},
        "PGWARDEN_POLICY": str(split.path),
        "PGHOST": str(params.get("host", "")),
        "PGPORT": str(params.get("port", "")),
        "PYTHONPATH": os.pathsep.join([src, str(site)]),
    }
    cwd = os.getcwd()
    os.chdir(site)
    try:
        argv = ["run", "-c", str(split.path), "--dsn", split.admin_dsn, "--as", "owner", "--"]
        res = run_cli([*argv, sys.executable, "manage.py", "migrate", "--no-input"], env={**env, "PGWARDEN_DSN": None})
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res
    code, data = check_json(split)
    assert code == 0, json.dumps(data, indent=1)
