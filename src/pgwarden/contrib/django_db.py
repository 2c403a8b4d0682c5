"""Django DATABASES entries for the policy's roles, flushes as the owner, the schema check (see contrib.django)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgwarden.connect import dsn_params
from pgwarden.errors import PgwardenError
from pgwarden.policy import Policy, load_policies, password_env_for
from pgwarden.policy.patterns import is_pattern
from pgwarden.runner import MIGRATE_ENV

#: Key in a DATABASES entry's TEST dict, set by TestRunner: the owner's USER/PASSWORD/OPTIONS, for
#: flushes. It travels with the settings dict to --parallel workers (forked or spawned).
OWNER_KEY = "PGWARDEN_OWNER"


def migrating(environ: Mapping[str, str] | None = None) -> bool:
    """True when the process was started to run migrations (PGWARDEN_MIGRATE=1)."""
    env = os.environ if environ is None else environ
    return env.get(MIGRATE_ENV, "") in ("1", "true", "yes")


def database_settings(
    policy_path: str | Path = "pgwarden.toml",
    role: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
    port: str | int | None = None,
    database: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The DATABASES entry for `role` ("runtime", "owner" or an access role's name; default: by PGWARDEN_MIGRATE).

    The runtime role is the policy's first readwrite access role. As the owner, a NOLOGIN owner is
    reached through its first deploy login with Django's OPTIONS["assume_role"] (Django 5.2+), so
    every session runs SET ROLE owner even where the per-database role setting is not in place.
    Credentials: PGUSER/PGPASSWORD when `pgwarden run` set them, else the role's password variable.
    HOST/PORT: the arguments, else PGHOST/PGPORT, else those of $PGWARDEN_DSN.
    NAME: `database`, else the file's only database; a file of several databases, or one whose
    [[databases]] name is a pattern (`tenant_*`), takes it from `database` or PGDATABASE (which
    `pgwarden run -d NAME` sets), and must list or cover it.
    """
    env = os.environ if environ is None else environ
    policy = policy_for_settings(policy_path, database, env)
    want = role or ("owner" if migrating(env) else "runtime")
    options: dict[str, Any] = {}
    if want in ("owner", policy.owner.name):
        if policy.owner.login:
            user, password_env = policy.owner.name, policy.owner.password_env
        elif policy.owner.deploy_logins:
            user = policy.owner.deploy_logins[0]
            password_env = password_env_for(user)
            options["assume_role"] = policy.owner.name
        else:
            raise PgwardenError(f"the owner {policy.owner.name} cannot log in and the policy names no deploy login")
    else:
        access = _access_role(policy, want)
        user, password_env = access.name, access.password_env
    password = env.get(password_env) if password_env else None
    if env.get("PGUSER") == user and env.get("PGPASSWORD"):
        password = env["PGPASSWORD"]
    server = dsn_params(env.get("PGWARDEN_DSN")) if env.get("PGWARDEN_DSN") else {}
    entry: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": policy.database.name,
        "USER": user,
        "PASSWORD": password or "",
        "HOST": host if host is not None else env.get("PGHOST") or server.get("host", ""),
        "PORT": str(port) if port is not None else env.get("PGPORT") or server.get("port", ""),
        "OPTIONS": options,
    }
    entry.update(extra)
    return entry


def policy_for_settings(
    policy_path: str | Path, database: str | None = None, environ: Mapping[str, str] | None = None
) -> Policy:
    """The policy of the database the settings name (`database`, else PGDATABASE when the file has
    several or a pattern; else its only one): pgwarden.multi.policy_named."""
    from pgwarden.multi import policy_named

    env = os.environ if environ is None else environ
    policies = load_policies(policy_path)
    single = len(policies) == 1 and not is_pattern(policies[0].database.name)
    name = database or (None if single else env.get("PGDATABASE") or None)
    return policy_named(policies, name, source=str(policy_path))


def _access_role(policy: Policy, want: str) -> Any:
    from pgwarden.runner import ROLE_WORDS, role_for

    if want in ROLE_WORDS and want not in policy.role_names:
        want = role_for(policy, want)
    for access in policy.access:
        if access.name == want:
            return access
    raise PgwardenError(f"no access role {want!r} in the policy", hint="name a readwrite [[access]] role")


def policy_path_setting() -> str:
    """settings.PGWARDEN_POLICY (default pgwarden.toml); a relative path is taken from settings.BASE_DIR
    when that is set, so manage.py finds it from any directory."""
    from django.conf import settings  # type: ignore[import-untyped]

    path = Path(str(getattr(settings, "PGWARDEN_POLICY", "pgwarden.toml")))
    base = getattr(settings, "BASE_DIR", None)
    if not path.is_absolute() and base is not None:
        path = Path(str(base)) / path
    return str(path)


def admin_dsn_setting() -> str | None:
    """The admin connection: settings.PGWARDEN_DSN, else $PGWARDEN_DSN (None: the libpq environment)."""
    from django.conf import settings

    return getattr(settings, "PGWARDEN_DSN", None) or os.environ.get("PGWARDEN_DSN") or None


def runtime_can_alter_schema(cursor: Any) -> list[str]:
    """Why the connected role can change the schema (empty when it cannot): owns objects, has CREATE."""
    cursor.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")
    row = cursor.fetchone()
    if row and row[0]:
        return ["is a superuser"]  # pg_has_role() is true for every owner: counting would mislead
    cursor.execute(
        """SELECT 'owns ' || count(*) || ' object(s) in ' || n.nspname
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
           GROUP BY n.nspname
           UNION ALL
           SELECT 'has CREATE on schema ' || n.nspname FROM pg_catalog.pg_namespace n
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
             AND pg_catalog.has_schema_privilege(current_user, n.oid, 'CREATE')
           UNION ALL
           SELECT 'has CREATE on database ' || current_database()
           WHERE pg_catalog.has_database_privilege(current_user, current_database(), 'CREATE')
           ORDER BY 1"""
    )
    return [row[0] for row in cursor.fetchall()]


def flush_as_owner(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On a TestRunner connection, run what the app role may not as the owner: flush's TRUNCATE, and
    the setval() of reset_sequences and loaddata (UPDATE on a sequence)."""
    owner = connection.settings_dict.get("TEST", {}).get(OWNER_KEY)
    ops = connection.ops
    if not owner or getattr(ops, "_pgwarden_flush", False):
        return
    reset_by_name, reset = ops.sequence_reset_by_name_sql, ops.sequence_reset_sql

    def execute_sql_flush(sql_list: Sequence[str]) -> None:
        with _owner_connection(connection.settings_dict, owner) as conn, conn.transaction():
            for statement in sql_list:
                conn.execute(statement.encode())

    def sequence_reset_by_name_sql(style: Any, sequences: Any) -> list[str]:
        return _setval_as_owner(connection, owner, reset_by_name(style, sequences))

    def sequence_reset_sql(style: Any, model_list: Any) -> list[str]:
        return _setval_as_owner(connection, owner, reset(style, model_list))

    ops.execute_sql_flush = execute_sql_flush
    ops.sequence_reset_by_name_sql = sequence_reset_by_name_sql
    ops.sequence_reset_sql = sequence_reset_sql
    ops._pgwarden_flush = True


# Django's "SELECT setval(pg_get_serial_sequence(...), value, is_called)[ FROM table];"
_SETVAL = re.compile(r"^SELECT setval\((?P<args>.*)\)(?P<tail>(?: FROM .*)?);$", re.DOTALL)


def _setval_as_owner(connection: Any, owner: dict[str, Any], statements: list[str]) -> list[str]:
    """Compute setval()'s arguments on the test's own connection (it sees the rows loaddata has not
    committed), set them as the owner (sequences are not transactional), and leave Django nothing to run."""
    values: list[tuple[Any, ...]] = []
    rest: list[str] = []
    with connection.cursor() as cursor:
        for statement in statements:
            match = _SETVAL.match(statement.strip())
            if not match:
                rest.append(statement)
                continue
            cursor.execute(f"SELECT {match['args']}{match['tail']}")
            values.extend(row for row in cursor.fetchall() if row[0] is not None)
    if values:
        with _owner_connection(connection.settings_dict, owner) as conn:
            for row in values:
                conn.execute("SELECT pg_catalog.setval(%s::regclass, %s, %s)", row)
    return rest


@contextmanager
def _owner_connection(settings_dict: dict[str, Any], owner: dict[str, Any]) -> Iterator[Any]:
    import psycopg
    from psycopg import sql

    params = {
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "dbname": settings_dict["NAME"],
        "user": owner["USER"],
        "password": owner["PASSWORD"] or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        role = (owner.get("OPTIONS") or {}).get("assume_role")
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        yield conn
