"""Admin connections: libpq DSN or environment, with failures turned into one clear error."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from pgwarden.errors import ConnectError

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "pgwarden"


def conninfo_for(dsn: str | None, dbname: str | None = None, **overrides: Any) -> str:
    """A conninfo string from `dsn` (or the libpq environment when empty) with overrides."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if dbname is not None:
        params["dbname"] = dbname
    params.setdefault("application_name", APPLICATION_NAME)
    try:
        return make_conninfo(dsn or "", **params)
    except Exception as exc:  # psycopg.ProgrammingError for a malformed DSN
        raise ConnectError(
            f"invalid connection string: {_scrub(str(exc)).strip()}", hint="see --dsn in `pgwarden --help`"
        ) from None


def dsn_params(dsn: str | None) -> dict[str, str]:
    """The parameters written in `dsn` (password left out). The libpq environment is not read: for
    the server actually reached, whatever configured it, use server_params() on the open connection."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn or "").items() if v is not None}
    except Exception as exc:
        raise ConnectError(f"invalid connection string: {_scrub(str(exc)).strip()}") from None
    params.pop("password", None)
    return params


#: What another login needs to reach the same server as an open connection, and to verify it.
SERVER_KEYS = ("host", "port", "sslmode", "sslrootcert")


def server_params(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """host, port and sslmode of an open connection, from conn.info: --dsn, PG* variables and a
    service file (PGSERVICE) all end up here. sslmode is the one in force: as given, else `require`
    or `disable` as the connection turned out (what libpq's default `prefer` settled on)."""
    info = conn.info
    given = {k: str(v) for k, v in info.get_parameters().items() if k in SERVER_KEYS and v}
    params = {**given, "host": str(info.host), "port": str(info.port)}
    if "sslmode" not in given or given["sslmode"] in ("allow", "prefer"):
        params["sslmode"] = "require" if conn.pgconn.ssl_in_use else "disable"
    return params


def connect(
    conninfo: str,
    *,
    autocommit: bool = True,
    what: str = "the admin connection",
    connect_timeout: int = 10,
) -> psycopg.Connection[Any]:
    """Connect or raise ConnectError saying what failed and what to do."""
    import psycopg

    try:
        return psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        raise ConnectError(f"cannot open {what}: {_first_line(exc)}", hint=_connect_hint(str(exc), what)) from None


#: The names of the cluster's databases: sent on the admin connection as soon as it is open (EarlyAdmin)
DATABASE_NAMES = "SELECT datname FROM pg_catalog.pg_database"


class EarlyAdmin:
    """The admin connection, opened in a thread while the command reads its policy file (libpq
    waits for the server without the GIL): the command's first statement, the names of the
    cluster's databases (which tell whether the target exists), goes out before the policy is
    read. psycopg is imported here, in the caller's thread, first: the thread then only waits.
    `target`: a database the command will likely work on (read from the file before it is
    validated): its connection is opened next, if the database exists, for the session to use if
    its target is that database (take_target); an error there is left for the session to meet.

    Only --dsn and the environment say where to connect (a policy file names no server). An error
    of the connection is kept and raised by `take`, when the command gets there: a bad policy file
    is reported first, and alone (`drop`), as without this thread."""

    def __init__(self, dsn: str | None, target: str | None = None) -> None:
        import psycopg  # noqa: F401 - imported before the thread starts (see the docstring)

        self._dsn, self._target = dsn, target
        self._target_conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._names: frozenset[str] = frozenset()
        self._error: Exception | None = None
        self._dropped = False
        threading.Thread(target=self._open, name="pgwarden-admin-connection", daemon=True).start()

    def _open(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        names: frozenset[str] = frozenset()
        try:
            conn = connect(conninfo_for(self._dsn), what="the admin connection")
            names = frozenset(str(r[0]) for r in conn.execute(DATABASE_NAMES))
        except Exception as exc:  # noqa: BLE001 - raised by take(), in the command's order
            self._error = exc
            if conn is not None:
                conn.close()
                conn = None
        target = self._open_target() if conn is not None and self._target in names else None
        with self._lock:
            if self._dropped:
                for c in (conn, target):
                    if c is not None:
                        c.close()
            else:
                self._conn, self._names, self._target_conn = conn, names, target
        self._ready.set()

    def _open_target(self) -> psycopg.Connection[Any] | None:
        try:
            return connect(conninfo_for(self._dsn, dbname=self._target), what=f"database {self._target}")
        except Exception:  # noqa: BLE001 - the session connects again and reports it in its order
            return None

    def take_target(self, name: str) -> psycopg.Connection[Any] | None:
        """The connection to database `name` opened early (after take()), or None (another database,
        or none opened: then the session connects)."""
        with self._lock:
            conn, self._target_conn = self._target_conn, None
        if conn is not None and name != self._target:
            conn.close()
            return None
        return conn

    def take(self) -> tuple[psycopg.Connection[Any], frozenset[str]]:
        """The open connection and the databases' names (waiting for them); its error, if it failed."""
        self._ready.wait()
        with self._lock:
            self._dropped = True
            conn, self._conn = self._conn, None
        if conn is None:
            raise self._error if self._error is not None else ConnectError("the admin connection was not opened")
        return conn, self._names

    def drop(self, *, wait: bool = False) -> None:
        """Not needed after all (the policy file was bad, or several databases each open their own):
        closed now, or by the thread when it is open; its error, if any, is not reported. `wait`: until
        the thread is done (before a fork, whose children must not inherit a connection half open)."""
        with self._lock:
            self._dropped = True
            conn, self._conn = self._conn, None
            target, self._target_conn = self._target_conn, None
        for c in (conn, target):
            if c is not None:
                c.close()
        if wait:
            self._ready.wait()


def _first_line(exc: BaseException) -> str:
    text = _scrub(str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq prefixes "connection failed: connection to server at ... failed: FATAL: ..." — keep it all on one line
    return " ".join(lines) if lines else exc.__class__.__name__


def _connect_hint(message: str, what: str = "the admin connection") -> str:
    if "password authentication failed" in message:
        return "check the password (PGPASSWORD, ~/.pgpass or the password in --dsn)"
    if "permission denied for database" in message:
        # pgwarden's hardening revokes CONNECT from PUBLIC: only the policy's roles and the admin may connect
        return (
            "CONNECT on it is revoked from PUBLIC (pgwarden's hardening does that): connect as the admin "
            "that applied the policy (a superuser or the database's owner), or as a role that holds CONNECT"
        )
    if "does not exist" in message and "database" in message:
        if what == "the admin connection":
            return (
                "check the database name in --dsn (or PGDATABASE): the admin connection needs a database "
                "that exists, such as postgres; `pgwarden apply` creates only the policy's database"
            )
        return "check the database name, or run `pgwarden apply` to create it"
    if "no pg_hba.conf entry" in message:
        return "the server's pg_hba.conf does not allow this user/host/database"
    if "Connection refused" in message or "could not connect" in message or "No such file" in message:
        return "is the server running and reachable? check host and port (--dsn, PGHOST, PGPORT)"
    if "no password supplied" in message:
        return "set PGPASSWORD, use ~/.pgpass, or put password= in --dsn"
    return "check --dsn or the PG* environment variables"


_PASSWORD_IN_DSN = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_PASSWORD_IN_URL = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")


def _scrub(text: str) -> str:
    """Hide passwords that a DSN echoed into an error message."""
    text = _PASSWORD_IN_DSN.sub(r"\1***", text)
    return _PASSWORD_IN_URL.sub(r"\1***\3", text)


def scrub(text: str) -> str:
    return _scrub(text)
