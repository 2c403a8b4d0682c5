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


def test_the_planners_and_rules_are_not_imported_before_the_connection(tmp_path: Path) -> None:
    """What check needs after its first queries (planners, rules, renderer) is imported by a background
    thread, not on the way to the connection: never by the command's own imports of the session or of
    pgwarden.check (which would put their cost before the first statement)."""
    code, found, stderr = _imports(tmp_path, "check")
    assert code == 2, stderr[-2000:]
    # each import that pgwarden.session / pgwarden.check trigger is nested under them (indent > theirs)
    for top in ("pgwarden.session", "pgwarden.check"):
        at = next(i for i, (_, m) in enumerate(found) if m == top)
        indent = found[at][0]
        nested = []
        for depth, module in reversed(found[:at]):  # importtime lists a module after what it imported
            if depth <= indent:
                break
            nested.append(module)
        heavy = [
            m
            for m in nested
            if m.startswith(("pgwarden.plan", "pgwarden.rules", "pgwarden.hazards", "pgwarden.render"))
        ]
        assert not heavy, f"{top} imports {heavy} on the way to the first statement"
