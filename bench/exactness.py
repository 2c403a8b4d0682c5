"""The long run of the exactness property: N random databases per PostgreSQL version, counts, failures, time."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

import exactness  # noqa: E402  (tests/exactness.py: the builder, the recorder and the comparison)
from bench.fixture import start_server  # noqa: E402


def run_version(version: int, examples: int, rng_seed: int, shrink: int, log: Any) -> dict[str, Any]:
    server = start_server(version, None, log)
    admin = server.conninfo("postgres")
    outcomes: list[exactness.Outcome] = []
    crashes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pgwarden-exactness-") as tmp:

            @seed(rng_seed + version)  # else 14/15 and 16-18 (same strategy) would replay the same databases
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(exactness.examples(version))
            def one(ex: exactness.Example) -> None:
                try:
                    outcome = exactness.check_example(admin, ex, Path(tmp))
                except Exception as exc:  # a build that the server refused is the builder's bug: count it
                    crashes.append(f"{type(exc).__name__}: {exc}\n{ex.script()}")
                    return
                outcomes.append(outcome)
                mark = "ok" if outcome.ok else "FAIL"
                log(f"pg{version} #{len(outcomes)} {mark} {outcome.seconds:.1f}s")
                if not outcome.ok:
                    log(outcome.describe() + "\n  -- the database:\n  " + ex.script().replace("\n", "\n  "))

            one()
            failures = [o for o in outcomes if not o.ok]
            shrunk = [_shrink(admin, o, Path(tmp), log) for o in failures[:shrink]]
    finally:
        server.cleanup()
    times = sorted(o.seconds for o in outcomes)
    return {
        "version": version,
        "examples": len(outcomes),
        "failures": len(failures),
        "builder_errors": len(crashes),
        "median_s": times[len(times) // 2] if times else None,
        "max_s": times[-1] if times else None,
        "total_s": sum(times),
        "failure_reports": [o.describe() + "\n" + o.example.script() for o in failures],
        "shrunk": shrunk,
        "crashes": crashes,
    }


def _shrink(admin: str, outcome: exactness.Outcome, workdir: Path, log: Any) -> str:
    """Drop statements one at a time while the example still fails the same way (error or diff)."""
    ex = outcome.example
    wanted = set(outcome.lost) | set(outcome.gained)
    first_error = _error_line(outcome.error)
    statements = list(ex.statements)
    changed = True
    while changed:
        changed = False
        for i in range(len(statements) - 1, 1, -1):  # never the CREATE DATABASE and \c
            trial = exactness.Example(ex.version, ex.prefix, ex.owner, ex.owner_exists, ex.roles)
            trial.statements = statements[:i] + statements[i + 1 :]
            trial.owner_exists = any(s.startswith(f"CREATE ROLE {ex.owner} ") for s in trial.statements)
            try:
                result = exactness.check_example(admin, trial, workdir)
            except Exception:
                continue
            same = (wanted & (set(result.lost) | set(result.gained))) if wanted else False
            if not result.ok and (same or (first_error and _error_line(result.error) == first_error)):
                statements, outcome, changed = trial.statements, result, True
                break
    log(f"shrunk to {len(statements)} statements")
    return outcome.describe() + "\n-- script:\n" + outcome.example.script() + "\n-- path:\n" + outcome.run.transcript()


def run_script(version: int, script: str, log: Any) -> int:
    """One database from a script (a failures-notes entry): prints the diff and the path's transcript."""
    statements = [s.strip().rstrip(";") for s in script.splitlines() if s.strip() and not s.startswith("--")]
    roles = [s.split()[2] for s in statements if s.startswith("CREATE ROLE xq_") and s.split()[2] != "xq_own"]
    owner_exists = any(s.startswith("CREATE ROLE xq_own ") for s in statements)
    ex = exactness.Example(version, "xq_", "xq_own", owner_exists, roles, statements)
    server = start_server(version, None, log)
    try:
        with tempfile.TemporaryDirectory(prefix="pgwarden-exactness-") as tmp:
            outcome = exactness.check_example(server.conninfo("postgres"), ex, Path(tmp))
    finally:
        server.cleanup()
    print(outcome.describe() or f"PostgreSQL {version}: exact")
    print(outcome.run.transcript())
    return 0 if outcome.ok else 1


def _error_line(error: str) -> str:
    """The first `error:` line of a failed path (what shrinking keeps)."""
    return next((line for line in error.splitlines() if line.startswith("error:")), "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.exactness", description=__doc__)
    ap.add_argument("--examples", type=int, default=100, help="examples per version (default 100)")
    ap.add_argument("--versions", default="14,15,16,17,18")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--shrink", type=int, default=0, metavar="N", help="shrink the first N failures of each version")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--script", type=Path, help="run one database from this SQL script instead (names xq_...)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill = Ctrl-C: the cluster is stopped and removed

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.script:
        codes = [run_script(int(v), args.script.read_text(), log) for v in args.versions.split(",")]
        return max(codes)
    results = []
    t0 = time.monotonic()
    for v in (int(x) for x in args.versions.split(",")):
        results.append(run_version(v, args.examples, args.seed, args.shrink, log))
    print(f"{'version':>7} {'examples':>8} {'failures':>8} {'builder errors':>14} {'median s':>8} {'max s':>6}")
    for r in results:
        med = f"{r['median_s']:.1f}" if r["median_s"] is not None else "-"
        mx = f"{r['max_s']:.1f}" if r["max_s"] is not None else "-"
        print(f"{r['version']:>7} {r['examples']:>8} {r['failures']:>8} {r['builder_errors']:>14} {med:>8} {mx:>6}")
    print(f"total {time.monotonic() - t0:.0f}s")
    for r in results:
        for text in r["shrunk"]:
            print(f"\n== PostgreSQL {r['version']}, shrunk failure\n{text}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["failures"] or r["builder_errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
