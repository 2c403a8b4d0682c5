"""Catalog reads made cheaper for a fleet: each part left out or read once still finds what the full read finds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli
from pgwarden.cli import load_targets
from pgwarden.fetch import BIG_CATALOG_BYTES, fetch, needs_settings, query
from pgwarden.hazards import outside_without_mappings
from pgwarden.parallel import big_enough
from pgwarden.rows import ObjectGroupRow, OutsideHazardRow
from pgwarden.session import Session
from pgwarden.shared import OutsideGrant, outside_statement, read_shared
from pgwarden.snapshot import ServerInfo
from test_check import check_json
from test_core import Split, make_split
from test_shared_cluster import _fleet, _timeless

SERVER_PARAMS: dict[str, list[str]] = {"settings": [], "schemas": []}


def _server(conn: psycopg.Connection[Any]) -> ServerInfo:
    return fetch(conn, "server", ServerInfo, SERVER_PARAMS)[0]


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Iterator[Split]:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    yield s


def _role_oid(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _foreign_servers(split: Split) -> bool:
    """What the snapshot says of the database's foreign servers (outside_acls.sql's row for them)."""
    from pgwarden.policy.load import load_policy

    with Session.open(split.admin_dsn, load_policy(split.path)) as session:
        return session.snapshot().foreign_servers


def test_user_mappings_are_read_once_the_database_has_a_foreign_server(split: Split) -> None:
    """Without a foreign server the mappings' read is left out (no mapping can exist); with one, a
    mapping that logs the access role in as the owner is found. (Using such a mapping to read as the
    owner is proved in test_outside.py with postgres_fdw, where the machine can load it.)"""
    assert not _foreign_servers(split)
    assert check_json(split)[1]["findings"] == []
    with split.admin_db() as adb:
        # a wrapper without handler or validator: enough for servers and mappings, no library to load
        adb.execute("CREATE FOREIGN DATA WRAPPER h1_w")
        adb.execute("CREATE SERVER h1_s FOREIGN DATA WRAPPER h1_w")
        adb.execute(
            sql.SQL("CREATE USER MAPPING FOR {} SERVER h1_s OPTIONS (user {})").format(
                sql.Identifier(split.app), sql.Literal(split.owner)
            )
        )
        # the access role's own session sees its mapping name the owner's login
        adb.execute(sql.SQL("GRANT USAGE ON FOREIGN SERVER h1_s TO {}").format(sql.Identifier(split.app)))
    with split.login(split.app) as app:
        options = app.execute("SELECT umoptions FROM pg_catalog.pg_user_mappings WHERE usename = current_user")
        assert options.fetchone() == ([f"user={split.owner}"],)
    with split.admin_db() as adb:
        adb.execute(sql.SQL("REVOKE USAGE ON FOREIGN SERVER h1_s FROM {}").format(sql.Identifier(split.app)))
    assert _foreign_servers(split)
    try:
        code, data = check_json(split)
        assert code == 1
        rules = {(f["rule"], f["object"]) for f in data["findings"]}
        assert rules == {("outside.user-mapping", f"user mapping for {split.app} on server h1_s")}, data
    finally:
        with split.admin_db() as adb:
            adb.execute("DROP FOREIGN DATA WRAPPER h1_w CASCADE")


def test_the_read_without_mappings_is_the_full_read_where_no_server_exists(split: Split) -> None:
    with split.admin_db() as adb:
        roles = [_role_oid(adb, split.owner), _role_oid(adb, split.app)]
        params = {"roles": roles, "access": roles[1:]}

        def both() -> tuple[OutsideHazardRow, OutsideHazardRow]:
            full = fetch(adb, "hazard_outside", OutsideHazardRow, params)[0]
            short = fetch(adb, "hazard_outside", OutsideHazardRow, params, text=outside_without_mappings())[0]
            return full, short

        full, short = both()
        assert full == short and full.schemas and full.mappings == ()
        adb.execute("CREATE FOREIGN DATA WRAPPER h1_w2; CREATE SERVER h1_s2 FOREIGN DATA WRAPPER h1_w2")
        try:
            adb.execute(sql.SQL("CREATE USER MAPPING FOR {} SERVER h1_s2").format(sql.Identifier(split.app)))
            full, short = both()
            assert [m.server for m in full.mappings] == ["h1_s2"] and short.mappings == ()
            assert _foreign_servers(split)  # so the full read is the one sent
        finally:
            adb.execute("DROP FOREIGN DATA WRAPPER h1_w2 CASCADE")


def test_the_objects_query_gives_the_same_groups_without_its_settings(split: Split) -> None:
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE t1 (id serial PRIMARY KEY); CREATE TABLE t2 (id int)")
        owner.execute("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    with split.admin_db() as adb:
        server = fetch(adb, "server", ServerInfo, {"settings": [], "schemas": ["public"]})[0]
        assert 0 < server.catalog_bytes < BIG_CATALOG_BYTES and not needs_settings(server.catalog_bytes)
        # the one measure: pg_class's size on disk, which also decides check's second connection
        size = adb.execute("SELECT pg_relation_size('pg_catalog.pg_class')").fetchone()
        assert size == (server.catalog_bytes,) and not big_enough(server)
        assert big_enough(dataclasses.replace(server, catalog_bytes=BIG_CATALOG_BYTES))
        nsp = adb.execute("SELECT 'public'::regnamespace::oid").fetchone()
        assert nsp is not None
        params = {"schemas": [nsp[0]], "threshold": 1, "owner": _role_oid(adb, split.owner), "detailed": []}
        params |= {"bookkeeping": [], "bookkeeping_schemas": []}
        work_mem = adb.execute("SHOW work_mem").fetchone()
        with_settings = fetch(adb, "objects", ObjectGroupRow, params)
        without = fetch(adb, "objects", ObjectGroupRow, params, settings=False)
        assert adb.execute("SHOW work_mem").fetchone() == work_mem  # put back after the one query
    assert with_settings == without and {g.kind for g in without} == {"table", "sequence", "routine"}
    assert needs_settings(-1) and needs_settings(BIG_CATALOG_BYTES)  # unknown or big: the settings


def test_a_database_that_loads_other_libraries_reads_its_own_superuser_parameters(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    """The superuser-only parameters are read once for a fleet; a database whose sessions load a library
    has more of them (auto_explain's), so it reads its own: a role setting of one is still a finding."""
    cfg, dbs, _owner, app = _fleet(tmp_path, admin_dsn, unique_name, pg_cleanup)
    admin_conn.execute(f"ALTER DATABASE \"{dbs[1]}\" SET session_preload_libraries = 'auto_explain'")
    admin_conn.execute(f'ALTER ROLE "{app}" IN DATABASE "{dbs[1]}" SET auto_explain.log_min_duration = 0')
    # real: the access role's sessions there run with it, and it could not set it itself
    with psycopg.connect(db_conninfo(admin_dsn, dbs[1])) as conn:
        conn.execute(f'SET SESSION AUTHORIZATION "{app}"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET auto_explain.log_min_duration = 5")
    targets = load_targets(str(cfg), None, admin_dsn, ())
    part = read_shared(admin_dsn, list(targets.values()))
    assert part is not None and part.superuser_settings is not None
    assert "auto_explain.log_min_duration" not in part.superuser_settings
    assert "session_replication_role" in part.superuser_settings
    for db in dbs:
        with psycopg.connect(db_conninfo(admin_dsn, db)) as conn:
            serves = part.serves(_server(conn), targets[db].role_names)
        assert serves == (db != dbs[1]), db
        with Session.open(admin_dsn, targets[db], part) as shared, Session.open(admin_dsn, targets[db]) as own:
            fleet_snap, own_snap = shared.snapshot(shared=True), own.snapshot()
        assert fleet_snap.superuser_settings == own_snap.superuser_settings, db
        assert fleet_snap.outside == own_snap.outside, db
        assert ("auto_explain.log_min_duration" in own_snap.superuser_settings) == (db == dbs[1]), db
    fleet = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-j", "2", "--format", "json"])
    alone = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-d", dbs[1], "--format", "json"])
    assert alone.exit_code == 1, alone
    found = {d["database"]: d for d in _timeless(fleet.json())}[dbs[1]]["findings"]
    assert found == alone.json()["findings"]
    assert any("auto_explain.log_min_duration" in str(f.get("fix")) for f in found), found


#: Grants outside the managed schemas, each with the rows outside_acls.sql must return for it:
#: (kind, ident, grantee (None: the role, 0: PUBLIC), privilege); an ident starting with "=" is the SQL
#: expression that renders it (as the server does)
OUTSIDE_CASES: list[tuple[str, list[tuple[str, str, int | None, str]]]] = [
    # a routine initdb revoked from PUBLIC (pg_init_privs holds its ACL) granted to the role, then to PUBLIC
    (
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO {r}",
        [("routine", "pg_catalog.pg_ls_dir(text)", None, "EXECUTE")],
    ),
    (
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO PUBLIC",
        [("routine", "pg_catalog.pg_ls_dir(text)", 0, "EXECUTE")],
    ),
    # ... and back to what it started with: nothing
    (
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) TO {r}; "
        "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text) FROM {r}",
        [],
    ),
    # a routine with no pg_init_privs row: its default (acldefault) is what it started with
    (
        "CREATE SCHEMA o; CREATE FUNCTION o.f(int) RETURNS int LANGUAGE sql AS 'SELECT 1'; "
        "GRANT EXECUTE ON FUNCTION o.f(int) TO {r}",
        [("routine", "o.f(integer)", None, "EXECUTE")],
    ),
    (
        "CREATE SCHEMA o; CREATE FUNCTION o.f(int) RETURNS int LANGUAGE sql AS 'SELECT 1'; "
        "REVOKE EXECUTE ON FUNCTION o.f(int) FROM PUBLIC; GRANT EXECUTE ON FUNCTION o.f(int) TO PUBLIC",
        [],
    ),
    (
        "CREATE SCHEMA o; CREATE PROCEDURE o.p(a int, INOUT b int) LANGUAGE sql AS 'SELECT 1'; "
        "GRANT EXECUTE ON PROCEDURE o.p(int, int) TO {r}",
        [("routine", "=format('o.p(%s)', pg_get_function_identity_arguments('o.p'::regproc))", None, "EXECUTE")],
    ),
    # system relations: one with a pg_init_privs row, one without (PUBLIC's entries there count as initial)
    ("GRANT SELECT ON pg_catalog.pg_authid TO {r}", [("table", "pg_catalog.pg_authid", None, "SELECT")]),
    (
        "GRANT UPDATE ON information_schema.sql_features TO {r}",
        [("table", "information_schema.sql_features", None, "UPDATE")],
    ),
    ("GRANT UPDATE ON information_schema.sql_features TO PUBLIC", []),
    (
        "REVOKE SELECT ON information_schema.sql_features FROM PUBLIC; "
        "GRANT SELECT ON information_schema.sql_features TO PUBLIC",
        [],
    ),
    # a type, a language, a schema and the database's other kinds
    ("GRANT USAGE ON TYPE pg_catalog.int4 TO {r}", [("type", "pg_catalog.int4", None, "USAGE")]),
    ("GRANT USAGE ON LANGUAGE sql TO {r}", [("language", "sql", None, "USAGE")]),
    ('CREATE SCHEMA "Odd"; GRANT CREATE ON SCHEMA "Odd" TO {r}', [("schema", '"Odd"', None, "CREATE")]),
    (
        "CREATE FOREIGN DATA WRAPPER h1_fw; GRANT USAGE ON FOREIGN DATA WRAPPER h1_fw TO {r}",
        [("foreign_data_wrapper", "h1_fw", None, "USAGE")],
    ),
    (
        "CREATE FOREIGN DATA WRAPPER h1_fw; CREATE SERVER h1_fs FOREIGN DATA WRAPPER h1_fw; "
        "GRANT USAGE ON FOREIGN SERVER h1_fs TO PUBLIC",
        [("foreign_server", "h1_fs", 0, "USAGE")],
    ),
    ("SELECT lo_create(4242); GRANT SELECT ON LARGE OBJECT 4242 TO {r}", [("large_object", "4242", None, "SELECT")]),
]


@pytest.mark.parametrize("case", range(len(OUTSIDE_CASES)))
def test_outside_grants_are_found_whatever_the_object_started_with(
    case: int, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    """outside_acls.sql explodes only the ACLs that differ from what their objects started with
    (pg_init_privs, else the default): a grant is found, an ACL set back to its start is not."""
    statement, expected = OUTSIDE_CASES[case]
    role = pg_cleanup.role(unique_name("out"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    name = pg_cleanup.database(unique_name("outside"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(db_conninfo(admin_dsn, name), autocommit=True) as conn:
        before = _outside(conn, role)
        for part in statement.split("; "):
            conn.execute(part.replace("{r}", sql.Identifier(role).as_string(conn)))
        oid = _role_oid(conn, role)
        rows = [r for r in _outside(conn, role) if r not in before]
        want = sorted((k, _rendered(conn, i), g, p) for k, i, g, p in expected)
    got = sorted((r.kind, r.ident, None if r.grantee == oid else r.grantee, r.privilege) for r in rows)
    assert got == want, statement


def _rendered(conn: psycopg.Connection[Any], ident: str) -> str:
    if not ident.startswith("="):
        return ident
    row = conn.execute(f"SELECT {ident[1:]}").fetchone()  # noqa: S608 (the test's own expressions)
    assert row is not None
    return str(row[0])


def _outside(conn: psycopg.Connection[Any], role: str) -> list[OutsideGrant]:
    server = _server(conn)
    text = outside_statement(server.version_num // 10000, query("outside_databases"))
    params = {"roles": [_role_oid(conn, role)], "schemas": [], "exclude": server.database_oid}
    rows = fetch(conn, "outside_acls", OutsideGrant, params, text=text)
    return [r for r in rows if r.kind not in ("superuser_setting", "foreign_servers")]
