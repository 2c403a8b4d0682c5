"""A throwaway local cluster: initdb, scram auth, 127.0.0.1 on a free port, stopped and deleted at the end."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pgwarden.errors import ServerError
from pgwarden.server.bindir import PgBinaries
from pgwarden.server.files import makedirs_traversable, temp_root, traversable_by_others
from pgwarden.server.osuser import copy_readable_by_others, server_os_user

_LOG_TAIL_LINES = 30
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
        self._os_user = server_os_user()
        self._bindir = binaries.bindir
        self._owns_base = base_dir is None or not Path(base_dir).exists()
        if base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="pgwarden-", dir=temp_root(self._os_user is not None)))
        else:
            self.base_dir = Path(base_dir).absolute()
        self.datadir = self.base_dir / "data"
        self.logfile = self.base_dir / "server.log"
        self.socket_dir = self.base_dir
        self._started = False
        self._starting = False  # inside pg_ctl start

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
        """Run one program in a session of its own: a Ctrl-C reaches only us, and we kill the whole
        group (initdb and the postgres it spawns) before anyone deletes the directory it writes to."""
        kwargs: dict[str, Any] = {}
        if self._os_user is not None:
            kwargs.update(user=self._os_user.uid, group=self._os_user.gid, extra_groups=[])
        try:
            proc = subprocess.Popen(
                list(args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self._env(),
                cwd=str(self.base_dir),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )
        except OSError as exc:
            raise ServerError(
                f"could not run {args[0]}: {exc}",
                hint="check that the PostgreSQL binaries exist and are executable"
                + (f" by the OS user {self._os_user.name}" if self._os_user else ""),
            ) from exc
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise ServerError(
                    f"{Path(args[0]).name} timed out after {timeout:.0f}s" + self._log_tail(),
                    hint="look at the server log: " + str(self.logfile),
                ) from exc
            raise
        return subprocess.CompletedProcess(list(args), proc.returncode, out, err)

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
            makedirs_traversable(self.base_dir.parent)
            if not traversable_by_others(self.base_dir.parent):
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
        target = copy_readable_by_others(self._bindir.parent, self.binaries.full_version)
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
            self._starting = True
            _running.add(self)  # an interruption from here on leaves a postmaster for atexit to stop
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
            self._starting = False
            if proc.returncode == 0:
                self._started = True
                return
            new_log = self.read_log()[log_size:]
            if "could not bind" in new_log or "already in use" in new_log:
                continue  # another process took the port between our probe and the bind
            break
        _running.discard(self)
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
        """Stop the server and remove its directory. Never raises: it runs on Ctrl-C and on errors,
        and the directory goes whatever state the server was left in."""
        try:
            self._wait_for_interrupted_start()
            try:
                self.stop()
            except ServerError:
                self.stop("immediate")
        except ServerError:
            self._kill_postmaster()
        finally:
            if self._owns_base:
                shutil.rmtree(self.base_dir, ignore_errors=True)
            else:
                shutil.rmtree(self.datadir, ignore_errors=True)
                with contextlib.suppress(OSError):
                    self.logfile.unlink()

    def _wait_for_interrupted_start(self, seconds: float = 5.0) -> None:
        """After a start interrupted inside pg_ctl, the postmaster it launched (in a session of its
        own) may not have written postmaster.pid yet: give it a moment, so that stop() finds it."""
        if not self._starting:
            return
        deadline = time.monotonic() + seconds
        while not (self.datadir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._starting = False

    def _kill_postmaster(self) -> None:
        """The last resort when pg_ctl cannot stop it: SIGKILL the postmaster (its children follow)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
        self._started = False
        _running.discard(self)

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
