"""The CLI without a server: help, version, init, exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from helpers import CliResult, run_cli
from pgwarden import __version__
from pgwarden.cli import cli
from pgwarden.policy import load_policy

UNREACHABLE = "host=127.0.0.1 port=1 user=nobody dbname=postgres connect_timeout=2"


def _one_error(result: CliResult, needle: str) -> None:
    assert result.exit_code == 2, str(result)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and needle in lines[0], str(result)
    assert all(line.startswith("hint: ") for line in lines[1:]), str(result)
    assert result.stdout == ""


def test_version_and_help() -> None:
    assert run_cli(["--version"]).stdout.strip() == f"pgwarden {__version__}"
    result = run_cli(["--help"])
    assert result.exit_code == 0 and "Exit codes" in result.stdout
    for name in ("init", "plan", "apply"):
        assert name in result.stdout
        sub = run_cli([name, "--help"])
        assert sub.exit_code == 0 and "Usage: pgwarden " + name in sub.stdout


def test_every_option_has_help() -> None:
    ctx = click.Context(cli)
    for name in ("init", "plan", "apply"):
        command = cli.get_command(ctx, name)
        assert command is not None and command.help
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts} has no help"


def test_init_writes_a_loadable_policy_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "pgwarden.toml"
    args = [
        "init",
        "--database",
        "djangosite",
        "--owner",
        "sqlmigrations",
        "--app",
        "django",
        "--readonly",
        "bi",
        "--schema",
        "public",
        "--schema",
        "sales",
        "-o",
        str(path),
    ]
    result = run_cli(args)
    assert result.exit_code == 0, str(result)
    assert "PGWARDEN_PASSWORD_DJANGO" in result.stderr
    policy = load_policy(path)
    assert policy.database.schemas == ("public", "sales")
    assert [(a.name, a.level, a.password_env) for a in policy.access] == [
        ("django", "readwrite", "PGWARDEN_PASSWORD_DJANGO"),
        ("bi", "readonly", "PGWARDEN_PASSWORD_BI"),
    ]
    before = path.read_text()
    _one_error(run_cli(args[:-2] + ["--app", "other", "-o", str(path)]), "already exists")
    assert path.read_text() == before
    assert run_cli([*args, "--force"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--database", "d", "--owner", "o"], "at least one access role"),
        (["--database", "d", "--owner", "o" * 64, "--app", "a"], "63 bytes"),
        (["--database", "template1", "--owner", "o", "--app", "a"], "template"),
        (["--database", "d", "--owner", "o", "--app", "o"], "both owner and an access role"),
    ],
)
def test_init_rejects_bad_arguments(tmp_path: Path, args: list[str], needle: str) -> None:
    path = tmp_path / "p.toml"
    _one_error(run_cli(["init", *args, "-o", str(path)]), needle)
    assert not path.exists()


def test_commands_fail_in_one_line_before_touching_a_server(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    _one_error(run_cli(["plan", "-c", str(missing), "--dsn", UNREACHABLE]), "not found")
    path = tmp_path / "p.toml"
    assert run_cli(["init", "--database", "d", "--owner", "o", "--app", "a", "-o", str(path)]).exit_code == 0
    _one_error(run_cli(["apply", "-c", str(path), "--dsn", UNREACHABLE]), "needs confirmation")
    _one_error(run_cli(["plan", "-c", str(path), "--dsn", UNREACHABLE]), "cannot open")
    _one_error(run_cli(["plan", "-c", str(path), "--dsn", "host=x port=notaport"]), "")
    result = run_cli(["apply", "-c", str(path), "--yes", "--lock-timeout", "soon", "--dsn", UNREACHABLE])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert run_cli(["plan", "--format", "yaml", "-c", str(path)]).exit_code == 2
