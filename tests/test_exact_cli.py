"""init --from-database on the common case, a database whose objects belong to the superuser, as a
new user runs it: an owner still to be made, a deploy login, a summary that groups what it saw, the
adoption path it ends with, and a membership held twice (PostgreSQL 16+)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli
from pgwarden.policy import load_policy

TABLES = 12


def _superuser_owned(
    admin_conn: psycopg.Connection[Any], admin_dsn: str, name: Callable[[str], str], cleanup: PgCleanup
) -> tuple[str, dict[str, str]]:
    roles = {r: cleanup.role(name(r)) for r in ("app", "bi", "alice", "owner", "deploy")}
    q = {r: sql.Identifier(n) for r, n in roles.items()}
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(q["app"]))
    admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(q["bi"]))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(q["alice"], q["bi"]))
    db = cleanup.database(name("crm"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as c:
        c.execute("CREATE SCHEMA app")
        for i in range(TABLES):
            c.execute(f"CREATE TABLE app.t{i} (id serial PRIMARY KEY, name text, secret text)")
        c.execute(sql.SQL("GRANT USAGE ON SCHEMA app TO {}, {}").format(q["app"], q["bi"]))
        c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO {}").format(q["app"]))
        c.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO {}").format(q["app"]))
        c.execute(sql.SQL("GRANT SELECT ON app.t0 TO {}").format(q["bi"]))
        c.execute(sql.SQL("GRANT SELECT (id, name) ON app.t1 TO {}").format(q["bi"]))
    return db, roles


def test_a_superuser_owned_database_is_described_and_adopted_without_taking_anything(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    from test_exact_init import effective

    db, roles = _superuser_owned(admin_conn, admin_dsn, unique_name, pg_cleanup)
    admin = admin_conn.execute("SELECT current_user").fetchone()[0]  # type: ignore[index]
    watched = [roles["app"], roles["bi"], roles["alice"]]
    before = effective(db_conninfo(admin_dsn, db), watched)
    path = tmp_path / "policy.toml"
    args = ["init", "--from-database", db, "--owner", roles["owner"], "--deploy-login", roles["deploy"]]
    result = run_cli([*args, "--dsn", admin_dsn, "-o", str(path)])
    assert result.exit_code == 0, str(result)
    # one line per kind of finding, with its count: not one line per object
    assert f"{TABLES} objects owned by {admin}, not {roles['owner']}: plan moves them" in result.stderr
    assert "table app.t" not in result.stderr, result.stderr
    assert f"pgwarden adopt -c {path} --from {admin}" in result.stderr, result.stderr
    assert "plan revokes them" not in result.stderr, result.stderr  # nothing is taken from the roles
    assert len(result.stderr.splitlines()) < 15, result.stderr
    assert "--mode additive" in result.stderr and "pgwarden adopt" in result.stderr, result.stderr
    policy = load_policy(path)
    assert policy.owner.name == roles["owner"] and not policy.owner.login
    assert policy.owner.deploy_logins == (roles["deploy"],)
    assert [m.name for m in policy.members] == [roles["alice"]]
    # the adoption path the summary names: additive apply, adopt, authoritative apply
    env = {"PGWARDEN_PASSWORD_" + roles["deploy"].upper(): "pw-deploy"}
    for step in (
        ["apply", "--mode", "additive", "--yes"],
        ["adopt", "--from", admin, "--yes"],
        ["apply", "--yes"],
        ["plan", "--exit-code"],
    ):
        done = run_cli([*step, "-c", str(path), "--dsn", admin_dsn], env=env)
        assert done.exit_code == 0, (step, str(done))
    assert effective(db_conninfo(admin_dsn, db), watched) == before
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as c:
        owners = c.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'app'").fetchall()
        assert owners == [(roles["owner"],)]
        with c.transaction(force_rollback=True):  # the BI group still reads two columns of t1, not the third
            c.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(roles["alice"])))
            c.execute("SELECT id, name FROM app.t1")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT secret FROM app.t1")


def test_a_missing_database_and_a_superuser_owner_are_refused_in_one_line(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    db, _ = _superuser_owned(admin_conn, admin_dsn, unique_name, pg_cleanup)
    path = tmp_path / "p.toml"
    missing = run_cli(["init", "--from-database", "nosuchdb", "--dsn", admin_dsn, "-o", str(path)])
    assert missing.exit_code == 2 and "error: database nosuchdb does not exist" in missing.stderr, str(missing)
    assert "hint:" in missing.stderr and "apply" not in missing.stderr and not path.exists()
    bare = run_cli(["init", "--from-database", db, "--dsn", admin_dsn, "-o", str(path)])
    assert bare.exit_code == 2 and "a superuser" in bare.stderr and "--owner ROLE" in bare.stderr, str(bare)
    assert not path.exists()


def test_a_membership_held_twice_is_one_member_of(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    if admin_conn.info.server_version < 160000:
        pytest.skip("a membership has one grantor before PostgreSQL 16")
    db, roles = _superuser_owned(admin_conn, admin_dsn, unique_name, pg_cleanup)
    mgr, team = pg_cleanup.role(unique_name("mgr")), pg_cleanup.role(unique_name("team"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(mgr)))
    admin_conn.execute(sql.SQL("ALTER ROLE {} SET createrole_self_grant = 'set, inherit'").format(sql.Identifier(mgr)))
    with admin_conn.transaction():  # as mgr: CREATE ROLE makes mgr a member of team twice
        admin_conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(mgr)))
        admin_conn.execute("SET LOCAL createrole_self_grant = 'set, inherit'")
        admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(team)))
    rows = admin_conn.execute(
        "SELECT count(*) FROM pg_auth_members WHERE roleid = %s::regrole AND member = %s::regrole", (team, mgr)
    ).fetchone()
    assert rows == (2,)
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as c:
        c.execute(sql.SQL("GRANT USAGE ON SCHEMA app TO {}").format(sql.Identifier(team)))
        c.execute(sql.SQL("GRANT SELECT ON app.t2 TO {}").format(sql.Identifier(team)))
    path = tmp_path / "p.toml"
    result = run_cli(["init", "--from-database", db, "--owner", roles["owner"], "--dsn", admin_dsn, "-o", str(path)])
    assert result.exit_code == 0, str(result)
    members = {m.name: [g.role for g in m.member_of] for m in load_policy(path).members}
    assert members[mgr] == [team]
