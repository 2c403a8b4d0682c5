"""check opens its admin connection while it reads the policy file: errors still come in the file's order, alone."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import write_policy
from pgwarden.connect import APPLICATION_NAME, EarlyAdmin, connect, conninfo_for
from pgwarden.errors import ConnectError
from test_cli_manners import pgwarden

POLICY_ERROR = "error: {path}:1: invalid TOML"
REFUSED_HINT = "hint: is the server running and reachable? check host and port (--dsn, PGHOST, PGPORT)"


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel does) and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        yield silent.getsockname()[1]


def bad_policy(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.toml"
    bad.write_text("[database\nname = 'x'\n")
    return bad


def test_a_bad_policy_file_is_reported_alone_when_the_server_refuses(tmp_path: Path, closed_port: int) -> None:
    bad = bad_policy(tmp_path)
    result = pgwarden("check", "-c", str(bad), "--dsn", f"host=127.0.0.1 port={closed_port} user=x dbname=postgres")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(POLICY_ERROR.format(path=bad)), result.stderr
    assert "docs/policy.md" in lines[1] and "connection" not in result.stderr, result.stderr


def test_a_bad_policy_file_is_reported_at_once_when_the_server_does_not_answer(
    tmp_path: Path, silent_server: int
) -> None:
    # the connection being opened meanwhile would wait 30 s: the file's error does not wait for it
    bad = bad_policy(tmp_path)
    dsn = f"host=127.0.0.1 port={silent_server} user=x dbname=postgres connect_timeout=30"
    started = time.monotonic()
    result = pgwarden("check", "-c", str(bad), "--dsn", dsn)
    assert time.monotonic() - started < 15
    assert result.returncode == 2 and result.stderr.splitlines()[0].startswith(POLICY_ERROR.format(path=bad))
    assert len(result.stderr.splitlines()) == 2, result.stderr


def test_a_good_policy_file_and_a_refusing_server_give_the_connection_error(tmp_path: Path, closed_port: int) -> None:
    policy = write_policy(tmp_path / "p.toml", database="d", owner="o", app=["a"])
    result = pgwarden("check", "-c", str(policy), "--dsn", f"host=127.0.0.1 port={closed_port} user=x dbname=postgres")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: cannot open the admin connection: connection failed: ") and (
        "Connection refused" in lines[0]
    ), result.stderr
    assert lines[1] == REFUSED_HINT


def test_a_malformed_dsn_is_reported_after_the_policy_file(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p.toml", database="d", owner="o", app=["a"])
    dsn = "host=127.0.0.1 bogus=x"
    result = pgwarden("check", "-c", str(policy), "--dsn", dsn)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        'error: invalid connection string: invalid connection option "bogus"',
        "hint: see --dsn in `pgwarden --help`",
    ], result.stderr
    bad = bad_policy(tmp_path)
    both = pgwarden("check", "-c", str(bad), "--dsn", dsn)
    assert both.returncode == 2 and both.stderr.splitlines()[0].startswith(POLICY_ERROR.format(path=bad))
    assert "connection" not in both.stderr, both.stderr


def test_the_environment_says_where_to_connect(tmp_path: Path, closed_port: int) -> None:
    # no --dsn: PGWARDEN_DSN, as before the connection opened early
    policy = write_policy(tmp_path / "p.toml", database="d", owner="o", app=["a"])
    dsn = f"host=127.0.0.1 port={closed_port} user=x dbname=postgres"
    result = pgwarden("check", "-c", str(policy), env={"PGWARDEN_DSN": dsn})
    assert result.returncode == 2 and f"port {closed_port} failed" in result.stderr, result.stderr


def pgwarden_backends(admin_conn: Any) -> int:
    row = admin_conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
        (APPLICATION_NAME,),
    ).fetchone()
    return int(row[0])


def settles_to(admin_conn: Any, count: int) -> int:
    """pgwarden's backends once those whose connection was closed have gone (a backend leaves
    pg_stat_activity a moment after its client closed the connection; threads close theirs when done)."""
    deadline = time.monotonic() + 10
    while pgwarden_backends(admin_conn) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return pgwarden_backends(admin_conn)


def test_the_early_connections_reach_the_admin_database_and_the_named_target(
    admin_conn: Any, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    db = pg_cleanup.database(unique_name("db"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    before = pgwarden_backends(admin_conn)
    early = EarlyAdmin(admin_dsn, db)
    conn, names = early.take()
    with conn:
        assert db in names and "postgres" in names and conn.info.dbname == "postgres"
        target = early.take_target(db)
        assert target is not None and target.info.dbname == db
        target.close()
        assert early.take_target(db) is None  # handed out once
    other = EarlyAdmin(admin_dsn, db)
    other.take()[0].close()
    assert other.take_target("another") is None  # a wrong guess: closed, the session connects itself
    assert settles_to(admin_conn, before) == before


def test_a_dropped_early_connection_leaves_no_backend_behind(
    admin_conn: Any, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    db = pg_cleanup.database(unique_name("db"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    before = pgwarden_backends(admin_conn)
    for _ in range(3):  # dropped at once (a bad policy file), or once the thread is done (a fleet)
        EarlyAdmin(admin_dsn, db).drop()
    EarlyAdmin(admin_dsn, db).drop(wait=True)
    assert settles_to(admin_conn, before) == before


def test_the_early_connection_s_error_is_the_one_connect_gives(closed_port: int) -> None:
    dsn = f"host=127.0.0.1 port={closed_port} user=x dbname=postgres"
    with pytest.raises(ConnectError) as direct:
        connect(conninfo_for(dsn), what="the admin connection")
    with pytest.raises(ConnectError) as early:
        EarlyAdmin(dsn, "d").take()
    assert (early.value.message, early.value.hint) == (direct.value.message, direct.value.hint)
