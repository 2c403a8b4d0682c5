"""What elevate, expire and break-glass share (not a command: the name starts with _)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import load_targets

if TYPE_CHECKING:
    import psycopg

    from pgwarden.elevate import Grant
    from pgwarden.session import Session


def window_option(f: Any) -> Any:
    return click.option(
        "--for",
        "window",
        required=True,
        metavar="DURATION",
        callback=_window,
        help="How long: 3s, 90min, 1h, 2d (at most 30 days).",
    )(f)


def reason_option(f: Any) -> Any:
    return click.option(
        "--reason", required=True, metavar="TEXT", help="Why (the ledger keeps it): a ticket, an incident."
    )(f)


def _window(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from pgwarden.elevate import window_seconds

    try:
        return window_seconds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def each_database(
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    job: Callable[[Session, psycopg.Connection[Any], int], Any],
) -> list[Any]:
    """`job(session, connection to the database, index)` for every selected database of the policy that exists."""
    from pgwarden.session import Session

    out = []
    for index, policy in enumerate(load_targets(config, None, dsn, databases).values()):
        with Session.open(dsn, policy) as session:
            if not session.target_exists():
                continue
            with session.connect_target(autocommit=False) as conn:
                out.append(job(session, conn, index))
    return out


def describe(grant: Grant) -> str:
    what = f"{grant.role} may SET ROLE {grant.group}" if grant.group else f"{grant.role} may log in"
    return f"{what} until {grant.until} ({grant.reason})"
