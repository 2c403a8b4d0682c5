"""env.py of the test Alembic project: migrations run as the owner through pgwarden's helper."""

from alembic import context

from pgwarden.contrib.alembic import run_migrations_online

run_migrations_online(context, target_metadata=None)
