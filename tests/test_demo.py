"""`pgwarden demo` end to end in a subprocess, as root and as a normal user, and its probe matrix."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pgwarden.server import PgBinaries

SRC = Path(__file__).resolve().parent.parent / "src"

# The blog post's outcome ("let's test it"), plus what pgwarden's hardening adds.
EXPECTED_ALLOWED = {
    "sqlmigrations": {"create table", "alter table", "drop table"},
    "django": {"select", "insert", "update", "delete"},
}
EXPECTED_DENIED = {
    "django": {"alter table", "drop table", "create table", "create temp table", "create schema"},
}


def _demo(
    binaries: PgBinaries, *extra: str, user: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pgwarden", "demo", "--pg-bin", str(binaries.bindir), *extra]
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(SRC), **(env or {})}
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=180, check=False)


def probe_matrix(stdout: str) -> dict[tuple[str, str], str]:
    """(role, action) -> 'allowed' / 'denied' from the probe step's text output."""
    section = stdout.split(". probe", 1)[1].split("\n=== ", 1)[0]
    matrix: dict[tuple[str, str], str] = {}
    roles: list[str] = []
    for line in section.splitlines():
        cells = [c for c in re.split(r"[\s│|]+", line.strip()) if c]
        if cells[:1] == ["action"]:
            roles = [c for c in cells[1:] if not c.startswith("(")]
        elif roles and len(cells) == len(roles) + 1 and all(c in ("allowed", "denied") for c in cells[1:]):
            for role, outcome in zip(roles, cells[1:], strict=True):
                matrix[(role, cells[0].replace("-", " ").lower())] = outcome
    return matrix


def _assert_story(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    for step in ("1. init", "2. plan", "3. apply", "5. probe", "6. report", "7. the classic accident", "8. check"):
        assert f"=== {step}" in out, out
    assert "$ pgwarden init --database djangosite --owner sqlmigrations --app django" in out
    assert "$ pgwarden apply --yes" in out
    # the accident's table is moved to the owner by the fix
    # the fix moves the accident's table to the owner (adopt --from alice, or apply); the demo itself fails if not
    assert "from alice to sqlmigrations" in out or re.search(r"blog_comment.*owned by sqlmigrations \(now alice\)", out)
    assert "\x1b[" not in out + result.stderr  # NO_COLOR and a pipe: plain text
    if "`pgwarden probe` is not available" not in out:
        matrix = probe_matrix(out)
        assert matrix, out
        for role, actions in EXPECTED_ALLOWED.items():
            for action in actions:
                assert matrix.get((role, action)) == "allowed", (role, action, matrix)
        for role, actions in EXPECTED_DENIED.items():
            for action in actions:
                assert matrix.get((role, action)) == "denied", (role, action, matrix)
    if "`pgwarden check` is not available" not in out:
        assert "$ pgwarden check" in out
        assert "=== 10. check again" in out


def test_demo_as_current_user(pg_binaries: PgBinaries) -> None:
    """The whole story exits 0, prints the post's matrix, and leaves no server or directory behind."""
    before = set(Path(tempfile.gettempdir()).glob("pgwarden-*")) | set(Path("/tmp").glob("pgwarden-*"))
    result = _demo(pg_binaries)
    _assert_story(result)
    m = re.search(r"data in (\S+?)[ ,(\n]", result.stdout)
    assert m, result.stdout
    assert not Path(m.group(1)).exists(), "the demo left its directory behind"
    after = set(Path(tempfile.gettempdir()).glob("pgwarden-*")) | set(Path("/tmp").glob("pgwarden-*"))
    assert Path(m.group(1)) not in after - before


def _normal_user() -> str | None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return None
    try:
        return pwd.getpwnam("pgwarden").pw_name  # created by the test harness when running as root
    except KeyError:
        return None


def test_demo_as_normal_user(pg_binaries: PgBinaries, tmp_path: Path) -> None:
    user = _normal_user()
    if user is None:
        pytest.skip("needs root, runuser and the unprivileged OS user 'pgwarden' to switch to a normal user")
    probe = subprocess.run(
        ["runuser", "-u", user, "--", sys.executable, "-c", "import pgwarden.cli"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"this Python or source tree cannot be used by the OS user {user}: {probe.stderr.strip()[-200:]}")
    home = tmp_path / "home"
    home.mkdir()
    shutil.chown(home, user)
    os.chmod(tmp_path, 0o755)
    result = _demo(pg_binaries, user=user, env={"HOME": str(home), "TMPDIR": "/tmp", "PGWARDEN_CACHE_DIR": str(home)})
    _assert_story(result)
    assert "running as the OS user" not in result.stdout  # a normal user runs the server itself


def test_demo_keep_then_stop(pg_binaries: PgBinaries, tmp_path: Path) -> None:
    """--keep leaves a server the printed environment can use; --stop removes it; a second --stop is a no-op."""
    import psycopg

    env = {"XDG_RUNTIME_DIR": str(tmp_path), "PGWARDEN_CACHE_DIR": str(tmp_path)}
    kept = _demo(pg_binaries, "--keep", env=env)
    try:
        assert kept.returncode == 0, kept.stdout + kept.stderr
        exports = re.findall(r"export (PGHOST=.*PGUSER=django .*)", kept.stdout)
        assert exports, kept.stdout
        params = dict(part.split("=", 1) for part in exports[0].split())
        conninfo = (
            f"host={params['PGHOST']} port={params['PGPORT']} user={params['PGUSER']} "
            f"password={params['PGPASSWORD'].strip(chr(39))} dbname={params['PGDATABASE']}"
        )
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT count(*) FROM blog_comment").fetchone() == (0,)
    finally:
        stopped = _demo(pg_binaries, "--stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped the demo server" in stopped.stdout
    again = _demo(pg_binaries, "--stop", env=env)
    assert again.returncode == 0 and "nothing to stop" in again.stderr
    assert not (tmp_path / "pgwarden" / "demo.json").exists()
