"""A fleet of databases (one per tenant): check and apply --jobs 8 against fetching the same ACLs, in one run.

    python -m bench.fleet --databases 50 --tables 200 --runs 3 --server-dir /tmp/pgwarden-bench/fleet
    python -m bench.fleet --databases 1000 --tables 200 --runs 3 --server-dir /tmp/pgwarden-bench/fleet

Builds one compliant database of T tables (bench.fixture, as `python -m bench` does), copies it N
times (`t0001`...; CREATE DATABASE ... TEMPLATE, then one apply to give the copies their owner and
database grants; not timed) and measures, each as a child process: the bare Python fetch of every
database's ACL rows with 8 threads, psql reading them one database after the other,
`pgwarden check -d 't*' --jobs 8` and `pgwarden apply -d 't*' --jobs 8 --yes` of the (compliant)
fleet, with a version 2 policy whose one [[databases]] entry is `name = "t*"`, and next to each the
floor of its own reads: a bare Python client sending exactly the statements the command sends each
database (captured from the command itself before the runs: bench.fleet_floor), 8 threads.
CPU: the server's (its ended backends, reaped by the postmaster) and the client's (the command and
its worker processes, wait4), per database. Memory: the largest single process's peak RSS (wait4)
and the peak of the whole process tree's RSS and PSS (sampled from /proc every 20 ms; PSS counts
the pages forked workers share with their parent once).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fixture, fleet_floor

PREFIX = "t"
THREADS = 8

#: The floor: the same ACL rows check reads, fetched from every database by 8 threads; no Python
#: work beyond fetching (what the issue calls the bare Python fetch).
PY_FETCH = """
import sys, psycopg
from concurrent.futures import ThreadPoolExecutor
dsns, sql = sys.argv[1:-1], sys.argv[-1]
def one(dsn):
    with psycopg.connect(dsn) as conn:
        return len(conn.execute(sql).fetchall())
with ThreadPoolExecutor(THREADS) as pool:
    print(sum(pool.map(one, dsns)))
""".replace("THREADS", str(THREADS))


@dataclass
class Sample:
    seconds: float
    returncode: int
    max_rss_mb: float  # the largest single process (wait4 covers the waited-for descendants)
    tree_rss_mb: float  # sampled: the whole process tree at its peak
    tree_pss_mb: float
    tail: str = ""
    client_cpu: float = 0.0  # seconds: the process and its waited-for descendants (wait4)
    server_cpu: float = 0.0  # seconds: the server's backends ended meanwhile (the postmaster's children)


@dataclass
class Row:
    work: str
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    def cpu(self, side: str) -> float:
        """The median CPU seconds of `side` ("client_cpu" or "server_cpu")."""
        return float(statistics.median(getattr(s, side) for s in self.samples))


def server_cpu(datadir: Path) -> float:
    """CPU seconds of the server's ended backends: the postmaster reaps them, so they add to its
    children's times (what the server spent, whatever else the machine runs; autovacuum's workers too)."""
    pid = (datadir / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def _memory(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) of these processes in MB, from /proc/PID/smaps_rollup."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def run(argv: list[str], env: dict[str, str], datadir: Path | None = None) -> Sample:
    """Run argv, sampling its process tree's memory; wall time, its own peak RSS and CPU from wait4;
    with `datadir`, the server's CPU meanwhile."""
    server_before = server_cpu(datadir) if datadir is not None else 0.0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        peak_rss = peak_pss = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, pss = _memory(_tree(proc.pid))
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = (out.read()[-2000:] + b"\n" + err.read()[-2000:]).decode("utf-8", "replace").strip()
    server = 0.0
    if datadir is not None:
        time.sleep(0.3)  # the postmaster reaps the last backends just after the client has gone
        server = server_cpu(datadir) - server_before
    client = usage.ru_utime + usage.ru_stime
    return Sample(seconds, proc.returncode, usage.ru_maxrss / 1024, peak_rss, peak_pss, text[-600:], client, server)


def build(ctx: Any, databases: int, tables: int) -> list[str]:
    """t0001..tNNNN: copies of the compliant database of `tables` tables (built once per cluster)."""
    from bench.run import prepare

    size = fixture.Size(tables, 1)
    prepare(ctx, size)
    names = [f"{PREFIX}{i:04d}" for i in range(1, databases + 1)]
    rows = ctx.admin.execute("SELECT datname FROM pg_database WHERE datname ~ %s", [f"^{PREFIX}[0-9]+$"]).fetchall()
    have = {r[0] for r in rows}
    for extra in sorted(have - set(names)):  # a bigger fleet earlier: the pattern must match exactly N
        ctx.admin.execute(f'DROP DATABASE "{extra}" WITH (FORCE)')
    missing = [n for n in names if n not in have]
    if missing:
        ctx.log(f"creating {len(missing)} copies of {size.compliant}")
        started = time.perf_counter()
        for n, name in enumerate(missing, 1):
            fixture.copy_database(ctx.admin, size.compliant, name, file_copy=False)
            if n % 100 == 0:
                ctx.log(f"  {n}/{len(missing)} ({time.perf_counter() - started:.0f} s)")
        ctx.admin.execute("CHECKPOINT")
    _make_compliant(ctx, size, tables)
    return names


def _make_compliant(ctx: Any, size: fixture.Size, tables: int) -> None:
    """A copy's owner and database grants are not its template's (CREATE DATABASE gives it to its
    creator): one apply over the fleet, not timed, so that every measured run sees a compliant fleet."""
    from bench.run import pgwarden_argv

    differ = ctx.admin.execute(
        "SELECT count(*) FROM pg_database d, pg_database t WHERE t.datname = %s AND d.datname ~ %s "
        "AND (d.datdba <> t.datdba OR d.datacl IS DISTINCT FROM t.datacl)",
        [size.compliant, f"^{PREFIX}[0-9]+$"],
    ).fetchone()[0]
    if not differ:
        return
    ctx.log(f"{differ} copies are not yet compliant (owner, database grants): one apply over the fleet")
    policy = write_policy(ctx.workdir, tables)
    argv = pgwarden_argv("apply", "-c", str(policy), "--dsn", ctx.dsn(), "-d", PREFIX + "*", "--jobs", str(THREADS))
    proc = subprocess.run([*argv, "--yes"], capture_output=True, text=True, env=ctx.env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"apply over the fleet failed: {proc.stderr[-2000:]}")


def write_policy(workdir: Path, tables: int) -> Path:
    """Version 2, one [[databases]] entry named with a glob: every tenant database alike."""
    from pgwarden.policy import build_policy

    size = fixture.Size(tables, 1)
    policy = build_policy(
        database=PREFIX + "*",
        owner=fixture.OWNER,
        app=[fixture.APP],
        readonly=[fixture.READONLY],
        schemas=size.schema_names(),
    )
    path = workdir / "fleet.toml"
    path.write_text(policy.to_toml(), encoding="utf-8")
    return path


def measure(ctx: Any, args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    from bench.run import floor_read_sql, pgwarden_argv

    names = build(ctx, args.databases, args.tables)
    policy = write_policy(ctx.workdir, args.tables)
    size = fixture.Size(args.tables, 1)
    sql = floor_read_sql(size)
    dsns = [ctx.dsn(n) for n in names]
    psql_loop = [
        "sh",
        "-c",
        'sql="$1"; shift; for d in "$@"; do "$PSQL" -XAtq -d "$d" -c "$sql" > /dev/null || exit 2; done',
        "sh",
        sql,
        *dsns,
    ]
    env = {**ctx.env, "PSQL": ctx.psql()}
    common = ["-c", str(policy), "--dsn", ctx.dsn(), "-d", PREFIX + "*", "--jobs", str(THREADS), "--format", "json"]
    floors: dict[str, list[str]] = {}
    notes: dict[str, str] = {}
    oids: dict[str, int] = dict(ctx.admin.execute("SELECT datname, oid::int FROM pg_database").fetchall())
    for command in ("check", "apply"):  # what each command sends a database, from the command itself
        extra = ["--yes"] if command == "apply" else []
        captured = fleet_floor.capture(
            [command, "-c", str(policy), "--dsn", ctx.dsn(), *extra], names[:3], oids, ctx.env, ctx.workdir
        )
        floors[command] = [sys.executable, "-c", fleet_floor.replay_script(THREADS), str(captured.path), *dsns]
        notes[command] = f"{captured.statements} statements on {captured.connections} connection(s) per database" + (
            f"; not replayed: {len(captured.admin)} on the admin connection ({'; '.join(captured.admin)})"
            if captured.admin
            else ""
        )
        ctx.log(f"{command}: {notes[command]}")
    works = {
        f"bare Python fetch, {THREADS} threads": [sys.executable, "-c", PY_FETCH, *dsns, sql],
        "psql, one database after the other": psql_loop,
        f"floor: check's statements, bare Python client, {THREADS} threads": floors["check"],
        f"pgwarden check --jobs {THREADS}": pgwarden_argv("check", *common),
        f"floor: apply's statements (compliant), bare Python client, {THREADS} threads": floors["apply"],
        f"pgwarden apply --jobs {THREADS} (compliant)": pgwarden_argv("apply", *common, "--yes"),
    }
    rows = [Row(w) for w in works]
    rows[2].note, rows[4].note = notes["check"], notes["apply"]
    # interleaved (run 1 of each, then run 2 of each...): a change in the machine's load hits every row alike
    for i in range(args.runs):
        for row, argv in zip(rows, works.values(), strict=True):
            sample = run(argv, env, ctx.server.datadir)
            row.samples.append(sample)
            ctx.log(
                f"  {row.work}: run {i + 1}/{args.runs} {sample.seconds:.2f} s rc={sample.returncode}, CPU s: "
                f"server {sample.server_cpu:.2f}, client {sample.client_cpu:.2f}"
            )
            if sample.returncode not in (0, 1):
                ctx.log(f"    failed: {sample.tail}")
    counts = {"databases": len(names), "tables per database": args.tables}
    return rows, counts


def render(header: dict[str, Any], rows: list[Row]) -> str:
    floor = rows[0].median()
    n = header["databases"]
    fetch_cpu = rows[0].cpu("server_cpu") + rows[0].cpu("client_cpu")
    lines = [f"# fleet: {header['databases']} databases x {header['tables']} tables, PostgreSQL {header['postgresql']}"]
    lines.append(
        f"{header['date']}, {header['machine']}, load average {header['loadavg_before']} before and "
        f"{header['loadavg_after']} after, {header['runs']} runs (medians), commit {header['commit']}"
    )
    lines.append("")
    lines.append(
        "| work | median s | x bare fetch | runs (s) | exit | CPU ms per database: server / client | "
        "CPU x bare fetch | largest process peak MB | tree peak RSS MB | tree peak PSS MB |"
    )
    lines.append("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        runs = ", ".join(f"{s.seconds:.2f}" for s in r.samples)
        codes = ",".join(sorted({str(s.returncode) for s in r.samples}))
        server, client = r.cpu("server_cpu"), r.cpu("client_cpu")
        lines.append(
            f"| {r.work} | {r.median():.2f} | {r.median() / floor:.2f} | {runs} | {codes} | "
            f"{1000 * server / n:.1f} / {1000 * client / n:.1f} | {(server + client) / fetch_cpu:.2f} | "
            f"{max(s.max_rss_mb for s in r.samples):.0f} | {max(s.tree_rss_mb for s in r.samples):.0f} | "
            f"{max(s.tree_pss_mb for s in r.samples):.0f} |"
        )
    lines += [f"- {r.work}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.splitlines()[0])
    p.add_argument("--databases", type=int, default=50, help="databases in the fleet (50)")
    p.add_argument("--tables", type=int, default=200, help="tables per database (200)")
    p.add_argument("--runs", type=int, default=3, help="runs of each measurement; medians (3)")
    p.add_argument("--pg-version", type=int, default=16, help="PostgreSQL major version (16)")
    p.add_argument("--pg-bin", default=None, help="PostgreSQL's bin directory (instead of --pg-version)")
    p.add_argument("--server-dir", type=Path, default=None, help="keep the cluster (and the fleet) here")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    p.add_argument("--build-only", action="store_true", help="build the fleet (with --server-dir) and stop")
    args = p.parse_args(argv)
    if args.databases < 2:  # one database is not a fleet: check and apply take their single-database path
        p.error("--databases: at least 2")

    import platform

    import psycopg

    from bench.measure import StatementLog
    from bench.run import Context, git_commit

    def log(message: str) -> None:
        print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    server = fixture.start_server(args.pg_version, args.server_dir, log, pg_bin=args.pg_bin, port=args.port)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pgwarden-fleet-") as tmp,
            psycopg.connect(server.conninfo(), autocommit=True) as admin,
        ):
            # the fleet's figures are wall times: no statement log (it would cost the server a line per query)
            admin.execute("ALTER SYSTEM SET log_statement = 'none'")
            admin.execute("ALTER SYSTEM SET log_min_duration_statement = -1")
            admin.execute("SELECT pg_reload_conf()")
            ctx = Context(
                server, admin, args.runs, log, Path(tmp), StatementLog(server.logfile), {**os.environ, "NO_COLOR": "1"}
            )
            if args.build_only:
                build(ctx, args.databases, args.tables)
                return 0
            before = [round(x, 2) for x in os.getloadavg()]
            rows, counts = measure(ctx, args)
            after = [round(x, 2) for x in os.getloadavg()]
            admin.execute("ALTER SYSTEM RESET log_statement")
            admin.execute("ALTER SYSTEM RESET log_min_duration_statement")
    finally:
        if args.server_dir is None:
            server.cleanup()
        else:
            server.stop()
    header = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "postgresql": server.binaries.full_version,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "loadavg_before": before,
        "loadavg_after": after,
        "runs": args.runs,
        "commit": git_commit(),
        "databases": counts["databases"],
        "tables": counts["tables per database"],
    }
    print(render(header, rows))
    if args.json is not None:
        data = {
            **header,
            "rows": [
                {"work": r.work, "median": r.median(), "note": r.note, "samples": [vars(s) for s in r.samples]}
                for r in rows
            ],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
