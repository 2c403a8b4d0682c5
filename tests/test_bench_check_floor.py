"""The floor of one database's check (bench.fleet_floor's capture_one and REPLAY_ONE, bench.ab's row)."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import PgCleanup
from test_bench_smoke import run_bench
from test_core import Split, make_split

REPO = Path(__file__).resolve().parent.parent

#: REPLAY_ONE run with psycopg's Cursor.execute wrapped: argv = OUT, the replay file, the DSN. It writes
#: (connection number, sent from the main thread, query) per statement, and the rows it printed.
RECORDED_REPLAY = r"""
import pickle, sys, threading
import psycopg

seen, numbers = [], {}
execute = psycopg.Cursor.execute

def traced(self, query, params=None, **kw):
    conn = self.connection
    key = numbers.setdefault(id(conn), (len(numbers), conn))[0]
    text = query if isinstance(query, str) else query.as_string(conn)
    seen.append((key, threading.current_thread() is threading.main_thread(), text))
    return execute(self, query, params, **kw)

psycopg.Cursor.execute = traced
out = sys.argv.pop(1)
from bench.fleet_floor import REPLAY_ONE
exec(compile(REPLAY_ONE, "replay", "exec"), {"__name__": "__main__"})
with open(out, "wb") as fh:
    pickle.dump(seen, fh)
"""

#: bench.fleet_floor.capture_one in a child (bench is not a package of the installed project): argv = the
#: work directory, whether to force the second connection, then check's argv; prints what it found
CAPTURE_ONE = r"""
import dataclasses, json, sys
from pathlib import Path
from bench import fleet_floor

workdir, two, command = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:]
env = {**__import__("os").environ}
found = fleet_floor.capture_one(command, env, workdir, second_from_bytes=0 if two else None)
print(json.dumps({**dataclasses.asdict(found), "path": str(found.path)}))
"""

SNAPSHOT = re.compile(r"SET TRANSACTION SNAPSHOT ('[^']*'|\{\})")  # as sent, as in the replay file


def _same_text(query: str) -> str:
    return SNAPSHOT.sub("SET TRANSACTION SNAPSHOT <id>", query)


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, passwords=False)
    s.apply()
    with s.admin_db() as db:
        for i in range(5):
            db.execute(f"CREATE TABLE t{i} (id int, v text)")
            db.execute(f"ALTER TABLE t{i} OWNER TO {s.owner}")
    s.apply()
    return s


def _captured_per_connection(path: Path) -> tuple[list[list[str]], list[str]]:
    """The statements of the replay file per connection (main thread's), and the second connection's."""
    with path.open("rb") as fh:
        dbnames, steps, second = pickle.load(fh)
    main: dict[int, list[str]] = {}
    for index, _kind, query, *_ in steps:
        main.setdefault(index, []).append(query)
    return list(main.values()), [] if second is None else [_same_text(q) for _k, q, *_ in second[1]]


@pytest.mark.parametrize("two", [False, True], ids=["one-connection", "second-connection"])
def test_replay_sends_checks_statements_on_as_many_connections(split: Split, tmp_path: Path, two: bool) -> None:
    """The floor row sends exactly the statements check sent, connection by connection; a big
    database's second connection (forced here on a small one) imports the first's snapshot in a
    thread while the first goes on (a snapshot the first no longer exported would fail the import)."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    command = ["check", "-c", str(split.path), "--dsn", split.admin_dsn, "--format", "json"]
    argv = [sys.executable, "-c", CAPTURE_ONE, str(tmp_path), "1" if two else "0", *command]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    captured = json.loads(proc.stdout)
    main, second = _captured_per_connection(Path(captured["path"]))
    assert captured["statements"] == sum(len(c) for c in main) + len(second)
    assert captured["connections"] == len(main) + (1 if second else 0)
    if two:  # the second connection: its transaction on the first's snapshot, then its reads
        assert captured["connections"] == 3 and captured["second"] == len(second) > 2, second
        assert second[0].startswith("BEGIN") and second[1] == "SET TRANSACTION SNAPSHOT <id>", second
        assert any("pg_export_snapshot" in q for c in main for q in c)
    else:
        assert captured["second"] == 0 and not second and captured["connections"] == 2

    out = tmp_path / "replayed.pickle"
    argv = [sys.executable, "-c", RECORDED_REPLAY, str(out), captured["path"], split.admin_dsn]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout) > 0  # the rows fetched
    with out.open("rb") as fh:
        seen: list[tuple[int, bool, str]] = pickle.load(fh)
    by_conn: dict[int, list[str]] = {}
    threads: dict[int, set[bool]] = {}
    for key, in_main, query in seen:
        by_conn.setdefault(key, []).append(_same_text(query))
        threads.setdefault(key, set()).add(in_main)
    replayed_main = [q for k, q in by_conn.items() if threads[k] == {True}]
    replayed_second = [q for k, q in by_conn.items() if threads[k] == {False}]
    assert replayed_main == main
    assert replayed_second == ([second] if two else [])


def test_bench_ab_reports_the_floor_row(tmp_path: Path) -> None:
    """bench.ab at 200 tables, one round: the floor row sends as many statements as check."""
    stdout = run_bench("bench.ab", "--tables", "200", "--runs", "1", "--baseline", str(REPO / "src"))
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 9 and cells[1] == "200":
            rows[cells[0]] = cells
    floor, check = rows["floor: check's own statements, bare Python client"], rows["check (compliant) [this tree]"]
    assert float(floor[2]) > 0 and float(check[5]) > 0, (floor, check)  # check against it: "x check's statements"
    assert floor[7] == check[7] and int(floor[7]) >= 10, (floor, check)  # the same statements, from the log
    assert floor[9].startswith("2 conn., 0 on the 2nd"), floor
