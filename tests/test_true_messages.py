"""Messages that stay true on real servers: what apply kept after a failure or Ctrl-C, connection hints."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo
from pgwarden.executor import LOCK_KEY
from test_cli_manners import LAUNCH
from test_core import Split, make_split

SRC = Path(__file__).resolve().parent.parent / "src"


@pytest.fixture
def drifted(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    """Applied, then two changes behind pgwarden's back: the app made a member of the owner (the roles
    phase revokes it) and a table created by the admin (the database phase moves it to the owner)."""
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    with s.admin_db() as db:
        db.execute("CREATE TABLE stray (id int)")
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(s.owner), sql.Identifier(s.app)))
    return s


def _member(s: Split) -> bool:
    with s.admin_db() as db:
        row = db.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (s.app, s.owner)).fetchone()
    return bool(row and row[0])


def _stray_owner(s: Split) -> str:
    with s.admin_db() as db:
        row = db.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.stray'::regclass"
        ).fetchone()
    assert row is not None
    return str(row[0])


@contextmanager
def _holding(conninfo: str, statement: str, params: tuple[Any, ...] = ()) -> Iterator[psycopg.Connection[Any]]:
    """A connection holding a lock (taken by `statement` in an open transaction) until the block ends."""
    with psycopg.connect(conninfo) as holder:
        holder.execute(statement, params)  # type: ignore[arg-type]
        try:
            yield holder
        finally:
            holder.rollback()


def _wait_blocked_by(admin_dsn: str, holder: psycopg.Connection[Any], seconds: float = 30) -> None:
    pid = holder.info.backend_pid
    deadline = time.monotonic() + seconds
    with psycopg.connect(admin_dsn, autocommit=True) as watch:
        while time.monotonic() < deadline:
            row = watch.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,))
            if row.fetchone() != (0,):
                return
            time.sleep(0.02)
    raise AssertionError("apply never waited for the lock")


def _start_apply(s: Split, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update({"PYTHONPATH": str(SRC), "NO_COLOR": "1", **{k: v for k, v in s.env.items() if v is not None}})
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "apply", "--yes", "-c", str(s.path), "--dsn", s.admin_dsn, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _error_and_hint(stderr: str) -> tuple[str, str]:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert [line for line in lines if line.startswith("error:")] == lines[-2:-1], stderr
    assert lines[-1].startswith("hint: "), stderr
    return lines[-2], lines[-1]


def test_lock_timeout_after_the_roles_phase_says_what_was_committed(drifted: Split) -> None:
    s = drifted
    with _holding(_db(s), "LOCK TABLE stray"):
        result = s.cli("apply", "--yes", "--lock-timeout", "300ms")
    assert result.exit_code == 2, str(result)
    error, hint = _error_and_hint(result.stderr)
    assert "lock could not be taken within lock_timeout" in error, error
    assert "nothing was changed" not in error, error
    assert "the database part was rolled back" in error and "had already been committed" in error, error
    assert f'REVOKE "{s.owner}" FROM "{s.app}"' in error, error
    assert "--lock-timeout" in hint
    # and that is the truth: the membership is gone, the table still belongs to the admin
    assert not _member(s)
    assert _stray_owner(s) != s.owner
    s.apply()
    assert _stray_owner(s) == s.owner


def _db(s: Split) -> str:
    from helpers import db_conninfo

    return db_conninfo(s.admin_dsn, s.database)


def test_ctrl_c_while_waiting_for_the_cluster_lock_changes_nothing(drifted: Split) -> None:
    s = drifted
    with _holding(s.admin_dsn, "SELECT pg_advisory_lock(%s)", (LOCK_KEY,)) as holder:
        proc = _start_apply(s)
        try:
            _wait_blocked_by(s.admin_dsn, holder)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    assert proc.returncode == 130, out + err
    error, hint = _error_and_hint(err)
    assert error.startswith("error: interrupted: nothing was changed"), error
    assert "pgwarden plan" in hint
    assert _member(s) and _stray_owner(s) != s.owner


def test_ctrl_c_in_the_database_phase_keeps_the_roles_phase_and_says_so(drifted: Split) -> None:
    s = drifted
    with _holding(_db(s), "LOCK TABLE stray") as holder:
        proc = _start_apply(s, "--lock-timeout", "60s")
        try:
            _wait_blocked_by(s.admin_dsn, holder)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    error, _ = _error_and_hint(err)
    assert error.startswith("error: interrupted: the database part of"), error
    assert "rolled back" in error and f'REVOKE "{s.owner}" FROM "{s.app}"' in error, error
    assert not _member(s), "the roles phase had committed"
    assert _stray_owner(s) != s.owner, "the database part was rolled back"


def _pty_apply(s: Split, answer: bytes) -> tuple[int, str]:
    """`pgwarden apply` on a terminal: wait for its question, type `answer`, return (exit, output)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update({"PYTHONPATH": str(SRC), "NO_COLOR": "1", "COLUMNS": "200"})
    env.update({k: v for k, v in s.env.items() if v is not None})
    args = [sys.executable, "-c", LAUNCH, "apply", "-c", str(s.path), "--dsn", s.admin_dsn]
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty, as in a shell
        os.execve(sys.executable, args, env)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while b"Apply these changes?" not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                output += os.read(fd, 65536)
        assert b"Apply these changes?" in output, output.decode(errors="replace")
        time.sleep(0.3)  # let it reach the read of the answer
        os.write(fd, answer)
        deadline = time.monotonic() + 30
        resent = False
        while time.monotonic() < deadline:
            if answer == b"\x03" and not resent and time.monotonic() > deadline - 20 and b"interrupted" not in output:
                # once, under heavy load, the first ^C got no answer (cause not found); a user would
                # press Ctrl-C again: send the signal it makes, once, after 10 s
                os.kill(pid, signal.SIGINT)
                resent = True
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child is gone
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        status = _reap(pid)
        os.close(fd)
    return status, output.decode(errors="replace")


def _reap(pid: int, seconds: float = 30) -> int:
    """The child's exit code; if it is still there after `seconds`, its signal state, then kill it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    state = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("Sig")]
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the child did not end: {state}")


def test_ctrl_c_and_end_of_input_at_the_question(drifted: Split) -> None:
    s = drifted
    code, out = _pty_apply(s, b"\x03")  # Ctrl-C: the terminal sends SIGINT
    assert code == 130, out
    assert "error: interrupted at the question: nothing was changed" in out and "hint: " in out, out
    assert "Traceback" not in out
    code, out = _pty_apply(s, b"\x04")  # Ctrl-D: end of input, no answer
    assert code == 2, out
    assert "error: aborted: no answer to the question (end of input); nothing was changed" in out, out
    assert "hint: " in out and "--yes" in out, out
    assert _member(s) and _stray_owner(s) != s.owner


def test_missing_database_in_the_admin_dsn_is_not_for_apply_to_create(split_applied: Split) -> None:
    s = split_applied
    from psycopg.conninfo import make_conninfo

    result = s.cli("check", dsn=make_conninfo(s.admin_dsn, dbname="pgwarden_no_such_db"))
    assert result.exit_code == 2, str(result)
    error, hint = _error_and_hint(result.stderr)
    assert "pgwarden_no_such_db" in error and "does not exist" in error, error
    assert "--dsn" in hint and "creates only the policy's database" in hint, hint


def test_connect_revoked_by_the_hardening_says_whom_to_connect_as(
    split_applied: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s = split_applied
    outsider = pg_cleanup.role(unique_name("outsider"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-outsider'").format(sql.Identifier(outsider)))
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(role_conninfo(s.admin_dsn, outsider, "pw-outsider", s.database)).close()
    result = s.cli("check", dsn=role_conninfo(s.admin_dsn, outsider, "pw-outsider", "postgres"))
    assert result.exit_code == 2, str(result)
    error, hint = _error_and_hint(result.stderr)
    assert "permission denied for database" in error, error
    assert "revoked from PUBLIC" in hint and "the admin that applied the policy" in hint, hint


def test_a_pattern_matching_no_database_has_a_hint(split_applied: Split) -> None:
    result = split_applied.cli("check", "-d", "pgwarden_nothing_*")
    assert result.exit_code == 2, str(result)
    error, hint = _error_and_hint(result.stderr)
    assert "matches no database" in error and "psql -l" in hint, (error, hint)


@pytest.fixture
def split_applied(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    return s


def test_an_interruption_mid_query_stays_an_interruption(admin_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C that lands while a catalog query is still in progress must reach the command as
    KeyboardInterrupt (exit 130, what was kept), not be replaced by the settings-restoring
    statement's "another command is already in progress" (an internal error, exit 2). Seen in
    the demo's Ctrl-C test when the signal landed in report's objects query."""
    import psycopg

    from pgwarden import fetch
    from pgwarden.rows import ObjectGroupRow

    with psycopg.connect(admin_dsn, autocommit=True) as conn:

        def interrupted(self: psycopg.Cursor[Any]) -> Any:
            conn.pgconn.send_query(b"SELECT pg_sleep(0.1)")  # the query is still running when Ctrl-C lands
            raise KeyboardInterrupt

        monkeypatch.setattr(psycopg.Cursor, "fetchall", interrupted)
        assert "objects" in fetch.QUERY_SETTINGS  # a query whose settings are put back after it
        with pytest.raises(KeyboardInterrupt):
            params = {
                "schemas": [],
                "threshold": 1,
                "owner": 0,
                "detailed": [],
                "bookkeeping": [],
                "bookkeeping_schemas": [],
            }
            fetch.fetch(conn, "objects", ObjectGroupRow, params)
        monkeypatch.undo()
        while conn.pgconn.get_result() is not None:  # let the connection close cleanly
            pass
