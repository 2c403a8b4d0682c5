"""The unprivileged OS user the server runs as when pgwarden runs as root (initdb and postgres refuse root)."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pgwarden.errors import ServerError
from pgwarden.server.files import cache_dir, file_lock, is_root, makedirs_traversable, open_to_others

SERVER_OS_USER = "pgwarden"


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int


def server_os_user() -> OsUser | None:
    """None when not root; else the unprivileged account to run initdb/pg_ctl/postgres as."""
    if not is_root():
        return None

    def lookup(name: str) -> OsUser | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)

    if (user := lookup(SERVER_OS_USER)) is not None:
        return user
    useradd = shutil.which("useradd") or next(
        (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.path.exists(p)), None
    )
    if useradd is not None:
        with file_lock(Path(tempfile.gettempdir()) / ".pgwarden-useradd.lock"):
            if (user := lookup(SERVER_OS_USER)) is not None:
                return user
            nologin = next(
                (p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(p)),
                "/bin/false",
            )
            for _attempt in range(5):
                subprocess.run(
                    [useradd, "--system", "--no-create-home", "--shell", nologin, SERVER_OS_USER],
                    capture_output=True,
                    check=False,
                )
                if (user := lookup(SERVER_OS_USER)) is not None:
                    return user
                time.sleep(0.2)  # /etc/passwd locked by someone else: try again
    if (user := lookup("nobody")) is not None:
        return user
    raise ServerError(
        "running as root, and there is no unprivileged user to run PostgreSQL as "
        "(initdb and postgres refuse to run as root)",
        hint=f"create one (useradd --system --no-create-home {SERVER_OS_USER}), or run as non-root",
    )


def copy_readable_by_others(install_root: Path, full_version: str) -> Path:
    """A copy of a PostgreSQL installation the server's OS user can run (the original may be under
    /root, mode 700), made once in the cache; the copy's root."""
    digest = hashlib.sha256(str(install_root).encode()).hexdigest()[:12]
    copies = cache_dir() / "copies"
    makedirs_traversable(copies)
    target = copies / f"postgresql-{full_version}-{digest}"
    with file_lock(copies / f".lock-{digest}"):
        if not target.exists():
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=copies))
            try:
                shutil.copytree(install_root, tmp / "tree", symlinks=True)
                open_to_others(tmp / "tree")
                os.rename(tmp / "tree", target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target
