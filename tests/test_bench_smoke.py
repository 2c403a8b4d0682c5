"""Smoke of the benchmark suite (bench/) at 500 and 1,000 tables, so that the bench code cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_BIN_OVERRIDE, PG_VERSIONS

REPO = Path(__file__).resolve().parent.parent
SIZES = (500, 1000)


@pytest.fixture(scope="module")
def bench_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One bench run (its own throwaway server) on the first configured version."""
    out = tmp_path_factory.mktemp("bench") / "result.json"
    stdout = run_bench(
        "bench",
        "--tables",
        ",".join(str(n) for n in SIZES),
        "--runs",
        "1",
        "--only",
        "startup,floor,plan,check,apply",
        "--json",
        str(out),
        "-q",
    )
    assert "| work | tables | median s |" in stdout  # the printed table
    data: dict[str, Any] = json.loads(out.read_text())
    data["stdout"] = stdout
    return data


def run_bench(*args: str) -> str:
    """`python -m <args>` from the repository, on the suite's first version (or its --pg-bin): a bench run,
    which must succeed; its standard output."""
    argv = [sys.executable, "-m", *args]
    if PG_BIN_OVERRIDE is not None:
        argv += ["--pg-bin", str(PG_BIN_OVERRIDE.bindir)]
    else:
        argv += ["--pg-version", str(PG_VERSIONS[0])]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def rows_by_work(data: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["work"], r["tables"]): r for r in data["rows"]}


def test_every_expected_row_is_measured(bench_result: dict[str, Any]) -> None:
    rows = rows_by_work(bench_result)
    works = [
        "floor: psql reads the ACLs",
        "floor: Python+psycopg fetch",
        "plan (compliant)",
        "plan (brown-field)",
        "check (compliant)",
        "apply (brown-field, nothing granted)",
        "apply (compliant)",
    ]
    for n in SIZES:
        for work in works:
            row = rows.get((work, n))
            assert row is not None, f"no row {work!r} at {n} tables: {sorted(rows)}"
            assert not row["skipped"], f"{work} at {n}: {row['skipped']}"
            assert row["runs"] == 1
            assert set(row["returncodes"]) <= {0, 1}, f"{work} at {n}: {row['note']}"
    for flag in ("--version", "--help"):
        assert rows[(f"pgwarden {flag}", 0)]["runs"] == 1
    # start-up to check's first statement, from the server log, shorter than the whole command
    first, whole = rows[("check start-up: spawn to first statement", 0)], rows[("check start-up: whole command", 0)]
    assert first["runs"] == whole["runs"] == 1
    assert 0 < first["seconds"] < whole["seconds"], (first, whole)
    assert "imports by the program" in first["note"] and "pgwarden.cli" in first["note"], first["note"]


def test_numbers_are_sane(bench_result: dict[str, Any]) -> None:
    sizes = {s["tables"]: s for s in bench_result["sizes"]}
    assert set(sizes) == set(SIZES)
    for n in SIZES:
        objects = sizes[n]["objects"]
        assert objects["tables"] + objects.get("partitioned", 0) == n  # N tables, some partitioned
        assert objects["sequences"] > n * 0.9
    for row in bench_result["rows"]:
        if row["skipped"]:
            continue
        assert 0 < row["seconds"] < 120, row
        assert 5 < row["max_rss_mb"] < 2000, row
        if row["tables"]:
            assert row["statements"] is not None and row["statements"] >= 1, row
            assert row["sql_seconds"] is not None and row["sql_seconds"] >= 0, row
    rows = rows_by_work(bench_result)
    assert rows[("floor: psql reads the ACLs", 1000)]["statements"] == 1
    # A compliant database needs nothing: plan says 0 steps, apply executes 0 changes.
    assert rows[("plan (compliant)", 1000)]["note"] == "0 steps"
    assert rows[("apply (compliant)", 1000)]["note"] == "0 executed"
    assert rows[("plan (brown-field)", 1000)]["note"] != "0 steps"


@pytest.mark.parametrize("work", ["plan (compliant)", "plan (brown-field)", "check (compliant)"])
def test_inspection_statements_do_not_grow_with_tables(bench_result: dict[str, Any], work: str) -> None:
    rows = rows_by_work(bench_result)
    small, big = (rows[(work, n)]["statements"] for n in SIZES)
    assert small == big, f"{work}: {small} statements at {SIZES[0]} tables, {big} at {SIZES[1]}"
    # check's count: 20 until roles, memberships, passwords and role settings were one statement, 15 until
    # the objects query of a small catalog went without its two settings statements (fetch.needs_settings),
    # 13 + 1 since a single database's check asks pg_class's size first (pgwarden.parallel: a big
    # catalog's hazard reads go on a second connection)
    assert big <= 14
