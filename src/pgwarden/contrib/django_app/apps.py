"""AppConfig: registers the system check and refuses `migrate` as any role but the owner."""
# mypy: disable-error-code="import-untyped,misc"

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.management.base import CommandError
from django.db.models.signals import pre_migrate

_checked: set[str] = set()


class PgwardenConfig(AppConfig):
    name = "pgwarden.contrib.django_app"
    label = "pgwarden"
    verbose_name = "pgwarden"

    def ready(self) -> None:
        checks.register(runtime_role_check, checks.Tags.database)
        pre_migrate.connect(refuse_migrate_as_runtime, dispatch_uid="pgwarden.refuse_migrate")
        # TestRunner's flushes as the owner, in --parallel workers too (a spawned worker runs ready())
        from django.db.backends.signals import connection_created

        from pgwarden.contrib.django import flush_as_owner

        connection_created.connect(flush_as_owner, dispatch_uid="pgwarden.flush_as_owner")


def runtime_role_check(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W001 when the runtime role (not migrating) could alter the schema."""
    from django.db import connections

    from pgwarden.contrib.django import migrating, runtime_can_alter_schema

    if migrating():
        return []
    out: list[checks.CheckMessage] = []
    for alias in databases or ():
        conn = connections[alias]
        if conn.vendor != "postgresql":
            continue
        with conn.cursor() as cursor:
            reasons = runtime_can_alter_schema(cursor)
        if reasons:
            out.append(
                checks.Warning(
                    f"database {alias!r}: the runtime role {conn.settings_dict['USER']} can alter the schema "
                    f"({'; '.join(reasons)})",
                    hint="run migrations as the owner (pgwarden run --as owner -- python manage.py migrate) "
                    "and let `pgwarden apply` set the access role's grants",
                    id="pgwarden.W001",
                )
            )
    return out


def refuse_migrate_as_runtime(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Stop `migrate` before it changes anything when it does not act as the policy's owner."""
    from django.db import connections

    from pgwarden.contrib.django import policy_path_setting
    from pgwarden.errors import PgwardenError
    from pgwarden.policy import load_policy

    if using in _checked:  # the signal comes once per app; one look per database is enough
        return
    try:
        owner = load_policy(policy_path_setting()).owner.name
    except PgwardenError:
        return  # no policy: nothing to compare with
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT current_user")
        current = cursor.fetchone()[0]
    if current == owner:
        _checked.add(using)
        return
    if current != owner:
        raise CommandError(
            f"pgwarden: migrations must run as the owner {owner}, but this connection acts as {current}. "
            f"Run: pgwarden run --as owner -- python manage.py migrate"
        )
