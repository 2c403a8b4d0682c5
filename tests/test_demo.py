"""`pgwarden demo` end to end in a subprocess, as root and as a normal user, and its probe matrix."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.server import PgBinaries
from test_cli_manners import LAUNCH

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
    binaries: PgBinaries,
    *extra: str,
    user: str | None = None,
    env: dict[str, str] | None = None,
    python: str | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [python or sys.executable, "-m", "pgwarden", "demo", "--pg-bin", str(binaries.bindir), *extra]
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
        # check names the login outside the policy that can become the owner, and the story ends clean
        found = out.split("=== 8. check", 1)[1].split("\n=== ", 1)[0]
        assert "outside.member-of-owner" in found and "alice" in found, found
        assert "alice no longer acts as the owner" in out
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


def _usable_by(user: str, python: str) -> bool:
    probe = subprocess.run(
        ["runuser", "-u", user, "--", python, "-c", "import pgwarden.cli, psycopg, pydantic, rich"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    return probe.returncode == 0


def _venv_for(user: str, where: Path) -> str:
    """A virtual environment `user` can run, with pgwarden's dependencies (from pyproject.toml)."""
    import tomllib

    base = next((p for p in ("/usr/bin/python3.11", "/usr/bin/python3") if os.access(p, os.X_OK)), None)
    if base is None:
        pytest.skip("the OS user cannot run this Python, and there is no system Python to build a venv from")
    deps = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    made = subprocess.run([base, "-m", "venv", str(where)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot build a venv for the OS user {user}: {made.stderr.strip()[-200:]}")
    pip = subprocess.run(
        [str(where / "bin" / "pip"), "install", "-q", *deps], capture_output=True, text=True, timeout=300, check=False
    )
    if pip.returncode != 0:
        pytest.skip(f"cannot install pgwarden's dependencies for the OS user {user}: {pip.stderr.strip()[-200:]}")
    python = str(where / "bin" / "python")
    if not _usable_by(user, python):
        pytest.skip(f"the OS user {user} cannot run {python} or read the source tree {SRC}")
    return python


def test_demo_as_normal_user(pg_binaries: PgBinaries) -> None:
    user = _normal_user()
    if user is None:
        pytest.skip("needs root, runuser and the unprivileged OS user 'pgwarden' to switch to a normal user")
    python = sys.executable
    if not _usable_by(user, python):
        # This interpreter lives where the user cannot go (a pyenv under /root, say): build a venv
        # the user can run, from the system's Python, with pgwarden's runtime dependencies.
        python = _shared_venv(user)
    # pytest's own temporary directories are private to root: the user's home goes under /tmp
    home = Path(tempfile.mkdtemp(prefix="pgwarden-demo-home-"))
    try:
        os.chmod(home, 0o755)
        shutil.chown(home, user)
        result = _demo(
            pg_binaries,
            user=user,
            env={"HOME": str(home), "TMPDIR": "/tmp", "PGWARDEN_CACHE_DIR": str(home)},
            python=python,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    _assert_story(result)
    assert "running as the OS user" not in result.stdout  # a normal user runs the server itself


_VENVS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _remove_venvs() -> Iterator[None]:
    yield
    for python in _VENVS.values():
        shutil.rmtree(Path(python).parent.parent.parent, ignore_errors=True)
    _VENVS.clear()


def _shared_venv(user: str) -> str:
    """One venv per test process for the normal user (building it takes a few seconds)."""
    if user not in _VENVS:
        where = Path(tempfile.mkdtemp(prefix="pgwarden-demo-venv-"))
        os.chmod(where, 0o755)
        _VENVS[user] = _venv_for(user, where / "venv")
    return _VENVS[user]


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


# --- Ctrl-C at any moment: exit 130, the server stopped, nothing left behind ------------------------------


def _demo_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("pgwarden-*"))


def _processes_using(root: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in text:
            found.append(text)
    return found


def _interrupted_demo(binaries: PgBinaries, root: Path, after: str, delay: float) -> tuple[int, str, str]:
    """Start the demo, wait for `after` (a line of its output, or "initdb": its data directory
    appearing), wait `delay`, then Ctrl-C its process group as a terminal does."""
    import threading
    import time

    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"}
    env["TMPDIR"] = str(root)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "demo", "--pg-bin", str(binaries.bindir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if after == "initdb" and any((d / "data").exists() for d in _demo_dirs(root)):
                break
            if after != "initdb" and any(after in line for line in lines):
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the demo ended before {after!r}:\n{''.join(lines)}"
        time.sleep(delay)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # also when the test fails: the demo must clean up
        err = proc.stderr.read()  # type: ignore[union-attr]
        proc.wait(timeout=120)
        reader.join(timeout=10)
    return proc.returncode, "".join(lines), err


@pytest.mark.parametrize(
    ("after", "delay"),
    [
        ("=== Start a throwaway PostgreSQL server", 0.0),
        ("initdb", 0.0),
        ("initdb", 0.4),
        (", data in ", 0.0),
        ("$ pgwarden apply --yes", 0.05),
        ("$ pgwarden probe", 0.05),
    ],
)
def test_ctrl_c_during_the_demo_exits_130_and_leaves_nothing(after: str, delay: float) -> None:
    from conftest import PG_VERSIONS, binaries_for

    binaries = binaries_for(max(PG_VERSIONS))  # the property does not depend on the version
    root = Path(tempfile.mkdtemp(prefix="pgwarden-ctrl-c-", dir="/tmp"))
    os.chmod(root, 0o755)  # as root, the server's OS user must reach it (else the demo uses /tmp)
    try:
        code, out, err = _interrupted_demo(binaries, root, after, delay)
        assert code == 130, f"exit {code}\n{out}\n{err}"
        assert "Traceback" not in err, err
        lines = err.strip().splitlines()  # the steps' own notes come first, on stderr too
        assert [line for line in lines if line.startswith("error:")] == lines[-2:-1], err
        assert lines[-2].startswith("error: interrupted: ") and "nothing is left behind" in lines[-2], err
        assert lines[-1].startswith("hint: "), err
        assert _demo_dirs(root) == [], f"left behind: {_demo_dirs(root)}\n{out}\n{err}"
        assert _processes_using(root) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
