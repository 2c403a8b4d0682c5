"""Django tests as the app role: the test database created, migrated and hardened as the owner."""
# mypy: disable-error-code="import-untyped,misc"

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

from django.db import connections
from django.db.backends.signals import connection_created
from django.test.runner import DiscoverRunner

from pgwarden.contrib.django_db import (
    OWNER_KEY,
    admin_dsn_setting,
    database_settings,
    flush_as_owner,
    policy_path_setting,
)
from pgwarden.errors import PgwardenError, PolicyError
from pgwarden.policy import Policy, load_policies

_CREDENTIALS = ("USER", "PASSWORD", "OPTIONS")


class TestRunner(DiscoverRunner):
    """TEST_RUNNER = "pgwarden.contrib.django.TestRunner".

    For each PostgreSQL alias of the policy's database: the owner creates the test database (and the
    --parallel clones), migrates it and, through the admin connection (settings.PGWARDEN_DSN or
    $PGWARDEN_DSN, else the libpq environment), `pgwarden apply` makes it match the policy, hardening
    included. The tests then connect as the runtime role; TransactionTestCase flushes (TRUNCATE, which
    the app role may not run) go through a connection of the owner; the owner drops the databases.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        connection_created.connect(flush_as_owner, dispatch_uid="pgwarden.flush_as_owner")
        self._aliases: list[str] = []
        self._policies: dict[str, Policy] = {}  # alias -> the policy of the database its NAME names
        self._owner: dict[str, Any] = {}

    def setup_databases(self, **kwargs: Any) -> Any:
        try:
            policy, runtime = self._credentials()
            if self._aliases:
                check_login(policy, connections[self._aliases[0]].settings_dict, runtime)
        except PgwardenError as exc:
            _fail(exc)
        for alias in self._aliases:
            conn = connections[alias]
            conn.settings_dict.setdefault("TEST", {})[OWNER_KEY] = dict(self._owner)
            _use(conn, self._owner)
        old_config = super().setup_databases(**kwargs)
        try:
            for alias in self._aliases:
                conn = connections[alias]
                names = [conn.settings_dict["NAME"]]
                if self.parallel > 1:
                    names += [
                        conn.creation.get_test_db_clone_settings(str(i + 1))["NAME"] for i in range(self.parallel)
                    ]
                for name in names:
                    harden(self._policies[alias], name, admin_dsn_setting(), self.verbosity, self._say)
                _use(conn, runtime)
        except PgwardenError as exc:
            self.teardown_databases(old_config)
            _fail(exc)
        return old_config

    def _credentials(self) -> tuple[Policy, dict[str, Any]]:
        """The policy, the runtime role's credentials; the owner's and the aliases to switch go on self.
        An alias is the policy's when the file lists or covers (a [[databases]] pattern) its NAME."""
        from pgwarden.multi import policy_named

        path = policy_path_setting()
        policies = load_policies(path)
        self._policies = {}
        for alias in connections:
            if connections[alias].vendor != "postgresql":
                continue
            try:
                self._policies[alias] = policy_named(policies, connections[alias].settings_dict["NAME"])
            except PolicyError:
                continue  # a database the file says nothing of: not pgwarden's
        self._aliases = list(self._policies)
        policy = self._policies[self._aliases[0]] if self._aliases else policies[0]
        database = policy.database.name
        self._owner = {
            k: v for k, v in database_settings(path, role="owner", database=database).items() if k in _CREDENTIALS
        }
        runtime = {
            k: v for k, v in database_settings(path, role="runtime", database=database).items() if k in _CREDENTIALS
        }
        return policy, runtime

    def teardown_databases(self, old_config: Any, **kwargs: Any) -> None:
        for alias in self._aliases:
            _use(connections[alias], self._owner)  # the owner created them; the owner drops them
        super().teardown_databases(old_config, **kwargs)

    def _say(self, message: str) -> None:
        if self.verbosity >= 1:
            print(message, file=sys.stderr)


def check_login(policy: Policy, settings_dict: dict[str, Any], runtime: dict[str, Any]) -> None:
    """Log in once as the runtime role (to the policy's database) before creating anything: a missing or
    wrong password is one error now, not a traceback per test later."""
    import os

    import psycopg

    from pgwarden.runner import ROLE_ENV

    user = runtime["USER"]
    var = next((env for name, env in policy.login_roles() if name == user), None) or "its password variable"
    params = {
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "dbname": policy.database.name,
        "user": user,
        "password": runtime.get("PASSWORD") or None,
        "connect_timeout": 10,
    }
    try:
        psycopg.connect(**{k: v for k, v in params.items() if v is not None}).close()
    except psycopg.OperationalError as exc:
        text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if "authentication" not in text and "password" not in text:
            return  # not about the credentials: Django reports it as it would
        if not runtime.get("PASSWORD") and os.environ.get(ROLE_ENV):
            raise PgwardenError(
                f"the tests run as the app role {user}, but ${var} is not set: `pgwarden run` hands the "
                "command one role's password only",
                hint="run `python manage.py test` directly with both passwords set (or add --testrunner "
                "django.test.runner.DiscoverRunner to run the tests as the owner)",
            ) from None
        raise PgwardenError(
            f"the tests run as the app role {user}, which cannot log in: {text}",
            hint=f"set ${var} to {user}'s password" if not runtime.get("PASSWORD") else f"check ${var}",
        ) from None


def _fail(exc: PgwardenError) -> NoReturn:
    print(f"error: {exc.message}", file=sys.stderr)
    print(f"hint: {exc.hint or 'set PGWARDEN_DSN to an admin connection'}", file=sys.stderr)
    raise SystemExit(2) from None


def _use(conn: Any, credentials: dict[str, Any]) -> None:
    """Point a connection at other credentials (the next query reconnects); the project's own OPTIONS
    stay, only assume_role follows the credentials."""
    conn.close()
    conn.settings_dict["USER"] = credentials["USER"]
    conn.settings_dict["PASSWORD"] = credentials["PASSWORD"]
    options = {k: v for k, v in (conn.settings_dict.get("OPTIONS") or {}).items() if k != "assume_role"}
    conn.settings_dict["OPTIONS"] = {**options, **(credentials.get("OPTIONS") or {})}


def harden(policy: Policy, dbname: str, admin_dsn: str | None, verbosity: int, say: Callable[[str], None]) -> None:
    """`pgwarden apply` of `policy` to the database `dbname` (a test database or clone)."""
    from pgwarden.apply import apply
    from pgwarden.session import Session

    test_policy = policy.model_copy(update={"database": policy.database.model_copy(update={"name": dbname})})
    with Session.open(admin_dsn, test_policy) as session:
        result = apply(session, None)
    if verbosity >= 2:
        say(f"pgwarden: applied the policy to {dbname} ({len(result.executed)} statement(s))")
