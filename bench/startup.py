"""Start-up: from spawning `pgwarden check` to its first statement at the server, and what it imports first."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Row, Sample, run

# the server's log line prefix is "%m [%p] %q%u@%d ": %m is the time in milliseconds with its zone
_LOGGED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) \[\d+\] \S*@(\S*) LOG:  (?:statement|execute [^:]*): (.*)$",
    re.M,
)
_MARK = "SELECT 'pgwarden-bench-startup-mark'"
# python -X importtime: "import time: <self us> | <cumulative us> | <indent><module>"
_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$", re.M)


@dataclass
class Startup:
    """Per run: seconds from spawn to the first statement; the import costs of one -X importtime run."""

    first: list[float] = field(default_factory=list)
    imports_self: dict[str, list[float]] = field(default_factory=dict)  # module -> self seconds per run
    imports_top: dict[str, list[float]] = field(default_factory=dict)  # top-level import -> cumulative seconds


def bytecode(*trees: Path) -> None:
    """Compile the Python files of `trees` (a src/ directory) to bytecode, as pip does when it installs a
    package: start-up is then measured as a user pays it. Without it, every run under
    PYTHONDONTWRITEBYTECODE (or in a tree it cannot write) compiles pgwarden's modules from source:
    tens of milliseconds of start-up that no installed pgwarden spends."""
    import compileall

    for tree in trees:
        compileall.compile_dir(str(tree), quiet=1)


def pgwarden_tree() -> Path:
    """The directory pgwarden is imported from (src/ of a checkout, or site-packages)."""
    import pgwarden

    return Path(pgwarden.__file__).resolve().parent.parent


def _logged_at(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def first_statement(admin: Any, logfile: Any, argv: Sequence[str], env: dict[str, str] | None) -> tuple[float, Sample]:
    """Seconds from spawning argv to the first statement it sent, read from the server log.

    The log's clock and zone are calibrated by a marker statement the bench sends just before the
    spawn (the log says when the server received it; its zone is the server's log_timezone)."""
    seconds, _, sample = first_statements(admin, logfile, argv, env)
    return seconds, sample


def first_statements(
    admin: Any, logfile: Any, argv: Sequence[str], env: dict[str, str] | None, dbname: str | None = None
) -> tuple[float, float | None, Sample]:
    """first_statement's seconds, and those to the first statement sent to database `dbname` (None
    when not asked or none was): `check` sends its first statement on the admin connection (the
    databases' names) while it reads its policy, and its first catalog read to the target later."""
    offset = logfile.stat().st_size
    before = time.time()
    admin.execute(_MARK)
    spawned = time.time()
    sample = run(argv, env=env)
    with logfile.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", "replace")
    lines = _LOGGED.findall(text)
    mark = next((m for m in lines if _MARK in m[3]), None)
    if mark is None or mark[1] != "UTC":  # bench clusters log in UTC (log_timezone of initdb's environment)
        raise RuntimeError(f"no marker, or not a UTC log, in the server log after offset {offset}")
    after = [m for m in lines[lines.index(mark) + 1 :] if _MARK not in m[3]]
    if not after:
        raise RuntimeError(f"the command sent no statement (exit {sample.returncode}: {sample.stderr[-300:]})")
    # log times have millisecond resolution: the marker was received between `before` and `spawned`
    server_clock = _logged_at(mark[0]) - (before + spawned) / 2
    there = next((m for m in after if m[2] == dbname), None) if dbname is not None else None
    at_target = None if there is None else _logged_at(there[0]) - server_clock - spawned
    return _logged_at(after[0][0]) - server_clock - spawned, at_target, sample


def import_costs(argv: Sequence[str], env: dict[str, str] | None, into: Startup) -> None:
    """One run under `python -X importtime`: each module's own cost, and each top-level import's total."""
    out = subprocess.run([sys.executable, "-X", "importtime", *argv[1:]], capture_output=True, text=True, env=env)
    for self_us, cumulative_us, indent, module in _IMPORT.findall(out.stderr):
        into.imports_self.setdefault(module, []).append(int(self_us) / 1e6)
        if len(indent) == 1:  # imported by the program itself (or a function of it), not by another import
            into.imports_top.setdefault(module, []).append(int(cumulative_us) / 1e6)


def measure(ctx: Any, argv: list[str], label: str, *, top: int = 8) -> list[Row]:
    """Rows: start-up to the first statement (median of ctx.runs), the whole command, and the imports
    that cost most (medians over the same runs, -X importtime)."""
    bytecode(pgwarden_tree())
    found = Startup()
    whole = Row(f"{label}: whole command", 0)
    for i in range(ctx.runs):
        seconds, sample = first_statement(ctx.admin, ctx.statement_log.logfile, argv, ctx.env or None)
        found.first.append(seconds)
        whole.samples.append(sample)
        import_costs(argv, ctx.env or None, found)
        ctx.log(f"  {label}: run {i + 1}/{ctx.runs} first statement after {seconds * 1000:.0f} ms")
    first = Row(f"{label}: spawn to first statement", 0, goal="<= 0.100 s")
    first.samples = [replace(w, seconds=s) for s, w in zip(found.first, whole.samples, strict=True)]
    spread = f"min {min(found.first) * 1000:.0f} ms, max {max(found.first) * 1000:.0f} ms"
    tops = sorted(((statistics.median(v), m) for m, v in found.imports_top.items()), reverse=True)[:top]
    selfs = sorted(((statistics.median(v), m) for m, v in found.imports_self.items()), reverse=True)[:top]
    first.note = (
        spread + "; imports by the program (cumulative ms): " + ", ".join(f"{m} {s * 1000:.0f}" for s, m in tops)
    )
    whole.note = "most costly modules themselves (ms): " + ", ".join(f"{m} {s * 1000:.0f}" for s, m in selfs)
    return [first, whole]
