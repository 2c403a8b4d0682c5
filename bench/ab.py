"""`check` against its floors, and against another pgwarden, in one run: python -m bench.ab.

    python -m bench.ab --tables 10000,100000 --runs 5 --server-dir /tmp/pgwarden-bench/pg16 \\
        --baseline /tmp/main/src          # a checkout's src/ (git archive main src | tar -x -C /tmp/main)

Per size and per round, in this order (alternating, so that a change of load touches every row
alike): psql's raw ACL dump, the bare Python fetch of the same rows, the floor of check's own reads
(bench/fleet_floor.py: the statements `check` of this tree sent, captured once per size before the
rounds, replayed by a bare Python client on as many connections, a big database's second connection
in a thread through the first's exported snapshot, every row fetched), `pgwarden check` of this tree,
`check` of the baseline tree (PYTHONPATH), and start-up to the first statement (server log,
bench/startup.py): of a bare Python client (import psycopg, connect, SELECT 1: start-up's floor, to
which the start-up rows are compared in the "x Python fetch" column), then of check for both trees,
to its first statement (wherever sent) and to its first on the checked database.
Medians over the rounds; the 1-minute load average is printed per round."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import fixture, fleet_floor, startup
from bench.measure import Row, StatementLog, run
from bench.run import PY_FETCH, Context, floor_read_sql, pgwarden_argv, prepare, write_policy

#: spawn to the first statement of the least a Python client does: import psycopg, connect, send
PY_FIRST = "import sys, psycopg; psycopg.connect(sys.argv[1], autocommit=True).execute('SELECT 1')"
FIRST_FLOOR = "floor: Python+psycopg spawn to first statement"
OWN_FLOOR = "floor: check's own statements, bare Python client"


def _round(
    ctx: Context, size: fixture.Size, rows: dict[str, Row], envs: dict[str, dict[str, str]], replay: Path
) -> None:
    query = floor_read_sql(size)
    dsn = ctx.dsn(size.compliant)
    psql = ["sh", "-c", '"$0" -X -Atc "$1" "$2" > /dev/null', ctx.psql(), query, dsn]
    rows["floor: psql reads the ACLs"].samples.append(run(psql, statement_log=ctx.statement_log))
    fetch = run([sys.executable, "-c", PY_FETCH, dsn], stdin=query, statement_log=ctx.statement_log)
    rows["floor: Python+psycopg fetch"].samples.append(fetch)
    own = [sys.executable, "-c", fleet_floor.REPLAY_ONE, str(replay), ctx.dsn()]
    rows[OWN_FLOOR].samples.append(run(own, statement_log=ctx.statement_log))
    argv = check_argv(ctx, size)
    for label, env in envs.items():
        rows[f"check (compliant) [{label}]"].samples.append(run(argv, env=env, statement_log=ctx.statement_log))
    # the floor of start-up: a bare Python client's first statement (interpreter, psycopg, one connection)
    bare = [sys.executable, "-c", PY_FIRST, ctx.dsn()]
    seconds, sample = startup.first_statement(ctx.admin, ctx.statement_log.logfile, bare, ctx.env)
    sample.seconds = seconds
    rows[FIRST_FLOOR].samples.append(sample)
    for label, env in envs.items():
        log = ctx.statement_log.logfile
        seconds, at_target, sample = startup.first_statements(ctx.admin, log, argv, env, size.compliant)
        sample.seconds = seconds
        rows[f"check: spawn to first statement [{label}]"].samples.append(sample)
        if at_target is not None:
            rows[f"check: spawn to first statement on the database [{label}]"].samples.append(
                replace(sample, seconds=at_target)
            )


def check_argv(ctx: Context, size: fixture.Size) -> list[str]:
    policy = write_policy(ctx, size, size.compliant)
    return [*pgwarden_argv("check", "-c", str(policy), "--dsn", ctx.dsn()), "--format", "json"]


def measure(ctx: Context, size: fixture.Size, envs: dict[str, dict[str, str]]) -> list[Row]:
    # check's own statements (this tree's), recorded once: the floor row replays them every round
    captured = fleet_floor.capture_one(check_argv(ctx, size)[3:], envs["this tree"], ctx.workdir)
    ctx.log(
        f"  {size.tables} tables: check sent {captured.statements} statements on {captured.connections} "
        f"connections ({captured.second} on the one that imported the snapshot)"
    )
    names = ["floor: psql reads the ACLs", "floor: Python+psycopg fetch", OWN_FLOOR]
    names += [f"check (compliant) [{label}]" for label in envs]
    names += [FIRST_FLOOR, *(f"check: spawn to first statement [{label}]" for label in envs)]
    names += [f"check: spawn to first statement on the database [{label}]" for label in envs]
    rows = {n: Row(n, size.tables) for n in names}
    rows[OWN_FLOOR].note = f"{captured.connections} conn., {captured.second} on the 2nd; load"
    for i in range(ctx.runs):
        _round(ctx, size, rows, envs, captured.path)
        load = os.getloadavg()[0]
        ctx.log(
            f"  {size.tables} tables, round {i + 1}/{ctx.runs}: load {load:.1f}; "
            + ", ".join(f"{n} {r.samples[-1].seconds:.3f}" for n, r in rows.items())
        )
        for r in rows.values():
            r.note = (r.note + f" {load:.1f}").strip()
    return list(rows.values())


def render(rows: list[Row]) -> str:
    lines = [
        "| work | tables | median s | x psql | x Python fetch | x check's statements | client CPU s | statements "
        "| server SQL s | load (1 min) per round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    floors = {(r.work, r.tables): r.seconds for r in rows if r.work.startswith("floor")}
    for r in rows:
        ratios = []
        for floor in ("floor: psql reads the ACLs", "floor: Python+psycopg fetch"):
            f = floors.get((floor, r.tables))
            if "first statement" in r.work:  # start-up against its own floor, in the second ratio column
                f = floors.get((FIRST_FLOOR, r.tables)) if floor.endswith("fetch") else None
            ratios.append("" if not f or r.seconds is None else f"{r.seconds / f:.2f}")
        own = floors.get((OWN_FLOOR, r.tables)) if r.work.startswith("check (") else None
        ratios.append("" if not own or r.seconds is None else f"{r.seconds / own:.2f}")
        stm = "" if r.statements is None else str(r.statements)
        sql_s = "" if r.sql_seconds is None else f"{r.sql_seconds:.3f}"
        seconds = "" if r.seconds is None else f"{r.seconds:.3f}"
        cpus = [s.cpu_seconds for s in r.samples if s.cpu_seconds is not None and "first statement" not in r.work]
        cpu = f"{statistics.median(cpus):.3f}" if cpus else ""
        lines.append(
            f"| {r.work} | {r.tables} | {seconds} | {ratios[0]} | {ratios[1]} | {ratios[2]} | {cpu} | {stm} | {sql_s} "
            f"| {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    p.add_argument("--tables", default="10000", help="comma list of sizes")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--pg-version", type=int, default=16)
    p.add_argument("--pg-bin", default=None, help="PostgreSQL's bin directory (instead of --pg-version)")
    p.add_argument("--server-dir", type=Path, default=None)
    p.add_argument("--baseline", type=Path, required=True, help="the src/ directory of the pgwarden to compare with")
    args = p.parse_args(argv)
    import psycopg

    def log(message: str) -> None:
        print(f"[bench.ab {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    base_env = {**os.environ, "NO_COLOR": "1"}
    envs = {"this tree": base_env, "baseline": {**base_env, "PYTHONPATH": str(args.baseline.resolve())}}
    startup.bytecode(startup.pgwarden_tree(), args.baseline)  # both trees as installed: with bytecode
    server = fixture.start_server(args.pg_version, args.server_dir, log, pg_bin=args.pg_bin)
    rows: list[Row] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pgwarden-bench-") as tmp,
            psycopg.connect(server.conninfo(), autocommit=True) as admin,
        ):
            ctx = Context(server, admin, args.runs, log, Path(tmp), StatementLog(server.logfile), env=base_env)
            for n in (int(t) for t in args.tables.split(",")):
                size = fixture.Size(n, fixture.default_schemas(n))
                prepare(ctx, size)
                rows += measure(ctx, size, envs)
    finally:
        if args.server_dir is None:
            server.cleanup()
        else:
            server.stop()
    info: dict[str, Any] = {"postgresql": server.binaries.full_version, "cpus": os.cpu_count()}
    print(f"PostgreSQL {info['postgresql']}, {info['cpus']} CPUs, baseline {args.baseline}, {args.runs} rounds")
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
