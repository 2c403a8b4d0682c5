"""pytest plugin (`pytest -p pgwarden`): a throwaway database with the policy applied, connections as each role.

Configuration (command line, else the ini file, else the environment):
  --pgwarden-policy / pgwarden_policy    the policy file (default pgwarden.toml, relative to the rootdir)
  --pgwarden-dsn / pgwarden_dsn          the admin connection (default $PGWARDEN_DSN, else the libpq environment)
  pgwarden_migrate (ini)                 a command run once as the owner on the new database, e.g.
                                         `alembic upgrade head` (it gets what `pgwarden run --as owner` gives)
Passwords: the roles' password variables (PGWARDEN_PASSWORD_<ROLE>), as for `pgwarden apply`.

Fixtures:
  pgwarden_database  (session) PgwardenDatabase: name, policy, conninfo(role), url(role), connect(role), env(role)
  pgwarden_role      the role of this test: "runtime" unless @pytest.mark.pgwarden_role(name); a role is "owner",
                     "runtime"/"readwrite" (the first login whose grants write rows), "readonly" (the first
                     whose grants only read them) or a name
  pgwarden_conn      a psycopg connection (autocommit) acting as pgwarden_role
  pgwarden_url       a SQLAlchemy URL (postgresql+psycopg://, password included) for pgwarden_role
Marker:
  pgwarden_role(name)  run the test as that role: the fixtures above follow it, and
                       PG*/DATABASE_URL in os.environ point at the throwaway database as that role.
"""

from __future__ import annotations

import os
import secrets as _random
import shlex
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pgwarden.errors import PgwardenError
from pgwarden.policy import Policy


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgwarden", "pgwarden: tests against a throwaway database with the policy applied")
    group.addoption("--pgwarden-policy", default=None, help="policy file (default: ini pgwarden_policy, pgwarden.toml)")
    group.addoption("--pgwarden-dsn", default=None, help="admin connection (default: ini pgwarden_dsn, $PGWARDEN_DSN)")
    parser.addini("pgwarden_policy", "pgwarden policy file", default="pgwarden.toml")
    parser.addini("pgwarden_dsn", "pgwarden admin connection (default $PGWARDEN_DSN)", default="")
    parser.addini("pgwarden_migrate", "command run as the owner on the throwaway database", default="")
    group.addoption(
        "--pgwarden-database",
        default=None,
        help="the policy file's database to copy (a name it lists or its pattern covers; default: ini "
        "pgwarden_database, else the admin connection's database when the file covers it, else the file's only one)",
    )
    parser.addini("pgwarden_database", "the policy file's database the throwaway database is made for", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pgwarden_role(name): run the test as a pgwarden policy role")


@dataclass
class PgwardenDatabase:
    """The throwaway database: the policy (renamed to it) applied, and how to reach it as each role."""

    name: str
    policy: Policy
    server: dict[str, str]
    secrets: dict[str, str] = field(repr=False)

    def _login(self, role: str) -> tuple[str, str | None, str]:
        from pgwarden.runner import resolve_role

        run_as = resolve_role(self.policy, role)
        password = self.secrets.get(run_as.password_env) if run_as.password_env else None
        return run_as.login, password, run_as.acts_as

    def conninfo(self, role: str = "runtime") -> str:
        """libpq conninfo to the database as `role` ("owner", "runtime" or an access role's name)."""
        from psycopg.conninfo import make_conninfo

        login, password, _ = self._login(role)
        params = {**self.server, "dbname": self.name, "user": login}
        if password is not None:
            params["password"] = password
        return make_conninfo(**params)

    def url(self, role: str = "runtime") -> str:
        """SQLAlchemy URL (psycopg 3 driver) as `role` (a deploy login acts as the owner by its role setting)."""
        from pgwarden.runner import database_url

        login, password, _ = self._login(role)
        server = self.server
        url = database_url(login, password, server.get("host"), server.get("port"), self.name, server.get("sslmode"))
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")

    def connect(self, role: str = "runtime", autocommit: bool = True) -> Any:
        """A psycopg connection as `role` (the caller closes it)."""
        import psycopg

        return psycopg.connect(self.conninfo(role), autocommit=autocommit)

    def env(self, role: str = "runtime") -> dict[str, str]:
        """What `pgwarden run --as ROLE` would give a command, pointed at this database."""
        from pgwarden.runner import command_env, resolve_role

        login, _, _ = self._login(role)
        return command_env(self.policy, resolve_role(self.policy, login), self.server)


def _setting(config: pytest.Config, option: str, ini: str) -> str:
    return str(config.getoption(option) or config.getini(ini) or "")


def _create(config: pytest.Config) -> PgwardenDatabase:
    from pgwarden.apply import apply
    from pgwarden.connect import server_params
    from pgwarden.session import Session

    path = Path(_setting(config, "--pgwarden-policy", "pgwarden_policy") or "pgwarden.toml")
    if not path.is_absolute():
        path = Path(config.rootpath) / path
    dsn = _setting(config, "--pgwarden-dsn", "pgwarden_dsn") or os.environ.get("PGWARDEN_DSN") or None
    base = _base_policy(path, _setting(config, "--pgwarden-database", "pgwarden_database") or None, dsn)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{base.database.name[:40]}_test_{worker}{_random.token_hex(4)}"
    policy = base.model_copy(update={"database": base.database.model_copy(update={"name": name})})
    secrets = policy.secrets()
    with Session.open(dsn, policy) as session:
        apply(session, secrets)
        server = server_params(session.admin)
    db = PgwardenDatabase(name, policy, server, secrets)
    command = str(config.getini("pgwarden_migrate") or "")
    if command:
        _migrate(db, command, config)
    return db


def _base_policy(path: Path, database: str | None, dsn: str | None) -> Policy:
    """The policy of the file's database the throwaway one copies: the one named, else the admin
    connection's database when the file lists or covers it, else the file's only database."""
    from pgwarden.connect import conninfo_for
    from pgwarden.errors import PolicyError
    from pgwarden.multi import policy_named
    from pgwarden.policy import load_policies

    policies = load_policies(path)
    if database is None:
        from psycopg.conninfo import conninfo_to_dict

        connected = conninfo_to_dict(conninfo_for(dsn)).get("dbname") or os.environ.get("PGDATABASE")
        if connected:
            with suppress(PolicyError):  # not one of the file's (postgres, say): its only one, then
                return policy_named(policies, str(connected), source=str(path))
    try:
        return policy_named(policies, database, source=str(path))
    except PolicyError as exc:
        raise PolicyError(
            exc.message, hint="name it with pgwarden_database in the pytest ini (or --pgwarden-database NAME)"
        ) from None


def _migrate(db: PgwardenDatabase, command: str, config: pytest.Config) -> None:
    import subprocess

    proc = subprocess.run(
        shlex.split(command), env=db.env("owner"), cwd=config.rootpath, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise PgwardenError(f"pgwarden_migrate `{command}` failed (exit {proc.returncode}): {proc.stderr.strip()}")


def _drop(db: PgwardenDatabase, dsn: str | None) -> None:
    from psycopg import sql

    from pgwarden.session import Session

    with Session.open(dsn, db.policy) as session:
        session.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.name)))


@pytest.fixture(scope="session")
def pgwarden_database(pytestconfig: pytest.Config) -> Iterator[PgwardenDatabase]:
    """A database made for this test session from the policy (roles, grants, hardening), dropped afterwards."""
    try:
        db = _create(pytestconfig)
    except PgwardenError as exc:
        pytest.fail(f"pgwarden: {exc.message}" + (f" (hint: {exc.hint})" if exc.hint else ""), pytrace=False)
    try:
        yield db
    finally:
        dsn = _setting(pytestconfig, "--pgwarden-dsn", "pgwarden_dsn") or os.environ.get("PGWARDEN_DSN") or None
        _drop(db, dsn)


@pytest.fixture
def pgwarden_role(request: pytest.FixtureRequest) -> str:
    """The role this test acts as: @pytest.mark.pgwarden_role(name), else "runtime"."""
    marker = request.node.get_closest_marker("pgwarden_role")
    return str(marker.args[0]) if marker is not None and marker.args else "runtime"


@pytest.fixture
def pgwarden_conn(pgwarden_database: PgwardenDatabase, pgwarden_role: str) -> Iterator[Any]:
    """A psycopg connection (autocommit) to the throwaway database as this test's role."""
    conn = pgwarden_database.connect(pgwarden_role)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def pgwarden_url(pgwarden_database: PgwardenDatabase, pgwarden_role: str) -> str:
    """A SQLAlchemy URL to the throwaway database as this test's role."""
    return pgwarden_database.url(pgwarden_role)


@pytest.fixture(autouse=True)
def _pgwarden_role_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # only tests marked pgwarden_role get (and pay for) the database
    if request.node.get_closest_marker("pgwarden_role") is None:
        return
    db: PgwardenDatabase = request.getfixturevalue("pgwarden_database")
    env = db.env(request.getfixturevalue("pgwarden_role"))
    for key in [k for k in os.environ if k.startswith("PG") and not k.startswith("PGWARDEN_")]:
        monkeypatch.delenv(key)
    for key in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE", "DATABASE_URL"):
        if key in env:
            monkeypatch.setenv(key, env[key])
