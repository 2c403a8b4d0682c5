"""Alembic integration: run migrations as the owner from env.py, committing for real under SQLAlchemy 2.

env.py:

    from alembic import context
    from pgwarden.contrib.alembic import run_migrations_online
    run_migrations_online(context, target_metadata=None)

The URL comes from DATABASE_URL (set by `pgwarden run --as owner`), turned into the psycopg 3
driver (postgresql+psycopg://). When the login is not the owner (a deploy login), the helper runs
SET ROLE owner and **commits**: under SQLAlchemy 2 any statement autobegins a transaction, and
Alembic's begin_transaction() then sees one already open and leaves it to the caller, so the
migrations run inside it, nobody commits, the connection closes with a rollback, and alembic still
exits 0 having changed nothing. Migrating as a role that is not the owner is refused with one
`error:` line and one `hint:` line on stderr, exit code 2 (no traceback).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from pgwarden.connect import scrub
from pgwarden.errors import PgwardenError
from pgwarden.runner import OWNER_ENV, ROLE_ENV

_RUN_HINT = "run migrations as the owner: pgwarden run --as owner -- alembic upgrade head"


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL with the psycopg 3 driver."""
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL")
    if not url:
        raise PgwardenError(
            "DATABASE_URL is not set", hint="run migrations with `pgwarden run --as owner -- alembic upgrade head`"
        )
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def assume_owner(connection: Any, owner: str) -> None:
    """Act as `owner` for the rest of the session, then commit so that Alembic owns the next transaction."""
    from sqlalchemy import text

    current = connection.execute(text("SELECT current_user")).scalar_one()
    if current != owner:
        connection.execute(text("SELECT set_config('role', :owner, false)"), {"owner": owner})
        current = connection.execute(text("SELECT current_user")).scalar_one()
    # The pitfall: the SELECTs above autobegan a transaction; without this commit Alembic would run
    # every migration inside it and never commit.
    connection.commit()
    if current != owner:
        raise PgwardenError(
            f"migrations must run as the owner {owner}, but the connection acts as {current}", hint=_RUN_HINT
        )


def run_migrations_online(
    context: Any,
    target_metadata: Any = None,
    *,
    url: str | None = None,
    owner: str | None = None,
    **configure: Any,
) -> None:
    """The usual online env.py body, acting as the owner (owner=, else $PGWARDEN_OWNER, else $PGWARDEN_ROLE).

    A refusal is one `error:` and one `hint:` line on stderr and exit code 2, not a traceback."""
    try:
        _run_online(context, target_metadata, url, owner, configure)
    except PgwardenError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        print(f"hint: {exc.hint or _RUN_HINT}", file=sys.stderr)
        raise SystemExit(2) from None


def _run_online(context: Any, target_metadata: Any, url: str | None, owner: str | None, configure: Any) -> None:
    from sqlalchemy import create_engine, pool

    owner = owner or os.environ.get(OWNER_ENV) or os.environ.get(ROLE_ENV)
    if not owner:
        raise PgwardenError(
            "the owner role is unknown", hint="run through `pgwarden run --as owner`, or pass owner= to the helper"
        )
    engine = create_engine(url or database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            try:
                assume_owner(connection, owner)
            except Exception as exc:
                if isinstance(exc, PgwardenError):
                    raise
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise PgwardenError(f"cannot act as the owner {owner}: {scrub(first)}", hint=_RUN_HINT) from None
            context.configure(connection=connection, target_metadata=target_metadata, **configure)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
