"""The throwaway-server machinery itself: binaries, startup, auth, the OS user, lifecycle."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgwarden.errors import ServerError
from pgwarden.server import LocalServer, PgBinaries, find_binaries


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            real, effective, *_ = line.split()[1:]
            assert real == effective
            return int(effective)
    raise AssertionError(f"no Uid line for pid {pid}")


def test_server_reports_its_major_version(
    pg_server: LocalServer, admin_conn: psycopg.Connection[Any], pg_version: int
) -> None:
    row = admin_conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert int(row[0]) // 10000 == pg_version == pg_server.binaries.version
    assert pg_server.binaries.full_version.startswith(f"{pg_version}.")


def test_scram_rejects_wrong_password_and_accepts_right_one(
    pg_server: LocalServer, admin_conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_server.conninfo(password="not-the-password"), connect_timeout=10)
    with psycopg.connect(pg_server.conninfo(), connect_timeout=10) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (pg_server.superuser,)
    # Over the unix socket as well, and never trust: every pg_hba line is scram-sha-256.
    with psycopg.connect(
        host=str(pg_server.socket_dir),
        port=pg_server.port,
        user=pg_server.superuser,
        password=pg_server.password,
        dbname="postgres",
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    methods = {r[0] for r in admin_conn.execute("SELECT auth_method FROM pg_hba_file_rules")}
    assert methods == {"scram-sha-256"}
    verifier = admin_conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = current_user").fetchone()
    assert verifier is not None and verifier[0].startswith("SCRAM-SHA-256$")


def test_server_processes_do_not_run_as_root(pg_server: LocalServer, admin_conn: psycopg.Connection[Any]) -> None:
    row = admin_conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    postmaster_pid = int((pg_server.datadir / "postmaster.pid").read_text().split()[0])
    if os.geteuid() == 0:
        assert pg_server.os_user is not None
        expected = pwd.getpwnam(pg_server.os_user).pw_uid
        assert expected != 0
    else:
        assert pg_server.os_user is None
        expected = os.getuid()
    assert _uid_of(row[0]) == expected
    assert _uid_of(postmaster_pid) == expected


def test_log_statement_and_preloaded_libraries(
    pg_server: LocalServer, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str]
) -> None:
    marker = unique_name("logmark")
    admin_conn.execute(sql.SQL("SELECT {}").format(sql.Literal(marker)))
    assert marker in pg_server.read_log()
    row = admin_conn.execute("SHOW shared_preload_libraries").fetchone()
    assert row is not None and "pg_stat_statements" in row[0]
    assert pg_server.password not in pg_server.read_log()


def test_find_binaries_with_a_bogus_path_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ServerError) as info:
        find_binaries(pg_bin=tmp_path / "nowhere")
    assert "not a usable PostgreSQL bin directory" in str(info.value)
    assert info.value.hint is not None and "install PostgreSQL" in info.value.hint


def test_find_binaries_checks_the_version_of_an_explicit_path(pg_binaries: PgBinaries) -> None:
    assert find_binaries(pg_bin=pg_binaries.bindir) == pg_binaries
    other = 13 if pg_binaries.version != 13 else 14
    with pytest.raises(ServerError, match=f"not {other}"):
        find_binaries(other, pg_bin=pg_binaries.bindir)


@pytest.mark.pg
def test_lifecycle_stop_is_idempotent_restart_and_cleanup(pg_binaries: PgBinaries) -> None:
    server = LocalServer(pg_binaries, password='it\'s a "secret" with spaces')
    try:
        server.start()
        server.start()  # no-op when running
        with psycopg.connect(server.conninfo(), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.restart()
        assert server.is_running
        with psycopg.connect(server.conninfo(), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.stop()
        server.stop()
        assert not server.is_running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.conninfo(), connect_timeout=3)
    finally:
        server.cleanup()
    server.cleanup()
    assert not server.base_dir.exists()


@pytest.mark.minversion(16)
def test_minversion_marker_skips_older_servers(pg_version: int) -> None:
    assert pg_version >= 16


@pytest.mark.maxversion(15)
def test_maxversion_marker_skips_newer_servers(pg_version: int) -> None:
    assert pg_version <= 15


def test_pg_cleanup_drops_databases_and_roles(
    admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: Any
) -> None:
    role = pg_cleanup.role(unique_name("Owner Röle"))
    db = pg_cleanup.database(unique_name("db"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role)))
    table = sql.Identifier(unique_name("t"))
    admin_conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(table))
    admin_conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(role)))
    admin_conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))
    pg_cleanup.run()
    assert admin_conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchall() == []
    assert admin_conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchall() == []
