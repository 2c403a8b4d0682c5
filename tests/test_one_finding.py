"""One finding per problem, every fix runs: the wrong-login migration, a domain an access role owns,
and every fix of a database drifted in many ways, run as the admin, leaving check clean."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import run_cli
from test_check import check_json, ident
from test_core import Split, make_split


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    return s


def run_fixes(split: Split, findings: list[dict[str, Any]]) -> None:
    """Run every fix as the admin: SQL in the database, pgwarden commands through the CLI."""
    with split.admin_db() as db:
        for f in findings:
            fix = f["fix"]
            assert fix, f
            if fix.startswith("pgwarden "):
                result = run_cli(
                    [*shlex.split(fix)[1:], "-c", str(split.path), "--dsn", split.admin_dsn], env=split.env
                )
                assert result.exit_code == 0, f"{fix}: {result}"
                continue
            for statement in fix.splitlines():
                db.execute(statement)  # type: ignore[call-overload]


def test_a_schema_migrated_by_the_wrong_login_gives_one_finding_per_object(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """The MLflow case: a person's login, a member of the owner, runs a migration without SET ROLE."""
    person = pg_cleanup.role(unique_name("person"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-person'").format(sql.Identifier(person)))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(person)))
    from helpers import role_conninfo

    with psycopg.connect(role_conninfo(split.admin_dsn, person, "pw-person", split.database), autocommit=True) as c:
        for i in range(6):
            c.execute(f"CREATE TABLE public.run_{i} (id serial PRIMARY KEY, v text)")  # type: ignore[call-overload]
        c.execute("CREATE VIEW public.run_view AS SELECT id FROM public.run_0")
        c.execute("CREATE FUNCTION public.run_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        c.execute("CREATE DOMAIN public.run_dom AS int CHECK (VALUE > 0)")
    created = {*(f"public.run_{i}" for i in range(6)), "public.run_view", "public.run_fn()", "public.run_dom"}
    code, data = check_json(split)
    findings = data["findings"]
    dump = json.dumps(findings, indent=1)
    ownership = [f for f in findings if f["rule"] in ("ownership.not-owner", "drift.alter-owner")]
    assert code == 1 and all(f["rule"] == "ownership.not-owner" for f in ownership), dump
    labels = Counter(f["object"].split(" ", 1)[1] if " " in f["object"] else f["object"] for f in ownership)
    assert set(labels) == created and set(labels.values()) == {1}, dump  # each object once, sequences with their table
    for f in ownership:
        assert f["fix"].startswith("ALTER ") and f" OWNER TO {ident(split.owner)}" in f["fix"], f
        assert "REASSIGN" not in f["fix"], f
    # the objects lack the access roles' grants (and the function PUBLIC's revoke): another problem,
    # a few statements, not one per object
    acl = [f for f in findings if f["rule"] in ("drift.grant", "drift.revoke")]
    assert 0 < len(acl) <= 8, dump
    # and the person, outside the policy, can act as the owner: one finding (issue 21)
    outsiders = [f["role"] for f in findings if f["rule"] == "outside.member-of-owner"]
    assert outsiders == [person], dump
    assert len(findings) == len(ownership) + len(acl) + 1, dump
    run_fixes(split, findings)
    code, data = check_json(split)
    assert code == 0, json.dumps(data["findings"], indent=1)


def test_an_access_role_owning_a_domain_is_found_once_and_apply_moves_it(split: Split) -> None:
    with split.login(split.owner) as owner:
        owner.execute("CREATE DOMAIN public.posint AS int CONSTRAINT posint_positive CHECK (VALUE > 0)")
    with split.admin_db() as db:
        db.execute(f"ALTER DOMAIN public.posint OWNER TO {ident(split.app)}")  # type: ignore[call-overload]
    # the hazard is real: the app can change what the domain lets in
    with split.login(split.app) as app, app.transaction(force_rollback=True):
        app.execute("ALTER DOMAIN public.posint DROP CONSTRAINT posint_positive")
    code, data = check_json(split)
    about = [f for f in data["findings"] if "posint" in f["object"]]
    assert code == 1 and len(about) == 1 and about[0]["rule"] == "access.owns-objects", json.dumps(about, indent=1)
    assert about[0]["fix"] == f"ALTER DOMAIN {ident('public', 'posint')} OWNER TO {ident(split.owner)}", about
    split.apply()
    with split.login(split.app) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("ALTER DOMAIN public.posint DROP CONSTRAINT posint_positive")
    code, data = check_json(split)
    assert code == 0, json.dumps(data["findings"], indent=1)


def test_every_fix_check_prints_runs_and_leaves_check_clean(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    outsider = pg_cleanup.role(unique_name("other"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
    app, ro, owner, db_name = ident(split.app), ident(split.readonly), ident(split.owner), ident(split.database)
    with split.login(split.owner) as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        conn.execute("CREATE FUNCTION peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT 1::bigint'")
    tampers = [
        f"GRANT {owner} TO {app}",
        f"GRANT pg_read_server_files TO {ro}",
        f"ALTER ROLE {ro} CREATEDB BYPASSRLS",
        f"GRANT TRUNCATE ON public.items TO {app}",
        f"GRANT SELECT ON public.items TO {ro} WITH GRANT OPTION",
        f"REVOKE UPDATE ON public.items FROM {app}",
        "CREATE TABLE public.stray (id serial)",
        f"ALTER TABLE public.stray OWNER TO {ident(outsider)}",
        "CREATE TABLE public.app_table (id int)",
        f"ALTER TABLE public.app_table OWNER TO {app}",
        "CREATE TABLE public.by_postgres (id int)",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {app} GRANT SELECT ON TABLES TO {ro}",
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        f"GRANT CREATE ON SCHEMA public TO {app}",
        f"GRANT CREATE, TEMPORARY ON DATABASE {db_name} TO PUBLIC",
        "GRANT EXECUTE ON FUNCTION public.peek() TO PUBLIC",
    ]
    with split.admin_db() as db:
        for statement in tampers:
            db.execute(statement)  # type: ignore[call-overload]
    code, data = check_json(split)
    findings = data["findings"]
    assert code == 1 and len(findings) >= 12, json.dumps(findings, indent=1)
    # no object appears in two findings for the same cause
    keys = Counter((f["rule"], f["object"], f["role"], f["message"]) for f in findings)
    assert max(keys.values()) == 1, keys
    run_fixes(split, findings)
    code, data = check_json(split)
    assert code == 0, json.dumps(data["findings"], indent=1)
