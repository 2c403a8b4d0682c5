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
  pgwarden elevate alice --to app_write --for 30min --reason "..." --inherit
  pgwarden elevate alice_inc1234 --to app_write --for 1h --reason "..." \\
      --create-login --password-env ONCALL_PASSWORD   # a login the server refuses after the hour""",
)
@click.argument("role")
@click.option("--to", "group", required=True, metavar="GROUP", help="The group role to grant for the window.")
@window_option
@reason_option
@click.option("--inherit", is_flag=True, help="16+: also INHERIT the group's rights (default: SET ROLE only).")
@click.option(
    "--create-login",
    is_flag=True,
    help="ROLE is a new login made for the occasion: created LOGIN VALID UNTIL the end (the server refuses "
    "it afterwards even if `expire` never runs), with the password from --password-env.",
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="With --create-login: the environment variable holding its password (stored as a SCRAM verifier "
    "computed here; the password never leaves this process).",
)
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
    create_login: bool,
    password_env: str | None,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
) -> int:
    from pgwarden.caps import Capabilities
    from pgwarden.elevate import Grant, elevate, record_elsewhere

    ui = ui_of(ctx)
    granted: list[Grant] = []
    password = _password(create_login, password_env)

    def job(session: Session, conn: psycopg.Connection[Any], index: int) -> None:
        if not granted:  # the membership is the cluster's: granted once, recorded in every database
            caps = Capabilities(conn.info.server_version)
            verifier = None
            if password is not None:
                verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
            granted.append(elevate(conn, caps, role, group, window, reason, inherit=inherit, login_verifier=verifier))
        else:
            record_elsewhere(conn, granted[0], "elevate")

    each_database(config, dsn, databases, job)
    if granted:
        ui.print(f"elevated: {describe(granted[0])}")
    else:
        ui.info("no database of the policy exists yet: nothing was granted")
    return EXIT_OK


def _password(create_login: bool, password_env: str | None) -> str | None:
    """--create-login's password, from its variable; one error line when the two options disagree."""
    import os

    from pgwarden.errors import PgwardenError

    if not create_login:
        if password_env is not None:
            raise PgwardenError("--password-env goes with --create-login", hint="add --create-login, or drop it")
        return None
    value = os.environ.get(password_env or "")
    if not password_env or not value:
        raise PgwardenError(
            "--create-login needs a password: --password-env VAR, with VAR set",
            hint="export ONCALL_PASSWORD=... and pass --password-env ONCALL_PASSWORD",
        )
    return value
