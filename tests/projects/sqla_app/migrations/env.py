"""Migrations run as the owner (pgwarden run --as owner, or the pytest plugin's pgwarden_migrate)."""

from alembic import context
from notes import Base

from pgwarden.contrib.alembic import run_migrations_online

run_migrations_online(context, target_metadata=Base.metadata)
