"""Colours on a terminal (a pseudo-terminal here), none in a pipe, with NO_COLOR or --no-color; --color forces them."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from psycopg import sql

from conftest import PgCleanup
from test_atomicity import slow_on_one_version
from test_core import Split, make_split

#: An SGR sequence that sets a foreground colour (30-37, 90-97 or 38;...): what NO_COLOR forbids.
_COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38)(?:;[0-9;]*)?m")


def _env(split: Split, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({k: v for k, v in split.env.items() if v is not None})
    env.update({"TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"}, **extra)
    return env


def _args(split: Split, *args: str) -> list[str]:
    return [sys.executable, "-m", "pgwarden", *args, "-c", str(split.path), "--dsn", split.admin_dsn]


def _on_pty(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal (stderr in a pipe, so no progress bar mixes in)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stderr is not None
    proc.stderr.read()
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def _in_pipe(argv: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120)
    return done.returncode, done.stdout


@pytest.fixture
def drifted(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup, pg_version: int
) -> Split:
    slow_on_one_version(pg_version)  # colours do not depend on the server: the newest configured one is enough
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    split.apply()
    with split.admin_db() as db:
        db.execute("CREATE TABLE items (id int)")  # owned by the admin: a high finding, a deviation
        db.execute(sql.SQL("GRANT TRUNCATE ON items TO {}").format(sql.Identifier(split.app)))
    return split


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "needle"),
    [(("check",), "HIGH"), (("probe",), "allowed"), (("report",), "deviation(s) from the policy")],
)
def test_colours_on_a_terminal_and_none_in_a_pipe_or_with_no_color(
    drifted: Split, command: tuple[str, ...], needle: str
) -> None:
    env = _env(drifted)
    code, out = _on_pty(_args(drifted, *command), env)
    assert code in (0, 1) and needle in out, out
    assert _COLOUR.search(out), f"no colour on a terminal:\n{out!r}"
    for label, (code, text) in {
        "a pipe": _in_pipe(_args(drifted, *command), env),
        "NO_COLOR": _on_pty(_args(drifted, *command), _env(drifted, NO_COLOR="1")),
        "--no-color": _on_pty(_args(drifted, "--no-color", *command), env),
    }.items():
        assert code in (0, 1) and needle in text, (label, text)
        assert "\x1b[" not in text, f"escape codes with {label}:\n{text!r}"
    code, forced = _in_pipe(_args(drifted, "--color", *command), env)
    assert _COLOUR.search(forced), f"--color in a pipe gave no colour:\n{forced!r}"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out).replace("\r\n", "\n")
    _, piped = _in_pipe(_args(drifted, *command), env)
    assert plain.split("\n")[:12] == piped.split("\n")[:12]  # the same aligned table, coloured or not


@pytest.mark.slow
def test_check_colours_each_severity(drifted: Split) -> None:
    code, out = _on_pty(_args(drifted, "check"), _env(drifted))
    assert code == 1
    assert re.search(r"\x1b\[[0-9;]*31m\s*HIGH", out), out  # high: red
    assert re.search(r"\x1b\[[0-9;]*33m\s*MEDIUM", out), out  # medium: yellow
