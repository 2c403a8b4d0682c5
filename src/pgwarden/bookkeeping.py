"""Migration bookkeeping tables: the owner's to write, whatever profile an access role holds on their schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgwarden.policy import Policy

#: Each documented migration tool's bookkeeping tables (docs/tools/*): who applied which migration.
#: An app role that can write one can rewrite the history (mark a migration applied so that it never
#: runs, or unapplied so that it runs again). golang-migrate and dbmate share `schema_migrations`.
TOOLS: dict[str, tuple[str, ...]] = {
    "Django": ("django_migrations",),
    "Alembic": ("alembic_version",),
    "dbmate, golang-migrate, ActiveRecord": ("schema_migrations",),
    "ActiveRecord": ("ar_internal_metadata",),
    "Flyway": ("flyway_schema_history",),
    "Liquibase": ("databasechangelog", "databasechangeloglock"),
    "Knex": ("knex_migrations", "knex_migrations_lock"),
    "Prisma": ("_prisma_migrations",),
}

#: Table names that are bookkeeping in any managed schema.
TABLES: tuple[str, ...] = tuple(dict.fromkeys(t for names in TOOLS.values() for t in names))

#: Schemas whose every table is bookkeeping when the policy manages them: Sqitch's registry.
SCHEMAS: tuple[str, ...] = ("sqitch",)

#: What an access role may still hold on one: reading it (Django reads django_migrations at start-up
#: for its "unapplied migrations" warning; Rails reads schema_migrations and ar_internal_metadata).
READ = frozenset({"SELECT"})


def tables(policy: Policy) -> tuple[str, ...]:
    """The bookkeeping table names the planner protects under `policy` (none when it opts out)."""
    return TABLES if policy.hardening.protect_bookkeeping else ()


def schemas(policy: Policy) -> tuple[str, ...]:
    """Managed schemas whose every table is bookkeeping under `policy`."""
    if not policy.hardening.protect_bookkeeping:
        return ()
    return tuple(s for s in SCHEMAS if s in policy.database.schemas)


def is_bookkeeping(policy: Policy, schema: str, name: str) -> bool:
    return name in tables(policy) or schema in schemas(policy)
