"""Smoke of the fleet benchmark (bench.fleet, bench.fleet_floor) on 3 databases of 20 tables, so that it cannot rot."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from test_bench_smoke import run_bench

REPO = Path(__file__).resolve().parent.parent
DATABASES = 3


@pytest.fixture(scope="module")
def fleet_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One bench.fleet run (its own throwaway server) on the first configured version."""
    out = tmp_path_factory.mktemp("fleet") / "result.json"
    args = ["bench.fleet", "--databases", str(DATABASES), "--tables", "20", "--runs", "1", "--json", str(out)]
    stdout = run_bench(*args)
    assert "| work | median s | x bare fetch |" in stdout  # the printed table
    data: dict[str, Any] = json.loads(out.read_text())
    data["stdout"] = stdout
    return data


def test_every_row_is_measured_with_its_cpu(fleet_result: dict[str, Any]) -> None:
    rows = {r["work"]: r for r in fleet_result["rows"]}
    assert list(rows) == [
        "bare Python fetch, 8 threads",
        "psql, one database after the other",
        "floor: check's statements, bare Python client, 8 threads",
        "pgwarden check --jobs 8",
        "floor: apply's statements (compliant), bare Python client, 8 threads",
        "pgwarden apply --jobs 8 (compliant)",
    ]
    assert fleet_result["databases"] == DATABASES
    for work, row in rows.items():
        (sample,) = row["samples"]
        # the fleet is compliant before the runs (its copies given their owner and grants): apply
        # changes nothing, check finds at most the fixture's login roles without a password
        assert sample["returncode"] in ((0, 1) if work == "pgwarden check --jobs 8" else (0,)), sample["tail"]
        assert 0 < sample["seconds"] < 120
        assert sample["client_cpu"] > 0, work
        assert sample["server_cpu"] >= 0, work  # clock ticks: a short run may see none


@pytest.mark.parametrize("command", ["check", "apply"])
def test_the_floor_replays_what_the_command_sends_each_database(fleet_result: dict[str, Any], command: str) -> None:
    work = next(r for r in fleet_result["rows"] if r["work"].startswith(f"floor: {command}'s statements"))
    m = re.fullmatch(r"(\d+) statements on (\d+) connection\(s\) per database(.*)", work["note"])
    assert m is not None, work["note"]
    statements, connections, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    assert connections == 1  # a small catalog: one connection per database (no second one for the hazards)
    assert statements >= 5, work["note"]  # server, schemas, database, outside ACLs, objects at least
    assert rest == ""  # nothing per database on the admin connection (the fleet's shared read answers it)
    # the bare client read rows from every database (it prints their total)
    assert int(work["samples"][0]["tail"].split()[0]) > 0
