"""CI runs lint and types before the tests, and fails on any error (no server needed)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_lint_and_types_before_the_readme_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^set -euo pipefail$", run, re.MULTILINE), "without set -e a lint error would not stop CI"
    lines = [line.strip() for line in run.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    lint = [
        ".venv/bin/ruff check src tests",
        ".venv/bin/ruff format --check src tests",
        ".venv/bin/mypy src",
    ]
    tests = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest -n 2"
    assert tests in lines, ".ci/run no longer runs the README's test command verbatim"
    for command in lint:
        assert command in lines, f".ci/run does not run {command!r}"
        assert lines.index(command) < lines.index(tests), f"{command!r} must run before the tests"
    install = next(i for i, line in enumerate(lines) if "'.[test,dev]'" in line and "pip install" in line)
    assert install < lines.index(lint[0]), "the dev extra (ruff, mypy) must be installed before lint runs"
