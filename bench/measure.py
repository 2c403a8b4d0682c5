"""Run one command as a child process and measure it: wall time, peak memory, SQL statements sent."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Server log lines (log_line_prefix "%m [%p] %q%u@%d "): with log_statement=all each simple-protocol
# query is one "statement:" line and each extended-protocol execution (what psycopg sends with
# parameters, and each query of a pipeline) one "execute <name>:" line. Multi-statement strings are
# one line: we count what the client sent, i.e. round-trip units, not parsed statements.
_STATEMENT = re.compile(r"^\S+ \S+ \S+ \[\d+\] \S*@\S* LOG:  (?:statement|execute [^:]*): ", re.M)
# log_min_duration_statement=0 adds one "duration:" line per statement/parse/bind/execute: their
# sum is the time the server spent on the command's SQL (the rest is client, transfer, start-up).
_DURATION = re.compile(r"^\S+ \S+ \S+ \[\d+\] \S*@\S* LOG:  duration: ([0-9.]+) ms", re.M)


@dataclass
class Sample:
    """One run of one command."""

    seconds: float
    returncode: int
    max_rss_mb: float
    statements: int | None = None
    sql_seconds: float | None = None
    stdout: str = ""
    stderr: str = ""
    cpu_seconds: float | None = None  # the child's user + system CPU time (less sensitive to load than wall time)


@dataclass
class Row:
    """The median of several runs of one piece of work, as printed in the result table."""

    work: str
    tables: int
    samples: list[Sample] = field(default_factory=list)
    floor: str | None = None  # name of the row this one is compared with
    goal: str = ""
    note: str = ""
    skipped: str = ""  # why this work was not measured (then samples is empty)

    @property
    def seconds(self) -> float | None:
        return statistics.median(s.seconds for s in self.samples) if self.samples else None

    @property
    def statements(self) -> int | None:
        counts = [s.statements for s in self.samples if s.statements is not None]
        return int(statistics.median(counts)) if counts else None

    @property
    def sql_seconds(self) -> float | None:
        values = [s.sql_seconds for s in self.samples if s.sql_seconds is not None]
        return statistics.median(values) if values else None

    @property
    def max_rss_mb(self) -> float | None:
        return max(s.max_rss_mb for s in self.samples) if self.samples else None

    @property
    def failed(self) -> Sample | None:
        return next((s for s in self.samples if s.returncode not in (0, 1)), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "work": self.work,
            "tables": self.tables,
            "runs": len(self.samples),
            "seconds": self.seconds,
            "all_seconds": [round(s.seconds, 4) for s in self.samples],
            "floor": self.floor,
            "statements": self.statements,
            "sql_seconds": self.sql_seconds,
            "max_rss_mb": self.max_rss_mb,
            "returncodes": sorted({s.returncode for s in self.samples}),
            "goal": self.goal,
            "note": self.note,
            "skipped": self.skipped,
            "output_tail": _tail(self.samples[-1]) if self.samples else "",
        }


def _tail(sample: Sample, lines: int = 6) -> str:
    """The end of the last run's output, to see in the JSON what a command said (or why it failed)."""
    text = (sample.stdout[-4000:] + "\n" + sample.stderr[-4000:]).strip().splitlines()
    return "\n".join(text[-lines:])


class StatementLog:
    """Counts the statements a command sent by reading the server log before and after it."""

    def __init__(self, logfile: Path) -> None:
        self.logfile = logfile
        self._offset = 0

    def mark(self) -> None:
        self._offset = self.logfile.stat().st_size if self.logfile.exists() else 0

    def since_mark(self) -> tuple[int, float]:
        """(statements, server seconds) logged since mark()."""
        with self.logfile.open("rb") as fh:
            fh.seek(self._offset)
            text = fh.read().decode("utf-8", "replace")
        statements = len(_STATEMENT.findall(text))
        seconds = sum(float(ms) for ms in _DURATION.findall(text)) / 1000.0
        return statements, seconds


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    statement_log: StatementLog | None = None,
    stdin: str | None = None,
    timeout: float = 3600.0,
) -> Sample:
    """Run argv as a child process; time it and read its peak RSS from wait4 (its own, not a total)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode())
            inp.seek(0)
        if statement_log is not None:
            statement_log.mark()
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=inp, env=env)
        deadline = started + timeout
        # os.wait4 gives this child's rusage alone (RUSAGE_CHILDREN would mix every child so far).
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        sample = Sample(
            seconds=seconds,
            returncode=proc.returncode,
            # Linux reports ru_maxrss in KiB, macOS in bytes.
            max_rss_mb=usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024),
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )
    if statement_log is not None:
        sample.statements, sample.sql_seconds = statement_log.since_mark()
    return sample
