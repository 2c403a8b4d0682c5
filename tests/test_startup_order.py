"""check opens its admin connection while it reads the policy file: errors still come in the file's order, alone."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import write_policy
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
