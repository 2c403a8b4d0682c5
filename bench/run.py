"""The benchmark run: build (or reuse) the databases, measure each piece of work, print the table."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fixture
from bench.measure import Row, StatementLog, run
from bench.report import render_table

WORKS = ("startup", "floor", "plan", "check", "apply", "probe", "adopt", "multi")
PROBE_ROLE = fixture.APP


@dataclass
class Context:
    """What every measurement needs: the server, the admin connection, options, where to log."""

    server: Any
    admin: Any
    runs: int
    log: Callable[[str], None]
    workdir: Path
    statement_log: StatementLog
    env: dict[str, str] = field(default_factory=dict)

    def dsn(self, dbname: str = "postgres") -> str:
        return str(self.server.conninfo(dbname))

    def psql(self) -> str:
        return str(self.server.binaries.tool("psql"))


def pgwarden_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgwarden", *args]


def command_exists(name: str) -> bool:
    """True when pgwarden has the command (commands are modules in pgwarden.commands)."""
    return importlib.util.find_spec(f"pgwarden.commands.{name}") is not None


def command_help(name: str) -> str:
    out = subprocess.run(pgwarden_argv(name, "--help"), capture_output=True, text=True, check=False)
    return out.stdout


def write_policy(ctx: Context, size: fixture.Size, dbname: str, *, readonly: bool = True) -> Path:
    from pgwarden.policy import build_policy

    policy = build_policy(
        database=dbname,
        owner=fixture.OWNER,
        app=[fixture.APP],
        readonly=[fixture.READONLY] if readonly else [],
        schemas=size.schema_names(),
    )
    path = ctx.workdir / f"{dbname}{'' if readonly else '-app-only'}.toml"
    path.write_text(policy.to_toml(), encoding="utf-8")
    return path


def write_scoped_policy(ctx: Context, size: fixture.Size, dbname: str) -> Path:
    """A version 2 policy of several scopes that the compliant database matches exactly: the app's
    readwrite in two grants, the readonly role's with a table exception and a column exception that
    other grants give back. Its first two schemas are then planned object by object (named, with
    the excepted table's columns read), which is what scopes cost."""
    from pgwarden.policy import parse_policy
    from pgwarden.policy.render import _toml_value

    schemas = size.schema_names()
    half = max(1, len(schemas) // 2)
    first, second = schemas[0], schemas[1 % len(schemas)]
    only_v = {f"{second}.t1": ["v"]}
    grants = [
        {"role": fixture.APP, "profile": "readwrite", "schemas": schemas[:half]},
        {"role": fixture.READONLY, "profile": "readonly", "schemas": schemas, "except_tables": [f"{first}.t1"]},
        {"role": fixture.READONLY, "profile": "readonly", "tables": [f"{first}.t1"]},
        {"role": fixture.READONLY, "profile": "readonly", "schemas": [second], "except_columns": only_v},
    ]
    if schemas[half:]:
        grants.insert(1, {"role": fixture.APP, "profile": "readwrite", "schemas": schemas[half:]})
    text = (
        f"version = 2\nowner = {_toml_value({'name': fixture.OWNER})}\n"
        f"roles = {_toml_value([{'name': fixture.APP}, {'name': fixture.READONLY}])}\n"
        f"databases = {_toml_value([{'name': dbname, 'schemas': schemas, 'grants': grants}])}\n"
    )
    path = ctx.workdir / f"{dbname}-scoped.toml"
    path.write_text(parse_policy(text).to_toml(), encoding="utf-8")
    return path


def repeat(
    ctx: Context, row: Row, argv: list[str], *, before: Callable[[], None] | None = None, count: bool = True
) -> Row:
    """Run argv ctx.runs times (before() untimed each time); stop at the first failure."""
    for i in range(ctx.runs):
        if before is not None:
            before()
        sample = run(argv, env=ctx.env or None, statement_log=ctx.statement_log if count else None)
        row.samples.append(sample)
        ctx.log(f"  {row.work} @ {row.tables}: run {i + 1}/{ctx.runs} {sample.seconds:.3f} s rc={sample.returncode}")
        if sample.returncode not in (0, 1):
            row.note = f"exit {sample.returncode}: {last_line(sample.stderr)}"
            break
    return row


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-2:])[:300] if lines else ""


# --------------------------------------------------------------------------------------------
# the pieces of work


def floor_read_sql(size: fixture.Size) -> str:
    """The floor: read every ACL of the managed schemas' relations (tables, sequences, views)."""
    from psycopg import sql

    query = sql.SQL(
        "SELECT c.relnamespace, c.relname, c.relkind, c.relowner, c.relacl FROM pg_class c "
        "WHERE c.relnamespace = ANY (SELECT oid FROM pg_namespace WHERE nspname = ANY ({}::text[]))"
    ).format(sql.Literal(size.schema_names()))
    return query.as_string(None)


PY_FETCH = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    rows = conn.execute(sys.stdin.read()).fetchall()
print(len(rows))
"""


def measure_startup(ctx: Context) -> list[Row]:
    rows = []
    for flag in ("--version", "--help"):
        row = Row(f"pgwarden {flag}", 0, goal="<= 0.3 s")
        rows.append(repeat(ctx, row, pgwarden_argv(flag), count=False))
    return rows


def measure_check_startup(ctx: Context, size: fixture.Size, args: argparse.Namespace) -> list[Row]:
    """`pgwarden check` from spawn to its first statement (the server log says when it arrived), and the
    imports that cost most on the way (bench/startup.py); at the first size only (any size will do)."""
    from bench import startup

    if "startup" not in args.works or size.tables != args.sizes[0]:
        return []

    argv = pgwarden_argv("check", "-c", str(write_policy(ctx, size, size.compliant)), "--dsn", ctx.dsn())
    return startup.measure(ctx, [*argv, "--format", "json"], "check start-up")


def measure_floor(ctx: Context, size: fixture.Size) -> list[Row]:
    query = floor_read_sql(size)
    dsn = ctx.dsn(size.compliant)
    psql = Row("floor: psql reads the ACLs", size.tables)
    repeat(ctx, psql, ["sh", "-c", '"$0" -X -Atc "$1" "$2" > /dev/null', ctx.psql(), query, dsn])
    py = Row("floor: Python+psycopg fetch", size.tables, floor="floor: psql reads the ACLs")
    for _ in range(ctx.runs):
        ctx.statement_log.mark()
        sample = run([sys.executable, "-c", PY_FETCH, dsn], stdin=query, statement_log=ctx.statement_log)
        py.samples.append(sample)
    return [psql, py]


def measure_plan_check(ctx: Context, size: fixture.Size, work: str) -> list[Row]:
    policy = write_policy(ctx, size, size.compliant)
    rows: list[Row] = []
    if work == "check" and not command_exists("check"):
        return [Row("check (compliant)", size.tables, skipped="`pgwarden check` does not exist yet")]
    goal = "<= 2x floor, <= 2 s; <= 20 statements" if work == "check" else "<= 20 statements"
    row = Row(f"{work} (compliant)", size.tables, floor="floor: psql reads the ACLs", goal=goal)
    repeat(ctx, row, pgwarden_argv(work, "-c", str(policy), "--dsn", ctx.dsn(), "--format", "json"))
    row.note = steps_note(row)
    rows.append(row)
    if work == "check":
        scoped = Row("check (compliant, v2 scopes)", size.tables, floor="floor: psql reads the ACLs", goal=goal)
        argv = pgwarden_argv("check", "-c", str(write_scoped_policy(ctx, size, size.compliant)), "--dsn", ctx.dsn())
        repeat(ctx, scoped, [*argv, "--format", "json"])
        scoped.note = steps_note(scoped)
        rows.append(scoped)
    if work == "plan":
        brown_policy = write_policy(ctx, size, size.brown)
        fixture.copy_database(ctx.admin, size.brown_template, size.brown)
        brown = Row("plan (brown-field)", size.tables, floor="floor: psql reads the ACLs", goal="<= 20 statements")
        repeat(ctx, brown, pgwarden_argv("plan", "-c", str(brown_policy), "--dsn", ctx.dsn(), "--format", "json"))
        brown.note = steps_note(brown)
        rows.append(brown)
    return rows


def steps_note(row: Row) -> str:
    """How many steps/findings the command reported (from its JSON), so a run that did nothing is visible."""
    if not row.samples or row.note:
        return row.note
    try:
        data = json.loads(row.samples[-1].stdout)
    except ValueError:
        return "output is not JSON"
    for key in ("steps", "findings", "executed", "changes"):
        if isinstance(data, dict) and isinstance(data.get(key), list):
            return f"{len(data[key])} {key}"
    return ""


def measure_apply(ctx: Context, size: fixture.Size) -> list[Row]:
    brown_policy = write_policy(ctx, size, size.brown)
    brown = Row(
        "apply (brown-field, nothing granted)",
        size.tables,
        goal="statements O(schemas); <= 10 s",
        floor="floor: psql reads the ACLs",
    )
    repeat(
        ctx,
        brown,
        pgwarden_argv("apply", "-c", str(brown_policy), "--dsn", ctx.dsn(), "--yes", "--format", "json"),
        before=lambda: fixture.copy_database(ctx.admin, size.brown_template, size.brown),
    )
    brown.note = steps_note(brown)
    policy = write_policy(ctx, size, size.compliant)
    compliant = Row(
        "apply (compliant)", size.tables, goal="0 changes; same time as check", floor="floor: psql reads the ACLs"
    )
    repeat(ctx, compliant, pgwarden_argv("apply", "-c", str(policy), "--dsn", ctx.dsn(), "--yes", "--format", "json"))
    compliant.note = steps_note(compliant)
    return [brown, compliant]


def measure_adopt(ctx: Context, size: fixture.Size) -> list[Row]:
    floor = Row("floor: adopt as one server-side DO block", size.tables)
    reset = lambda: fixture.copy_database(ctx.admin, size.adopt_template, size.adopt)  # noqa: E731
    repeat(
        ctx,
        floor,
        [
            ctx.psql(),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            fixture.adopt_floor_sql(fixture.OWNER),
            ctx.dsn(size.adopt),
        ],
        before=reset,
    )
    if not command_exists("adopt"):
        return [floor, Row("adopt (from postgres)", size.tables, skipped="`pgwarden adopt` does not exist yet")]
    policy = write_policy(ctx, size, size.adopt)
    row = Row("adopt (from postgres)", size.tables, floor=floor.work, goal="<= 2x the DO-block floor")
    args = ["adopt", "-c", str(policy), "--dsn", ctx.dsn()]
    help_text = command_help("adopt")
    if "--from" in help_text:
        args += ["--from", "postgres"]
    if "--yes" in help_text:
        args.append("--yes")
    repeat(ctx, row, pgwarden_argv(*args), before=reset)
    return [floor, row]


def measure_probe(ctx: Context, size: fixture.Size) -> list[Row]:
    if not command_exists("probe"):
        return [Row(f"probe (one role: {PROBE_ROLE})", size.tables, skipped="`pgwarden probe` does not exist yet")]
    # probe acts as every role of the policy: the same database seen through a policy naming only
    # the app as access role (the owner is probed too: it is part of every policy).
    policy = write_policy(ctx, size, size.compliant, readonly=False)
    args = ["probe", "-c", str(policy), "--dsn", ctx.dsn()]
    help_text = command_help("probe")
    if "--role" in help_text:
        args += ["--role", PROBE_ROLE]
    if "--format" in help_text:
        args += ["--format", "json"]
    row = Row(f"probe (one role: {PROBE_ROLE})", size.tables, goal="<= 15 s at 10,000 tables")
    repeat(ctx, row, pgwarden_argv(*args))
    return [row]


MULTI_DATABASES = 200
MULTI_TABLES = 500


def measure_multi(ctx: Context) -> list[Row]:
    """`check` over 200 databases of 500 tables with --jobs 8 (copies of one compliant database)."""
    work = f"check over {MULTI_DATABASES} databases of {MULTI_TABLES} tables, --jobs 8"
    total = MULTI_DATABASES * MULTI_TABLES
    if "--jobs" not in (command_help("check") if command_exists("check") else ""):
        return [Row(work, total, skipped="not yet measurable: pgwarden has no multi-database check (--jobs) yet")]
    size = fixture.Size(MULTI_TABLES, 1)
    prepare(ctx, size)
    names = [f"{size.prefix}_m{i:03d}" for i in range(1, MULTI_DATABASES + 1)]
    have = {r[0] for r in ctx.admin.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names])}
    missing = [n for n in names if n not in have]
    if missing:
        ctx.log(f"creating {len(missing)} copies of {size.compliant} for the multi-database check")
    for name in missing:
        fixture.copy_database(ctx.admin, size.compliant, name, file_copy=False)
    policy = write_policy(ctx, size, size.compliant)
    row = Row(work, total, goal="<= 15 s", note="")
    repeat(
        ctx,
        row,
        pgwarden_argv(
            "check", "-c", str(policy), "--dsn", ctx.dsn(), "-d", f"{size.prefix}_m*", "--jobs", "8", "--format", "json"
        ),
    )
    row.note = row.note or steps_note(row)
    return [row]


# --------------------------------------------------------------------------------------------
# main


def prepare(ctx: Context, size: fixture.Size) -> None:
    """Templates (built once per cluster) and the compliant database (built by `pgwarden apply`)."""
    fixture.ensure_roles(ctx.admin)
    fixture.ensure_adopt_template(ctx.server, ctx.admin, size, ctx.log)
    fixture.ensure_brown_template(ctx.server, ctx.admin, size, ctx.log)
    exists = ctx.admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [size.compliant]).fetchone()
    if exists is None:
        ctx.log(f"creating {size.compliant} (compliant: copy of {size.brown_template} + pgwarden apply)")
        tmp = f"{size.compliant}_building"
        fixture.copy_database(ctx.admin, size.brown_template, tmp)
        policy = write_policy(ctx, size, tmp)
        sample = run(pgwarden_argv("apply", "-c", str(policy), "--dsn", ctx.dsn(), "--yes"))
        if sample.returncode != 0:
            raise SystemExit(f"bench: pgwarden apply could not build {tmp}: {sample.stderr.strip()}")
        from psycopg import sql

        ctx.admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(tmp), sql.Identifier(size.compliant))
        )
        ctx.admin.execute("CHECKPOINT")  # fsync is off: survive an immediate shutdown


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--tables", default="1000", help="tables per database; a comma list runs several sizes (1000)")
    p.add_argument("--schemas", type=int, default=None, help="schemas per database (default: one per 1,000 tables)")
    p.add_argument("--runs", type=int, default=3, help="runs per measurement; the table shows medians (3)")
    p.add_argument("--pg-version", type=int, default=16, help="PostgreSQL major version (16)")
    p.add_argument("--pg-bin", default=None, help="a PostgreSQL bin directory to use instead of --pg-version")
    p.add_argument("--only", default="", help=f"comma list of: {','.join(WORKS)},tools (default: all but tools)")
    p.add_argument("--compare-tools", action="store_true", help="also run ldap2pg 5.9 and pgbedrock 0.4.2 dry runs")
    p.add_argument(
        "--server-dir",
        type=Path,
        default=None,
        help="keep the cluster here and reuse its databases next time (default: throwaway)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(t) for t in args.tables.split(",") if t.strip()]
    except ValueError:
        p.error(f"--tables {args.tables!r}: expected a number or a comma list of numbers")
    only = {w.strip() for w in args.only.split(",") if w.strip()} or set(WORKS)
    unknown = only - set(WORKS) - {"tools"}
    if unknown:
        p.error(f"--only: unknown work {', '.join(sorted(unknown))} (choose from {', '.join(WORKS)}, tools)")
    if args.compare_tools:
        only.add("tools")
    args.works = only
    if args.runs < 1 or any(n < 1 for n in args.sizes):
        p.error("--runs and --tables must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tempfile

    import psycopg

    def log(message: str) -> None:
        if not args.quiet:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    server = fixture.start_server(args.pg_version, args.server_dir, log, pg_bin=args.pg_bin)
    rows: list[Row] = []
    sizes_info: list[dict[str, Any]] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pgwarden-bench-") as tmp,
            psycopg.connect(server.conninfo(), autocommit=True) as admin,
        ):
            ctx = Context(
                server=server,
                admin=admin,
                runs=args.runs,
                log=log,
                workdir=Path(tmp),
                statement_log=StatementLog(server.logfile),
                env={**os.environ, "NO_COLOR": "1"},
            )
            if "startup" in args.works:
                rows += measure_startup(ctx)
            for n in args.sizes:
                size = fixture.Size(n, args.schemas or fixture.default_schemas(n))
                prepare(ctx, size)
                with psycopg.connect(ctx.dsn(size.compliant)) as conn:
                    sizes_info.append({"tables": n, "schemas": size.schemas, "objects": fixture.count_objects(conn)})
                rows += measure_check_startup(ctx, size, args)
                if "floor" in args.works or args.works & {"plan", "check", "apply"}:
                    rows += measure_floor(ctx, size)
                for work in ("plan", "check"):
                    if work in args.works:
                        rows += measure_plan_check(ctx, size, work)
                if "apply" in args.works:
                    rows += measure_apply(ctx, size)
                if "probe" in args.works:
                    rows += measure_probe(ctx, size)
                if "adopt" in args.works:
                    rows += measure_adopt(ctx, size)
                if "tools" in args.works:
                    from bench import tools

                    rows += tools.measure_tools(ctx, size)
            if "multi" in args.works:
                rows += measure_multi(ctx)
    finally:
        if args.server_dir is None:
            server.cleanup()  # a throwaway cluster: stop it and delete its directory (hundreds of MB)
        else:
            server.stop()  # --server-dir: the cluster is kept for the next run
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "postgresql": server.binaries.full_version,
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "sizes": sizes_info,
        "pgwarden_commit": git_commit(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(render_table(header, rows))
    if args.json is not None:
        args.json.write_text(json.dumps({**header, "rows": [r.as_dict() for r in rows]}, indent=2) + "\n")
    return 0


def git_commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()
