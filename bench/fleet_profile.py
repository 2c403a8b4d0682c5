"""Server time per statement per database of a fleet command, from the server log (duration lines).

    python -m bench.fleet --databases 200 --tables 200 --server-dir /tmp/fleet --build-only
    python -m bench.fleet_profile --server-dir /tmp/fleet -d 't00*' check

Starts the kept cluster of bench.fleet, logs every statement's duration, runs `pgwarden <command>
-d PATTERN --jobs 8` with the fleet's policy and prints, per statement (named by its queries/*.sql
file when it is one), how many times it ran per database and its server milliseconds per database
(parse, bind and execute summed): the mean over the databases, and the total; and the CPU seconds
the server's backends and pgwarden spent (less sensitive to the machine's load than wall times).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from importlib import resources
from pathlib import Path

from bench import fixture

_LINE = re.compile(
    r"^\S+ \S+ UTC \[(\d+)\] (?:(\S*)@(\S*) )?LOG:  duration: ([0-9.]+) ms  "
    r"(?:statement|parse|bind|execute)[^:]*: ?(.*)$"
)


def _names() -> dict[str, str]:
    """The first line of each queries/*.sql file -> the file's name."""
    out = {}
    for f in resources.files("pgwarden.queries").iterdir():
        if f.name.endswith(".sql"):
            first = f.read_text(encoding="utf-8").lstrip().splitlines()[0].strip()
            out.setdefault(first, f.name[:-4])
    return out


def parse(text: str) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], int], set[str]]:
    """(database, statement) -> ms and -> count (executions), and the databases seen."""
    names = _names()
    ms: dict[tuple[str, str], float] = defaultdict(float)
    count: dict[tuple[str, str], int] = defaultdict(int)
    dbs: set[str] = set()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _LINE.match(line)
        if not m:
            continue
        db, duration, first = m.group(3) or "?", float(m.group(4)), m.group(5).strip()
        if not first and i + 1 < len(lines):
            first = lines[i + 1].strip()
        key = names.get(first, first[:70])
        ms[(db, key)] += duration
        if " execute " in line or "statement:" in line:
            count[(db, key)] += 1
        dbs.add(db)
    return ms, count, dbs


_STATS = re.compile(
    r"^\S+ \S+ UTC \[(\d+)\] (?:(\S*)@(\S*) )?LOG:  (?:PARSE MESSAGE |BIND MESSAGE |EXECUTE MESSAGE |QUERY )STATISTICS$"
)
_USAGE = re.compile(r"^\s*!\s*([0-9.]+) s user, ([0-9.]+) s system, [0-9.]+ s elapsed$")
_TOTAL = re.compile(r"^\s*!\s*\[([0-9.]+) s user, ([0-9.]+) s system total\]$")
_STATEMENT = re.compile(r"^\S+ \S+ UTC \[\d+\] (?:\S*@\S* )?STATEMENT:  (.*)$")


def parse_cpu(text: str) -> tuple[dict[tuple[str, str], float], dict[str, tuple[str, float, float]]]:
    """From log_statement_stats' blocks: (database, statement) -> CPU ms, and per backend (pid) its
    database, the CPU ms it had spent before its first statement, and its last total."""
    names = _names()
    ms: dict[tuple[str, str], float] = defaultdict(float)
    backends: dict[str, tuple[str, float, float]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _STATS.match(lines[i])
        i += 1
        if not m:
            continue
        pid, db = m.group(1), m.group(3) or "?"
        spent = total = None
        while i < len(lines) and not _STATEMENT.match(lines[i]) and not _STATS.match(lines[i]):
            if (u := _USAGE.match(lines[i])) is not None:
                spent = 1000 * (float(u.group(1)) + float(u.group(2)))
            elif (t := _TOTAL.match(lines[i])) is not None:
                total = 1000 * (float(t.group(1)) + float(t.group(2)))
            i += 1
        s = _STATEMENT.match(lines[i]) if i < len(lines) else None
        if spent is None or total is None or s is None:
            continue
        first = s.group(1).strip() or (lines[i + 1].strip() if i + 1 < len(lines) else "")
        ms[(db, names.get(first, first[:70]))] += spent
        before = backends[pid][1] if pid in backends else total - spent
        backends[pid] = (db, before, total)
    return ms, backends


def report_cpu(text: str, prefix: str) -> str:
    ms, backends = parse_cpu(text)
    fleet = sorted({d for d, _ in ms if d.startswith(prefix)})
    n = max(1, len(fleet))
    rows = []
    for k in sorted({k for _, k in ms}):
        in_fleet = sum(ms.get((d, k), 0.0) for d in fleet)
        other = sum(v for (d, kk), v in ms.items() if kk == k and d not in fleet)
        rows.append((in_fleet / n + other / n, k, other > 0))
    rows.sort(reverse=True)
    out = [f"{len(fleet)} databases; per database: server CPU ms (parse, bind, execute), statement (* = admin)"]
    out += [f"{m:8.2f}  {k}{' *' if o else ''}" for m, k, o in rows]
    out.append(f"{sum(r[0] for r in rows):8.2f}  total of the statements")
    mine = [b for b in backends.values() if b[0] in fleet]
    if mine:
        login = sorted(b[1] for b in mine)[len(mine) // 2]
        total = sorted(b[2] for b in mine)[len(mine) // 2]
        out.append(f"{login:8.2f}  median CPU of a database's backend before its first statement (start-up, login)")
        out.append(f"{total:8.2f}  median CPU of a database's backend at its last statement (all but its exit)")
    return "\n".join(out)


def report(text: str, prefix: str) -> str:
    ms, count, dbs = parse(text)
    fleet = sorted(d for d in dbs if d.startswith(prefix))
    n = max(1, len(fleet))
    keys = sorted({k for _, k in ms})
    rows = []
    for k in keys:
        in_fleet = sum(ms.get((d, k), 0.0) for d in fleet)
        other = sum(v for (d, kk), v in ms.items() if kk == k and d not in fleet)
        runs = sum(count.get((d, k), 0) for d in dbs)
        rows.append((in_fleet / n + other / n, runs / n, k, other > 0))
    rows.sort(reverse=True)
    out = [f"{len(fleet)} databases; per database: server ms, executions, statement (* = on the admin connection)"]
    out += [f"{m:8.2f} {c:5.2f}  {k}{' *' if o else ''}" for m, c, k, o in rows]
    out.append(f"{sum(r[0] for r in rows):8.2f} {sum(r[1] for r in rows):5.2f}  total")
    return "\n".join(out)


def _client_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fleet_profile", description=__doc__.splitlines()[0])
    p.add_argument(
        "command",
        choices=["check", "apply", "floor", "floor-check", "floor-apply"],
        help="floor: bench.fleet's bare Python fetch; floor-check, floor-apply: a bare client sending the "
        "statements check (apply) sends each database (bench.fleet_floor)",
    )
    p.add_argument("-d", "--database", default="t*", help="the databases (a pattern of bench.fleet's names)")
    p.add_argument("--tables", type=int, default=200)
    p.add_argument("--pg-version", type=int, default=16)
    p.add_argument("--server-dir", type=Path, required=True, help="bench.fleet's --server-dir")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--no-log", action="store_true", help="CPU seconds only: no statement log (it costs the server)")
    p.add_argument("--cpu", action="store_true", help="per statement the server's CPU (log_statement_stats)")
    p.add_argument("--pythonpath", default=None, help="run pgwarden from this source directory (an A/B)")
    args = p.parse_args(argv)
    from fnmatch import fnmatchcase

    import psycopg

    from bench import fleet_floor
    from bench.fleet import PREFIX, PY_FETCH, server_cpu, write_policy
    from bench.run import floor_read_sql, pgwarden_argv
    from pgwarden.fetch import query

    def log(message: str) -> None:
        print(f"[profile {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    server = fixture.start_server(args.pg_version, args.server_dir, log, port=args.port)
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as admin, tempfile.TemporaryDirectory() as tmp:
            admin.execute("ALTER SYSTEM SET log_statement = 'none'")
            admin.execute(f"ALTER SYSTEM SET log_min_duration_statement = {-1 if args.no_log or args.cpu else 0}")
            admin.execute(f"ALTER SYSTEM SET log_statement_stats = {'on' if args.cpu else 'off'}")
            admin.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
            policy = write_policy(Path(tmp), args.tables)
            env = {**os.environ, **({"PYTHONPATH": args.pythonpath} if args.pythonpath else {})}
            names = [
                r[0] for r in admin.execute(query("cluster_databases").encode()) if fnmatchcase(r[0], args.database)
            ]
            argv = pgwarden_argv(args.command, "-c", str(policy), "--dsn", server.conninfo(), "-d", args.database)
            argv += ["--jobs", str(args.jobs), "--format", "json"] + (["--yes"] if args.command == "apply" else [])
            if args.command == "floor":
                floor_sql = floor_read_sql(fixture.Size(args.tables, 1))
                argv = [sys.executable, "-c", PY_FETCH, *(server.conninfo(n) for n in names), floor_sql]
            elif args.command.startswith("floor-"):  # the command's statements captured first (not measured)
                command = args.command.removeprefix("floor-")
                oids: dict[str, int] = dict(admin.execute("SELECT datname, oid::int FROM pg_database").fetchall())
                captured = fleet_floor.capture(
                    [
                        command,
                        "-c",
                        str(policy),
                        "--dsn",
                        server.conninfo(),
                        *(["--yes"] if command == "apply" else []),
                    ],
                    names[:3],
                    oids,
                    env,
                    Path(tmp),
                )
                log(f"{command} sends {captured.statements} statements to each database; replaying them")
                argv = [sys.executable, "-c", fleet_floor.replay_script(args.jobs), str(captured.path)]
                argv += [server.conninfo(n) for n in names]
            start = server.logfile.stat().st_size
            server_before, client_before = server_cpu(server.datadir), _client_cpu()
            started = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - started
            time.sleep(0.3)  # the postmaster reaps the last backends just after the client has gone
            server_spent, client_spent = server_cpu(server.datadir) - server_before, _client_cpu() - client_before
            log(
                f"{args.command}: {seconds:.2f} s, exit {proc.returncode}; CPU seconds: server {server_spent:.2f}, "
                f"pgwarden {client_spent:.2f}"
            )
            if proc.returncode not in (0, 1):
                log(proc.stderr[-2000:])
            admin.execute("ALTER SYSTEM SET log_min_duration_statement = -1")
            admin.execute("ALTER SYSTEM SET log_statement_stats = off")
            admin.execute("SELECT pg_reload_conf()")
            with server.logfile.open("rb") as fh:
                fh.seek(start)
                text = fh.read().decode("utf-8", "replace")
    finally:
        server.stop()
    print(report_cpu(text, PREFIX) if args.cpu else report(text, PREFIX))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
