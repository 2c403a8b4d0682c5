"""The README's first screen and quick start, run exactly as written: the quick start's shell block
in bash on a terminal (apply asks there) against a throwaway cluster, with only the server's address
and the `...` passwords filled in; every command must succeed, `check && probe` included."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
import tomllib
from pathlib import Path

import psycopg

from conftest import PgCleanup
from test_true_messages import _reap

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER_DSN = "postgresql://postgres@db.example.com/postgres"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def quick_start() -> str:
    """The shell block that follows "Quick start" in the README."""
    after = README[README.index("Quick start") :]
    return _blocks(after)[0]


def test_the_first_screen_commands_name_what_exists() -> None:
    demo, tests = _blocks(README)[:2]
    # CI greps for the test command verbatim; both install extras the project defines
    assert tests.strip() == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest -n 2"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for command in (demo, tests):
        for extra in re.findall(r"\.\[(\w+)\]", command):
            assert extra in extras, extra
    assert demo.strip().endswith(".venv/bin/pgwarden demo")


def _run_on_a_terminal(script: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """bash -e running `script` on a pty; answers y to apply's question."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve("/bin/bash", ["bash", "-e", "-c", script], env)
    output, answered = b"", False
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if not answered and b"Apply these changes?" in output:
                time.sleep(0.3)
                os.write(fd, b"y\n")
                answered = True
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the child is gone
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        status = _reap(pid, 60)
        os.close(fd)
    return status, output.decode(errors="replace")


def test_the_quick_start_works_as_written(tmp_path: Path, admin_dsn: str, pg_cleanup: PgCleanup) -> None:
    script = quick_start()
    for role in ("sqlmigrations", "django"):
        pg_cleanup.role(role)
    pg_cleanup.database("djangosite")
    assert PLACEHOLDER_DSN in script and "pgwarden check && pgwarden probe" in script
    # fill in the placeholders: the server's address and one password per `...`
    script = script.replace(PLACEHOLDER_DSN, admin_dsn.replace("'", ""))
    count = script.count("=...")
    for n in range(count):
        script = script.replace("=...", f"=quick-start-pw-{n}", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGWARDEN_", "PG"))}
    env.update({"PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}", "NO_COLOR": "1", "COLUMNS": "200"})
    code, output = _run_on_a_terminal(script, tmp_path, env)
    assert code == 0, output
    assert "Apply these changes?" in output and "error:" not in output, output
    # the split is there: the app logs in with the exported password and cannot create a table
    conninfo = psycopg.conninfo.make_conninfo(admin_dsn, dbname="djangosite", user="django")
    with psycopg.connect(conninfo, password=f"quick-start-pw-{count - 1}") as conn:
        row = conn.execute("SELECT has_schema_privilege('public', 'CREATE')").fetchone()
    assert row == (False,)
