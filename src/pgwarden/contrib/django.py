"""Django integration: DATABASES entries for the runtime or the owner role, a system check, `pgwarden_check`.

settings.py:

    from pgwarden.contrib.django import database_settings
    DATABASES = {"default": database_settings("pgwarden.toml")}
    INSTALLED_APPS += ["pgwarden.contrib.django_app"]
    PGWARDEN_POLICY = "pgwarden.toml"

The entry is the runtime (readwrite access) role's, unless the process runs migrations: an explicit
switch, PGWARDEN_MIGRATE=1, which `pgwarden run --as owner` sets (argv is never looked at).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pgwarden.errors import PgwardenError
from pgwarden.policy import Policy, load_policy, password_env_for
from pgwarden.runner import MIGRATE_ENV


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
    **extra: Any,
) -> dict[str, Any]:
    """The DATABASES entry for `role` ("runtime", "owner" or an access role's name; default: by PGWARDEN_MIGRATE).

    The runtime role is the policy's first readwrite access role. As the owner, a NOLOGIN owner is
    reached through its first deploy login with Django's OPTIONS["assume_role"] (Django 5.2+), so
    every session runs SET ROLE owner even where the per-database role setting is not in place.
    Credentials: PGUSER/PGPASSWORD when `pgwarden run` set them, else the role's password variable.
    """
    env = os.environ if environ is None else environ
    policy = load_policy(policy_path)
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
    entry: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": policy.database.name,
        "USER": user,
        "PASSWORD": password or "",
        "HOST": host if host is not None else env.get("PGHOST", ""),
        "PORT": str(port) if port is not None else env.get("PGPORT", ""),
        "OPTIONS": options,
    }
    entry.update(extra)
    return entry


def _access_role(policy: Policy, want: str) -> Any:
    for access in policy.access:
        if access.name == want or (want == "runtime" and access.level == "readwrite"):
            return access
    raise PgwardenError(f"no access role {want!r} in the policy", hint="name a readwrite [[access]] role")


def policy_path_setting() -> str:
    from django.conf import settings  # type: ignore[import-untyped]

    return str(getattr(settings, "PGWARDEN_POLICY", "pgwarden.toml"))


def runtime_can_alter_schema(cursor: Any) -> list[str]:
    """Why the connected role can change the schema (empty when it cannot): owns objects, has CREATE."""
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
