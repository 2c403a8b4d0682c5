"""`pgwarden elevate`: a membership with an end, recorded in the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import EXIT_OK, config_option, databases_option, dsn_option, ui_of
from pgwarden.commands._timebound import describe, each_database, reason_option, window_option

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session


@click.command(
    "elevate",
    help="""Grant ROLE membership in GROUP for a while: on PostgreSQL 16+ with SET and without
INHERIT (the role uses it with SET ROLE, so what it does as the group is deliberate). Recorded in
the ledger with the reason; plan, apply and check treat it as intended until it ends, and as drift
after. `pgwarden expire` (cron, and every apply) revokes it then and ends the sessions still using it.

\b
  pgwarden elevate alice --to app_write --for 1h --reason "INC-1234: fix the orders"
  pgwarden elevate alice --to app_write --for 30min --reason "..." --inherit""",
)
@click.argument("role")
@click.option("--to", "group", required=True, metavar="GROUP", help="The group role to grant for the window.")
@window_option
@reason_option
@click.option("--inherit", is_flag=True, help="16+: also INHERIT the group's rights (default: SET ROLE only).")
@config_option
@dsn_option
@databases_option
@click.pass_context
def command(
    ctx: click.Context,
    role: str,
    group: str,
    window: int,
    reason: str,
    inherit: bool,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
) -> int:
    from pgwarden.caps import Capabilities
    from pgwarden.elevate import Grant, elevate, record_elsewhere

    ui = ui_of(ctx)
    granted: list[Grant] = []

    def job(session: Session, conn: psycopg.Connection[Any], index: int) -> None:
        if not granted:  # the membership is the cluster's: granted once, recorded in every database
            caps = Capabilities(conn.info.server_version)
            granted.append(elevate(conn, caps, role, group, window, reason, inherit=inherit))
        else:
            record_elsewhere(conn, granted[0], "elevate")

    each_database(config, dsn, databases, job)
    if granted:
        ui.print(f"elevated: {describe(granted[0])}")
    else:
        ui.info("no database of the policy exists yet: nothing was granted")
    return EXIT_OK
