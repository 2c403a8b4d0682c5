"""Start-up: `pgwarden check` imports only what it uses (no report, probe, HTML or Markdown renderer, no
access model without exceptions), and its first statement waits for none of the planners."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

POLICY = """
version = 2
owner = {name = "app_owner"}
roles = [{name = "app_rw"}]
[[databases]]
name = "app"
schemas = ["public"]
grants = [{role = "app_rw", profile = "readwrite", schemas = ["public"]}]
"""

#: What check never needs: other commands' renderers and engines.
NEVER = (
    "pgwarden.report",
    "pgwarden.render.html",
    "pgwarden.render.markdown",
    "pgwarden.render.report_text",
    "pgwarden.render.probe",
    "pgwarden.render.plan",
    "pgwarden.probe.run",
    "pgwarden.probe.prober",
    "pgwarden.access.model",  # the effective-access model: only for a policy with exceptions
    "pgwarden.generate",
    "pgwarden.apply",
)


def _imports(tmp_path: Path, *args: str) -> tuple[int, list[tuple[int, str]], str]:
    """(exit code, [(indent, module)] in import order, stderr) of one CLI run under -X importtime."""
    policy = tmp_path / "pgwarden.toml"
    policy.write_text(POLICY, encoding="utf-8")
    # port 1: nothing listens there, so check fails at its connection (exit 2), after its start-up
    argv = [sys.executable, "-X", "importtime", "-m", "pgwarden", *args, "-c", str(policy)]
    argv += ["--dsn", "host=127.0.0.1 port=1 dbname=postgres connect_timeout=5"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
    found = [(len(m[0]), m[1]) for m in re.findall(r"^import time:\s+\d+ \|\s+\d+ \|( +)(\S+)$", out.stderr, re.M)]
    return out.returncode, found, out.stderr


def test_check_imports_no_other_commands_modules(tmp_path: Path) -> None:
    code, found, stderr = _imports(tmp_path, "check")
    assert code == 2 and "error: cannot open the admin connection" in stderr, stderr[-2000:]
    modules = {m for _, m in found}
    assert "pgwarden.session" in modules and "pgwarden.policy" in modules  # what it does need, seen
    loaded = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NEVER))
    assert not loaded, f"check imported {loaded}"


def test_the_planners_and_rules_are_not_imported_before_the_connection() -> None:
    """What check needs after its first queries (planners, rules, renderer) is imported by a background
    thread, not on the way to the connection: never by importing the session or pgwarden.check, nor by
    opening the session (which would put their cost before the first statement). Asked of a fresh
    interpreter with no background thread, whose imports would interleave with these."""
    script = (
        "import sys\n"
        "import pgwarden.check\n"
        "from pgwarden.policy import build_policy\n"
        "from pgwarden.session import Session\n"
        "try:\n"
        "    Session.open('host=/nonexistent-pgwarden-socket-dir connect_timeout=1',"
        " build_policy(database='x', owner='o', app=['a']))\n"
        "except Exception as exc:\n"
        "    assert type(exc).__name__ == 'ConnectError', exc\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('pgwarden.'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = out.stdout.split()
    assert "pgwarden.session" in loaded and "pgwarden.connect" in loaded  # what it does need, seen
    heavy = [
        m for m in loaded if m.startswith(("pgwarden.plan", "pgwarden.rules", "pgwarden.hazards", "pgwarden.render"))
    ]
    assert not heavy, f"imported on the way to the first statement: {heavy}"
