"""AppConfig: registers the system check and refuses `migrate` as any role but the owner."""
# mypy: disable-error-code="import-untyped,misc"

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.management.base import CommandError
from django.db.models.signals import post_migrate, pre_migrate

_checked: set[str] = set()
_kept: set[str] = set()


class PgwardenConfig(AppConfig):
    name = "pgwarden.contrib.django_app"
    label = "pgwarden"
    verbose_name = "pgwarden"

    def ready(self) -> None:
        checks.register(runtime_role_check, checks.Tags.database)
        pre_migrate.connect(refuse_migrate_as_runtime, dispatch_uid="pgwarden.refuse_migrate")
        post_migrate.connect(keep_history_the_owners, dispatch_uid="pgwarden.keep_history")
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


#: Grants on django_migrations, and on its id sequence, that let a role rewrite the migration history
#: (rule bookkeeping.writable): the statement that takes each back, names quoted by the server.
_WRITERS = """SELECT DISTINCT format('REVOKE %s ON %s %s FROM %s',  -- sent without parameters: % is format()'s
       CASE WHEN c.relkind = 'S' THEN 'USAGE, UPDATE' ELSE 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER' END,
       CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)
FROM pg_catalog.pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE a.grantee <> c.relowner AND (
    (c.oid = to_regclass('django_migrations')
     AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER'))
    OR (c.oid = to_regclass(CASE WHEN to_regclass('django_migrations') IS NOT NULL
                                 THEN pg_catalog.pg_get_serial_sequence('django_migrations', 'id') END)
        AND a.privilege_type IN ('USAGE', 'UPDATE')))"""


def keep_history_the_owners(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """After `migrate` as the owner: django_migrations, created by the first migrate, got the schema's
    default privileges (the app's INSERT, UPDATE, DELETE, and USAGE on its id sequence); the owner takes
    them back at once, so that
    the app never can rewrite the history, not even until the next `pgwarden apply`."""
    from django.db import connections

    from pgwarden.contrib.django import policy_path_setting
    from pgwarden.errors import PgwardenError
    from pgwarden.policy import load_policy

    if using not in _checked or using in _kept or connections[using].vendor != "postgresql":
        return  # not migrating as the owner (refuse_migrate_as_runtime saw it), or done already
    _kept.add(using)
    try:
        if not load_policy(policy_path_setting()).hardening.protect_bookkeeping:
            return
    except PgwardenError:
        return
    with connections[using].cursor() as cursor:
        cursor.execute(_WRITERS)
        for (statement,) in cursor.fetchall():  # names quoted by the server (regclass, quote_ident)
            cursor.execute(statement)
