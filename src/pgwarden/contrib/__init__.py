"""Framework integrations: Django (pgwarden.contrib.django) and Alembic (pgwarden.contrib.alembic)."""
