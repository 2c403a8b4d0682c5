"""Privileges outside the managed schemas on real servers: tamper as the superuser, prove the hazard
by acting as the role concerned, `check` finds it once, `apply` repairs it and the proof fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from conftest import PgCleanup
from helpers import db_conninfo
from test_check import check_json
from test_core import Split, make_split


def ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def works(conn: psycopg.Connection[Any], statement: str | sql.Composable, *params: Any) -> Any:
    """Run `statement`; its first value, or the exception PostgreSQL raised (the proof failed)."""
    try:
        cur = conn.execute(statement, params or None)  # type: ignore[arg-type]
        row = cur.fetchone() if cur.description else None
        return row[0] if row else True
    except psycopg.Error as exc:
        return exc


def denied(result: Any) -> bool:
    return isinstance(result, psycopg.errors.InsufficientPrivilege)


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Iterator[Split]:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    with s.login(s.owner) as owner:
        owner.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        owner.execute("CREATE TABLE child (id serial PRIMARY KEY, pid int NOT NULL REFERENCES parent)")
    s.apply()  # grants on the new tables
    yield s


def test_grants_settings_and_memberships_outside_are_found_and_repaired(  # noqa: C901 (one scenario, checks in order)
    split: Split, pg_version: int, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    app, ro, owner, db = split.app, split.readonly, split.owner, split.database
    other = pg_cleanup.database(unique_name("other"))
    with psycopg.connect(split.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident(other)))
        admin.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(ident(other), ident(app)))
        admin.execute(sql.SQL("GRANT pg_execute_server_program TO {}").format(ident(owner)))
    with split.admin_db() as adb:
        adb.execute(sql.SQL("GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO {}").format(ident(ro)))
        adb.execute(sql.SQL("GRANT SELECT ON pg_catalog.pg_authid TO {}").format(ident(ro)))
        adb.execute("CREATE FOREIGN DATA WRAPPER w_outside")
        adb.execute("CREATE SERVER s_outside FOREIGN DATA WRAPPER w_outside")
        adb.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER s_outside TO {}").format(ident(app)))
        lo = adb.execute("SELECT lo_from_bytea(0, 'secret')").fetchone()[0]  # type: ignore[index]
        adb.execute(sql.SQL("GRANT SELECT, UPDATE ON LARGE OBJECT {} TO {}").format(sql.Literal(lo), ident(app)))
        adb.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET session_replication_role = replica").format(ident(app), ident(db))
        )
        adb.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT CREATE ON SCHEMAS TO {}").format(
                ident(owner), ident(app)
            )
        )
        # no proof for these two (PUBLIC can use both anyway): they are found and repaired all the same
        adb.execute("CREATE SCHEMA elsewhere")
        adb.execute("CREATE DOMAIN elsewhere.positive AS int CHECK (VALUE > 0)")
        adb.execute(sql.SQL("GRANT USAGE ON DOMAIN elsewhere.positive TO {}").format(ident(app)))
        adb.execute(sql.SQL("GRANT USAGE ON LANGUAGE plpgsql TO {}").format(ident(ro)))
        # a database setting: large objects' privileges stop being checked for every session
        adb.execute(sql.SQL("ALTER DATABASE {} SET lo_compat_privileges = on").format(ident(db)))
        adb.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA elsewhere GRANT SELECT ON TABLES TO {}").format(
                ident(owner), ident(ro)
            )
        )
        if pg_version >= 15:
            adb.execute(sql.SQL("GRANT SET ON PARAMETER session_replication_role TO {}").format(ident(ro)))
        if pg_version >= 16:  # ADMIN OPTION alone: no inherited rights, no SET ROLE, yet a path
            adb.execute(
                sql.SQL("GRANT pg_read_server_files TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(
                    ident(owner)
                )
            )
        if pg_version >= 18:
            adb.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT SELECT, UPDATE ON LARGE OBJECTS TO {}").format(
                    ident(owner), ident(app)
                )
            )

    def proofs() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with split.login(ro) as r:
            out["ro reads a server file"] = works(r, "SELECT pg_read_file('PG_VERSION')")
            out["ro reads password verifiers"] = works(r, "SELECT count(rolpassword) FROM pg_catalog.pg_authid")
            out["ro reads a large object it was never granted"] = works(r, "SELECT lo_get(%s::oid)", lo)
            if pg_version >= 15:
                out["ro disables triggers"] = works(r, "SET session_replication_role = replica")
        with split.login(app, dbname=other) as a:
            out["app creates in another database"] = works(a, "CREATE SCHEMA app_was_here")
            if not isinstance(out["app creates in another database"], Exception):
                a.execute("DROP SCHEMA app_was_here")
        with split.login(app) as a:
            out["app maps itself to a foreign server"] = works(
                a, "CREATE USER MAPPING FOR CURRENT_USER SERVER s_outside"
            )
            if not isinstance(out["app maps itself to a foreign server"], Exception):
                a.execute("DROP USER MAPPING FOR CURRENT_USER SERVER s_outside")
            out["app writes a large object"] = works(a, "SELECT lo_put(%s::oid, 0, 'x')", lo)
            # the role setting turns foreign keys off for every session of app
            out["app inserts an orphan row"] = works(a, "INSERT INTO child (pid) VALUES (424242) RETURNING id")
        with split.login(owner) as o:
            out["the migration runs a program"] = works(o, "COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'")
            if pg_version >= 16:
                # it grants itself the membership, reads a server file, and covers its tracks
                took = works(o, sql.SQL("GRANT pg_read_server_files TO {}").format(ident(owner)))
                if not isinstance(took, Exception):
                    took = works(o, sql.SQL("COPY parent FROM {}").format(sql.Literal(f"{datadir}/PG_VERSION")))
                    o.execute("TRUNCATE parent CASCADE")
                    o.execute(sql.SQL("REVOKE pg_read_server_files FROM {}").format(ident(owner)))
                out["the owner grants itself pg_read_server_files"] = took
            if pg_version >= 18:
                made = o.execute("SELECT lo_from_bytea(0, 'mine')").fetchone()[0]  # type: ignore[index]
                out["owner_lo"] = made
                with split.login(app) as a:
                    out["app writes the owner's new large object"] = works(a, "SELECT lo_put(%s::oid, 0, 'x')", made)
            o.execute("CREATE SCHEMA later")
            try:
                with split.login(app) as a:
                    out["app creates in the owner's new schema"] = works(a, "CREATE TABLE later.mine (x int)")
            finally:
                o.execute("DROP SCHEMA later CASCADE")
        return out

    with psycopg.connect(split.admin_dsn, autocommit=True) as admin:
        datadir = admin.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
    before = proofs()
    assert all(not isinstance(v, Exception) for v in before.values()), before
    with split.admin_db() as adb:
        adb.execute("DELETE FROM child WHERE pid = 424242")

    code, data = check_json(split)
    assert code == 1
    found = sorted((f["rule"], f["object"], f["role"]) for f in data["findings"])
    expected = [
        ("drift.revoke", "function pg_catalog.pg_read_file(text)", ro),
        ("drift.revoke", "table pg_catalog.pg_authid", ro),
        ("drift.revoke", f"database {other}", app),
        ("drift.revoke", "foreign server s_outside", app),
        ("drift.revoke", f"large object {lo}", app),
        ("drift.revoke", "domain elsewhere.positive", app),
        ("drift.revoke", "language plpgsql", ro),
        ("drift.role-setting", f"setting lo_compat_privileges of database {db}", None),
        (
            "drift.default-privileges",
            f"default privileges of {owner} on tables in schema elsewhere",
            ro,
        ),  # writing needs both: one REVOKE
        ("drift.role-setting", f"setting session_replication_role of role {app} in database {db}", app),
        ("drift.default-privileges", f"default privileges of {owner} on schemas", app),
        ("owner.member-of-privileged", "role pg_execute_server_program", owner),  # with its revoke as the fix
    ]
    if pg_version >= 15:
        expected.append(("drift.revoke", "parameter session_replication_role", ro))
    if pg_version >= 16:
        expected.append(("owner.member-of-privileged", "role pg_read_server_files", owner))
    if pg_version >= 18:
        expected.append(("drift.default-privileges", f"default privileges of {owner} on large objects", app))
        expected.append(("drift.revoke", f"large object {before['owner_lo']}", app))
    # one finding per problem: a direct membership of the owner is the hazard, with the revoke as its fix
    assert found == sorted(expected), found

    split.apply()
    after = proofs()
    after.pop("owner_lo", None)
    assert all(isinstance(v, Exception) for v in after.values()), after
    assert denied(after["ro reads a server file"]) and denied(after["app creates in another database"])
    assert isinstance(after["app inserts an orphan row"], psycopg.errors.ForeignKeyViolation)
    code, data = check_json(split)
    assert code == 0 and data["findings"] == [], data["findings"]


def test_detect_only_findings_are_true_and_their_fixes_run(
    split: Split, pg_version: int, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """search_path hijack, PUBLIC beyond an object's initial ACL, the owner in a server role through
    a group: check reports each once, apply leaves them (not the policy's), the printed fixes repair."""
    app, ro, owner, db = split.app, split.readonly, split.owner, split.database
    group = pg_cleanup.role(unique_name("grp"))
    with psycopg.connect(split.admin_dsn, autocommit=True) as admin:
        datadir = admin.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
        admin.execute(sql.SQL("CREATE ROLE {}").format(ident(group)))
        admin.execute(sql.SQL("GRANT pg_read_server_files TO {}").format(ident(group)))
        admin.execute(sql.SQL("GRANT {} TO {}").format(ident(group), ident(owner)))
    with split.admin_db() as adb:
        adb.execute("GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO PUBLIC")
        # a grant by another grantor: a superuser's REVOKE acts as the owner and cannot take it back
        adb.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text) TO {} WITH GRANT OPTION").format(
                ident(group)
            )
        )
        adb.execute(sql.SQL("SET ROLE {}").format(ident(group)))
        adb.execute(sql.SQL("GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text) TO {}").format(ident(ro)))
        adb.execute("RESET ROLE")
        adb.execute("CREATE SCHEMA hijack")
        adb.execute("GRANT CREATE, USAGE ON SCHEMA hijack TO PUBLIC")
        adb.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = hijack, public").format(ident(owner), ident(db))
        )
    with split.login(owner) as o:
        o.execute("CREATE FUNCTION public.greet() RETURNS text LANGUAGE sql AS $$ SELECT 'owner' $$")

    def proofs() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with split.login(ro) as r:
            out["ro lists the data directory"] = works(r, "SELECT count(*) FROM pg_ls_dir('.')")
            out["ro stats a server file"] = works(r, "SELECT size FROM pg_stat_file('PG_VERSION')")
        with split.login(app) as a:
            made = works(a, "CREATE FUNCTION hijack.greet() RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$")
        with split.login(owner) as o:
            said = works(o, "SELECT greet()")
            out["app's function answers the owner's unqualified call"] = (
                said if said == "hijacked" else RuntimeError(f"{made!r} {said!r}")
            )
            out["the migration reads a server file"] = works(
                o,
                sql.SQL("COPY parent FROM {}").format(sql.Literal(f"{datadir}/PG_VERSION")),
            )
            o.execute("TRUNCATE parent CASCADE")
        with split.admin_db() as adb:
            adb.execute("DROP FUNCTION IF EXISTS hijack.greet()")
        return out

    before = proofs()
    assert all(not isinstance(v, Exception) for v in before.values()), before

    code, data = check_json(split)
    mine = [
        f
        for f in data["findings"]
        if f["rule"] in ("outside.grant", "settings.writable-search-path", "owner.member-of-privileged")
    ]
    assert sorted((f["rule"], f["object"], f["role"]) for f in mine) == [
        ("outside.grant", "function pg_catalog.pg_ls_dir(text)", "PUBLIC"),
        ("outside.grant", "function pg_catalog.pg_stat_file(text)", ro),
        ("owner.member-of-privileged", "role pg_read_server_files", owner),
        ("settings.writable-search-path", "schema hijack", owner),
    ], data["findings"]
    assert all("detect-only" in f["message"] for f in mine if f["rule"] != "owner.member-of-privileged")
    assert f"through {group}" in next(f["message"] for f in mine if f["rule"] == "owner.member-of-privileged")
    split.apply()
    assert all(not isinstance(v, Exception) for v in proofs().values()), "apply changed what is not the policy's"

    with split.admin_db() as adb:
        for f in mine:
            for statement in f["fix"].split("; "):
                adb.execute(statement)
    after = proofs()
    assert all(isinstance(v, Exception) for v in after.values()), after
    code, data = check_json(split)
    assert code == 0 and data["findings"] == [], data["findings"]


def test_user_mapping_that_borrows_the_owners_login(
    split: Split, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """A foreign table the policy lets app read, and a mapping that logs app in as the owner on the
    remote side: app reads what only the owner may read there."""
    app, owner = split.app, split.owner
    other = pg_cleanup.database(unique_name("remote"))
    params = conninfo_to_dict(split.admin_dsn)
    with psycopg.connect(split.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(ident(other)))
    with psycopg.connect(db_conninfo(split.admin_dsn, other), autocommit=True) as rdb:
        rdb.execute("CREATE TABLE secret (x text)")
        rdb.execute("INSERT INTO secret VALUES ('only the owner reads this')")
        rdb.execute(sql.SQL("GRANT SELECT ON secret TO {}").format(ident(owner)))
    with split.admin_db() as adb:
        adb.execute("CREATE SCHEMA ext")
        try:
            adb.execute("CREATE EXTENSION postgres_fdw SCHEMA ext")
        except psycopg.errors.UndefinedFile as exc:
            # the pinned binaries' postgres_fdw.so links libpq by name and the dynamic loader finds the
            # system's (Debian 12: libpq 15, too old for 16+), or none: the machine, not pgwarden
            pytest.skip(f"postgres_fdw cannot be loaded on this machine: {exc}")
        adb.execute(
            sql.SQL(
                "CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host {}, port {}, dbname {})"
            ).format(
                sql.Literal(str(params.get("host", "127.0.0.1"))), sql.Literal(str(params["port"])), sql.Literal(other)
            )
        )
        adb.execute("CREATE FOREIGN TABLE public.remote (x text) SERVER loop OPTIONS (table_name 'secret')")
    split.apply()  # the owner owns the foreign table, app may read it (its profile)
    split.assert_clean()

    def proof() -> Any:
        with split.login(app) as a:
            return works(a, "SELECT x FROM public.remote")

    assert isinstance(proof(), psycopg.Error)  # no mapping: app cannot reach the remote side
    with split.admin_db() as adb:
        adb.execute(
            sql.SQL("CREATE USER MAPPING FOR {} SERVER loop OPTIONS (user {}, password {})").format(
                ident(app), sql.Literal(owner), sql.Literal(split.passwords[owner])
            )
        )
    assert proof() == "only the owner reads this"
    code, data = check_json(split)
    (f,) = data["findings"]
    assert (f["rule"], f["role"], f["object"]) == (
        "outside.user-mapping",
        app,
        f"user mapping for {app} on server loop",
    )
    split.apply()
    assert proof() == "only the owner reads this", "apply must not drop credentials it cannot replace"
    with split.admin_db() as adb:
        adb.execute(f["fix"])
    assert isinstance(proof(), psycopg.Error)
    assert check_json(split)[1]["findings"] == []
