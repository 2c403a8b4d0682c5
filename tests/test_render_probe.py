"""Probe results as text: the SQLSTATE in brackets when the server gave one, never `[None]`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import PgCleanup
from pgwarden.policy import password_env_for
from pgwarden.probe import Attempt, ProbeResult
from pgwarden.render import probe_text
from test_core import make_split


def test_text_shows_the_sqlstate_only_when_there_is_one() -> None:
    attempts = (
        Attempt("app", "readwrite", "insert", "table public.t", True, "denied", sqlstate="42501", message="denied"),
        Attempt("app", "readwrite", "connect", "database shop", True, "denied", message="password failed"),
    )
    text = probe_text(ProbeResult("shop", "17.0", "login", attempts))
    assert "insert table public.t: denied, expected allowed [42501] denied" in text
    assert "connect database shop: denied, expected allowed: password failed" in text
    assert "[None]" not in text


def test_probe_login_without_or_with_a_wrong_password_prints_no_none(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    split.apply()
    # a password that is not set: that role's attempts are skipped and said so (the probe ran: exit 1)
    env: dict[str, str | None] = {password_env_for(split.app): None}
    result = split.cli("probe", "--login", env=env)
    assert result.exit_code == 1, str(result)
    assert "[None]" not in result.stdout, result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("UNEXPECTED")]
    app_line = next(line for line in lines if f" {split.app} connect " in line)
    assert password_env_for(split.app) in app_line and "skipped" in app_line, app_line
    # a wrong password: the probe could not run as that role (issue 22: exit 2, one error naming the login)
    env[password_env_for(split.readonly)] = "wrong"
    result = split.cli("probe", "--login", env=env)
    assert result.exit_code == 2, str(result)
    assert "[None]" not in result.stdout + result.stderr, result.stderr
    assert f"cannot log in as {split.readonly}" in result.stderr, result.stderr
