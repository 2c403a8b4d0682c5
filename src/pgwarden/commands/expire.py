"""`pgwarden expire`: end what expired (elevations, break-glass windows) and the sessions still using it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import EXIT_OK, config_option, databases_option, dsn_option, format_option, ui_of
from pgwarden.commands._timebound import each_database

if TYPE_CHECKING:
    import psycopg

    from pgwarden.elevate import Ended
    from pgwarden.session import Session


@click.command(
    "expire",
    help="""Revoke every elevation whose time is up, lock every break-glass role whose window
closed, record it in the ledger, and end the sessions of those roles (a session that SET ROLE to
the group keeps the group's rights until it ends). Run it from cron, the Ansible collection or the
Kubernetes CronJob; every `pgwarden apply` runs it first too. Safe to run at any time.

\b
  pgwarden expire            # exit 0 whether or not something expired
  */5 * * * * pgwarden expire -c /etc/pgwarden.toml --quiet""",
)
@config_option
@dsn_option
@databases_option
@format_option("text", "json")
@click.pass_context
def command(ctx: click.Context, config: str, dsn: str | None, databases: tuple[str, ...], jobs: int, fmt: str) -> int:
    from pgwarden.elevate import expire_all

    ui = ui_of(ctx)

    def job(session: Session, conn: psycopg.Connection[Any], index: int) -> tuple[str, list[Ended]]:
        return session.target, expire_all(conn, session.policy.temporary)

    results = each_database(config, dsn, databases, job)
    if fmt == "json":
        ui.json(
            {
                "schema_version": 1,
                "ended": [
                    {
                        "database": db,
                        "kind": e.grant.kind,
                        "role": e.grant.role,
                        "group": e.grant.group,
                        "until": e.grant.until,
                        "statements": list(e.statements),
                        "sessions_ended": e.terminated,
                    }
                    for db, ended in results
                    for e in ended
                ],
            }
        )
        return EXIT_OK
    count = 0
    for db, ended in results:
        for e in ended:
            count += 1
            what = f"membership of {e.grant.role} in {e.grant.group}" if e.grant.group else f"login of {e.grant.role}"
            ui.print(f"{db}: ended the {what} (until {e.grant.until}); {e.terminated} session(s) ended")
    if not count:
        ui.info("nothing had expired")
    return EXIT_OK
