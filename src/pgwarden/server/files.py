"""Filesystem helpers for the throwaway servers: the cache directory, modes others can traverse, file locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def cache_dir() -> Path:
    """Where pgwarden keeps downloaded binaries.

    PGWARDEN_CACHE_DIR, else /var/cache/pgwarden when running as root (the server then runs as an
    unprivileged user who cannot enter /root), else $XDG_CACHE_HOME/pgwarden or ~/.cache/pgwarden.
    """
    env = os.environ.get("PGWARDEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if is_root():
        return Path("/var/cache/pgwarden")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pgwarden"


def makedirs_traversable(path: Path) -> None:
    """mkdir -p with mode 0755 for every directory created (umask notwithstanding)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o755)
            os.chmod(directory, 0o755)


def open_to_others(tree: Path) -> None:
    """Give "other" read (and execute/traverse where the owner has it) on a whole tree."""
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            p = os.path.join(root, name)
            os.chmod(p, (os.lstat(p).st_mode & 0o7777) | 0o755)
        for name in files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = st.st_mode & 0o7777 | 0o444
            if mode & stat.S_IXUSR:
                mode |= 0o111
            os.chmod(p, mode)
    os.chmod(tree, (os.stat(tree).st_mode & 0o7777) | 0o755)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def traversable_by_others(path: Path) -> bool:
    """Whether every directory from / down to path lets "other" in (and path itself is readable)."""
    try:
        path = path.resolve()
        for parent in [*reversed(path.parents), path]:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


def temp_root(as_root: bool) -> str | None:
    """Where a cluster's directory goes: $TMPDIR (None: the system's default); as root, $TMPDIR only
    when the server's OS user can reach it (it may be inside /root), else /tmp."""
    if not as_root:
        return None
    tmpdir = os.environ.get("TMPDIR")
    return tmpdir if tmpdir and traversable_by_others(Path(tmpdir)) else "/tmp"
