"""One exit-code story: `pgwarden` alone is a request for help (0); a wrong password for probe --login
is "could not run" (2, naming the login); output closed early is 2 with a word on stderr, saying
whether apply had committed; a Ctrl-C after apply's commit says what was kept (130); an empty
password variable is refused (2) rather than leaving a role without a password."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli, write_policy
from test_cli_manners import LAUNCH

SRC = Path(__file__).resolve().parent.parent / "src"


def test_pgwarden_alone_prints_its_help_and_exits_0() -> None:
    result = run_cli([])
    assert result.exit_code == 0, str(result)
    assert "Usage: pgwarden" in result.stdout and "PGWARDEN_DSN" in result.stdout
    assert "error" not in result.stderr


def test_the_top_level_help_speaks_version_2() -> None:
    text = run_cli(["--help"]).stdout
    for words in ("several databases", "profile", "group", "$PGWARDEN_DSN", "$PGWARDEN_PASSWORD_", "130"):
        assert words in " ".join(text.split()), words


@pytest.fixture
def split(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> tuple[Path, str, str, str, str]:
    owner, app = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("app"))
    db = pg_cleanup.database(unique_name("db"))
    path = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    return path, admin_dsn, owner, app, db


def _env_of(owner: str, app: str, **extra: str) -> dict[str, str]:
    from pgwarden.policy import password_env_for

    return {password_env_for(owner): "owner-pw", password_env_for(app): "app-pw", **extra}


def test_probe_login_with_a_wrong_password_could_not_run(split: tuple[Path, str, str, str, str]) -> None:
    from pgwarden.policy import password_env_for

    path, dsn, owner, app, _ = split
    env = _env_of(owner, app)
    assert run_cli(["apply", "--yes", "-c", str(path), "--dsn", dsn], env=env).exit_code == 0
    wrong = {**env, password_env_for(app): "not-the-password"}
    result = run_cli(["probe", "--login", "-c", str(path), "--dsn", dsn], env=wrong)
    assert result.exit_code == 2, str(result)
    error, hint = result.stderr.strip().splitlines()[:2]
    assert error.startswith("error: cannot log in as " + app) and password_env_for(app) in error
    assert hint.startswith("hint: ") and "UNEXPECTED" not in result.stdout
    # with the right password it runs and passes
    assert run_cli(["probe", "--login", "-c", str(path), "--dsn", dsn], env=env).exit_code == 0


def test_an_empty_password_variable_is_refused_and_changes_nothing(split: tuple[Path, str, str, str, str]) -> None:
    from pgwarden.policy import password_env_for

    path, dsn, owner, app, _ = split
    env = _env_of(owner, app, **{password_env_for(app): ""})
    for command in (["plan"], ["apply", "--yes"]):
        result = run_cli([*command, "-c", str(path), "--dsn", dsn], env=env)
        assert result.exit_code == 2, str(result)
        assert f"${password_env_for(app)} is set but empty" in result.stderr and "hint: " in result.stderr
    with psycopg.connect(dsn) as conn:  # nothing was created: apply stopped before the roles phase
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (app,)).fetchone() == (0,)


def _closed_stdout(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a standard output whose reader is already gone (`| head` that has exited)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-c", LAUNCH, *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env, "PYTHONPATH": str(SRC), "NO_COLOR": "1"},
            timeout=120,
        )
    finally:
        os.close(write)


def test_a_closed_output_is_exit_2_and_says_whether_apply_committed(split: tuple[Path, str, str, str, str]) -> None:
    path, dsn, owner, app, db = split
    env = _env_of(owner, app)
    plan = _closed_stdout(["plan", "-c", str(path), "--dsn", dsn], env)
    assert plan.returncode == 2, plan.stderr
    assert "broken pipe" in plan.stderr and "nothing was changed" in plan.stderr
    applied = _closed_stdout(["apply", "--yes", "-c", str(path), "--dsn", dsn], env)
    assert applied.returncode == 2, applied.stderr
    assert "broken pipe" in applied.stderr and "the change was applied" in applied.stderr
    assert f"committed in database {db}" in applied.stderr and "Exception ignored" not in applied.stderr
    # and it was: the database exists, owned by the owner
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db,)).fetchone()
    assert row == (owner,)


def test_a_ctrl_c_after_apply_committed_says_the_change_was_kept(
    split: tuple[Path, str, str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pgwarden.render as render

    path, dsn, owner, app, db = split

    def interrupted(*args: object) -> None:  # Ctrl-C while the result is printed, after COMMIT
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "render_apply", interrupted)
    result = run_cli(["apply", "--yes", "-c", str(path), "--dsn", dsn], env=_env_of(owner, app))
    assert result.exit_code == 130, str(result)
    assert "after the change was committed" in result.stderr and f"committed in database {db}" in result.stderr
    with psycopg.connect(db_conninfo(dsn, db)) as conn:  # kept indeed
        query = sql.SQL("SELECT has_database_privilege({}, current_database(), 'CONNECT')")
        assert conn.execute(query.format(sql.Literal(app))).fetchone() == (True,)


def test_a_connection_the_server_ends_is_one_error_line_not_an_internal_error() -> None:
    from pgwarden.cli import _KEPT, kept, lost_connection

    gone = psycopg.OperationalError(
        "consuming input failed: server closed the connection unexpectedly\n\tThis probably means the server"
    )
    assert lost_connection(ValueError("a bug")) is None  # still reported as a bug
    _KEPT.clear()
    try:
        err = lost_connection(gone)
        assert err is not None and err.exit_code == 2
        assert err.message == (
            "the connection to the server was lost: consuming input failed: server closed the connection unexpectedly"
        )
        assert err.hint is not None and "rolled back" in err.hint
        kept("2 change(s) committed in database shop")
        err = lost_connection(gone)
        assert err is not None and err.message.endswith(
            "; committed before it and kept: 2 change(s) committed in database shop"
        )
    finally:
        _KEPT.clear()
