"""Secrets never in clear (log, pg_stat_statements, process list, output, errors); verifiers kept."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import PgCleanup
from helpers import CliResult, role_conninfo, run_cli, write_policy
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer


def distinctive() -> tuple[str, str]:
    """(password, the token to grep for): quotes, dollar quoting, backslash and unicode around a unique core."""
    token = "Zq" + secrets.token_hex(10)
    return f"{token}'\"$$\\é ;--", token


class Secrets:
    def __init__(
        self, tmp_path: Path, server: LocalServer, unique_name: Callable[[str], str], cleanup: PgCleanup
    ) -> None:
        self.server = server
        self.admin = server.conninfo("postgres")
        self.db = cleanup.database(unique_name("db"))
        self.owner = cleanup.role(unique_name("owner"))
        self.app = cleanup.role(unique_name("app"))
        self.ro = cleanup.role(unique_name("ro"))
        self.path = write_policy(
            tmp_path / "p.toml", database=self.db, owner=self.owner, app=[self.app], readonly=[self.ro]
        )
        self.passwords: dict[str, str] = {}
        self.tokens: list[str] = []
        for role in (self.owner, self.app, self.ro):
            pw, token = distinctive()
            self.passwords[role] = pw
            self.tokens.append(token)
        self.outputs: list[str] = []

    @property
    def env(self) -> dict[str, str | None]:
        return {password_env_for(r): p for r, p in self.passwords.items()}

    def cli(self, *args: str, dsn: str | None = None) -> CliResult:
        result = run_cli([*args, "-c", str(self.path), "--dsn", dsn or self.admin], env=self.env)
        self.outputs += [result.stdout, result.stderr]
        return result

    def leaks(self, text: str) -> list[str]:
        return [t for t in self.tokens if t in text]

    def verifiers(self) -> dict[str, str | None]:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)", (list(self.passwords),)
            ).fetchall()
        return dict(rows)


@pytest.fixture
def sec(tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Secrets:
    return Secrets(tmp_path, pg_server, unique_name, pg_cleanup)


def test_passwords_never_in_clear_anywhere(
    sec: Secrets, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    server = sec.server
    log_start = len(server.read_log().encode())
    # pg_stat_statements (preloaded by the harness) in a database of our own; the view covers every database
    stats_db = pg_cleanup.database(unique_name("stats"))
    with psycopg.connect(sec.admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(stats_db)))
    stats = make_conninfo(sec.admin, dbname=stats_db)
    with psycopg.connect(stats, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")

    # 1. a failing apply after the password statements were sent (read-only session: CREATE ROLE ... fails)
    failing = sec.cli("apply", "--yes", dsn=make_conninfo(sec.admin, options="-c default_transaction_read_only=on"))
    assert failing.exit_code == 2 and "error:" in failing.stderr and "Traceback" not in failing.stderr, str(failing)
    assert "read-only" in failing.stderr, str(failing)
    assert "SCRAM-SHA-256$" not in failing.stderr, str(failing)  # not even the verifier in an error message

    # 2. the real apply, as a subprocess, while we watch the process list
    env = {**os.environ, **{k: v for k, v in sec.env.items() if v is not None}, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgwarden",
            "apply",
            "--yes",
            "--format",
            "json",
            "-c",
            str(sec.path),
            "--dsn",
            sec.admin,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen_cmdlines, seen_child_environs = 0, 0
    cmdline_hits: list[str] = []
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                seen_cmdlines += 1
                cmdline_hits += sec.leaks(cmdline)
                # the environment of pgwarden's children (pgwarden itself reads the passwords from its own)
                if int(pid) != proc.pid and Path(f"/proc/{pid}/stat").read_text().split()[3] == str(proc.pid):
                    seen_child_environs += 1
                    cmdline_hits += sec.leaks(Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"))
            except (OSError, IndexError):
                continue  # the process ended meanwhile
        time.sleep(0.01)
    out, err = proc.communicate()
    sec.outputs += [out, err]
    assert proc.returncode == 0, out + err
    assert cmdline_hits == []

    # 3. every other output: plan in each format, verbose apply (no-op), check/probe if they exist
    for args in (
        ["plan"],
        ["plan", "--format", "json"],
        ["plan", "--format", "sql"],
        ["-v", "apply", "--yes"],
        ["apply", "--yes", "--format", "json"],
    ):
        sec.cli(*args)
    for extra in (["check"], ["probe"], ["check", "--format", "json"], ["probe", "--format", "json"]):
        sec.cli(*extra)  # exit codes are theirs to test; only the text matters here

    # 4. a wrong password given in the DSN is not echoed
    bad = make_conninfo(sec.admin, password=sec.passwords[sec.app], user=sec.app, port=1)
    result = sec.cli("plan", dsn=bad)
    assert result.exit_code == 2, str(result)
    bad_url = f"postgresql://{sec.app}:{sec.tokens[0]}@127.0.0.1:1/postgres"
    result = sec.cli("plan", dsn=bad_url)
    assert result.exit_code == 2, str(result)

    with psycopg.connect(stats, autocommit=True) as conn:
        statements = "\n".join(r[0] for r in conn.execute("SELECT query FROM pg_stat_statements"))
    log = server.read_log().encode()[log_start:].decode(errors="replace")
    outputs = "\n".join(sec.outputs)
    figures = {
        "log bytes": len(log),
        "pg_stat_statements chars": len(statements),
        "output chars": len(outputs),
        "cmdline samples": seen_cmdlines,
        "child environs": seen_child_environs,
    }
    print(f"\nsecrets: scanned {figures}")
    assert "CREATE ROLE" in log and "SCRAM-SHA-256$" in log, "the log must hold the statements we scan"
    assert "CREATE ROLE" in statements or "create role" in statements.lower(), statements[:2000]
    assert sec.leaks(log) == [], "clear-text password in the server log"
    assert sec.leaks(statements) == [], "clear-text password in pg_stat_statements"
    assert sec.leaks(outputs) == [], "clear-text password in pgwarden's output"
    assert "SCRAM-SHA-256$" not in outputs, "a verifier in pgwarden's output"

    # stored as SCRAM-SHA-256 and logging in works
    verifiers = sec.verifiers()
    assert all(v and v.startswith("SCRAM-SHA-256$") for v in verifiers.values()), verifiers
    for role, pw in sec.passwords.items():
        with psycopg.connect(role_conninfo(sec.admin, role, pw, sec.db), autocommit=True) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)


def test_unchanged_password_is_not_reset(sec: Secrets) -> None:
    assert sec.cli("apply", "--yes").exit_code == 0
    first = sec.verifiers()
    result = sec.cli("plan", "--format", "json")
    assert [s for s in result.json()["steps"] if s["action"] == "set-password"] == [], str(result)
    assert sec.cli("apply", "--yes").exit_code == 0
    assert sec.verifiers() == first  # same salt: poolers' cached SCRAM keys stay valid
    # a changed password is set, and only that one
    pw, token = distinctive()
    sec.passwords[sec.app] = pw
    sec.tokens.append(token)
    result = sec.cli("apply", "--yes", "--format", "json")
    assert result.exit_code == 0, str(result)
    after = sec.verifiers()
    assert after[sec.app] != first[sec.app]
    assert {r: v for r, v in after.items() if r != sec.app} == {r: v for r, v in first.items() if r != sec.app}
    assert sec.leaks("\n".join(sec.outputs)) == []
    with psycopg.connect(role_conninfo(sec.admin, sec.app, pw, sec.db), autocommit=True) as conn:
        conn.execute("SELECT 1")


def test_password_env_unset_keeps_password(sec: Secrets) -> None:
    assert sec.cli("apply", "--yes").exit_code == 0
    first = sec.verifiers()
    result = run_cli(["apply", "--yes", "-c", str(sec.path), "--dsn", sec.admin], env={k: None for k in sec.env})
    assert result.exit_code == 0, str(result)
    assert sec.verifiers() == first
    assert "keeps its current password" in result.stderr, str(result)


def test_run_gives_only_the_chosen_role_its_password(sec: Secrets, tmp_path: Path) -> None:
    """`pgwarden run --as ROLE`: the command gets that role's password (PGPASSWORD), never on argv,
    and none of the other roles' passwords (their PGWARDEN_PASSWORD_* variables are not passed on)."""
    assert sec.cli("apply", "--yes").exit_code == 0
    dump = tmp_path / "child.env"
    script = (
        "import os, sys, pathlib; "
        "pathlib.Path(sys.argv[1]).write_bytes(pathlib.Path('/proc/self/environ').read_bytes() + b'\\0ARGV=' "
        "+ pathlib.Path('/proc/self/cmdline').read_bytes())"
    )
    env = {**os.environ, **{k: v for k, v in sec.env.items() if v is not None}, "NO_COLOR": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pgwarden",
            "run",
            "--as",
            sec.app,
            "--no-check",
            "-c",
            str(sec.path),
            "--dsn",
            sec.admin,
            "--",
            sys.executable,
            "-c",
            script,
            str(dump),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 2 and "No such command" in proc.stderr:
        pytest.skip("`pgwarden run` does not exist yet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    child = dump.read_bytes().decode(errors="replace")
    variables = dict(item.split("=", 1) for item in child.split("\0") if "=" in item)
    app_token = sec.tokens[1]  # tokens follow (owner, app, ro)
    others = [sec.tokens[0], sec.tokens[2]]
    assert variables.get("PGPASSWORD") == sec.passwords[sec.app]
    assert app_token not in variables["ARGV"]
    assert [t for t in others if t in child] == [], "another role's password reached the command"
    assert sec.leaks(proc.stdout + proc.stderr) == []
