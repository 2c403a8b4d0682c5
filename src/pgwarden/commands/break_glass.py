"""`pgwarden break-glass open|close`: an emergency role may log in for a window the server enforces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import EXIT_OK, config_option, databases_option, dsn_option, ui_of
from pgwarden.commands._timebound import describe, each_database, reason_option, window_option

if TYPE_CHECKING:
    import psycopg

    from pgwarden.elevate import Grant
    from pgwarden.session import Session


@click.group(
    "break-glass",
    help="""Emergency roles: NOLOGIN between incidents; `open` lets one log in until the end of a
window (LOGIN VALID UNTIL: the server refuses its logins after it even if nothing else runs),
`close` (or `pgwarden expire` once the window is over) locks it again and ends its sessions.
Both are recorded in the ledger.

\b
  pgwarden break-glass open dba_oncall --for 1h --reason "INC-1234"
  pgwarden break-glass close dba_oncall""",
)
def command() -> None:
    pass


@command.command("open", help="Let ROLE (an existing NOLOGIN role, not a superuser) log in until the window ends.")
@click.argument("role")
@window_option
@reason_option
@click.option(
    "--password-env",
    metavar="VAR",
    help="Also set the role's password from this environment variable (stored as a SCRAM verifier computed "
    "here; the password never leaves this process).",
)
@config_option
@dsn_option
@databases_option
@click.pass_context
def open_(
    ctx: click.Context,
    role: str,
    window: int,
    reason: str,
    password_env: str | None,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
) -> int:
    import os

    from pgwarden.elevate import open_break_glass, record_elsewhere
    from pgwarden.errors import PgwardenError

    ui = ui_of(ctx)
    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise PgwardenError(f"{password_env} is not set", hint=f"export {password_env}=... first")
    opened: list[Grant] = []

    def job(session: Session, conn: psycopg.Connection[Any], index: int) -> None:
        if role not in session.policy.break_glass.roles:
            raise PgwardenError(
                f"{role} is not a break-glass role of the policy",
                hint=f'declare it first, reviewed like any change: [break_glass] roles = ["{role}"] '
                "(docs/change-control.md)",
            )
        if opened:
            record_elsewhere(conn, opened[0], "break-glass-open")
            return
        verifier = None
        if password is not None:
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        opened.append(open_break_glass(conn, role, window, reason, verifier=verifier))

    each_database(config, dsn, databases, job)
    if opened:
        ui.print(f"break-glass open: {describe(opened[0])}; the server refuses its logins after that")
    return EXIT_OK


@command.command("close", help="Lock ROLE again now (NOLOGIN), record it, and end its sessions.")
@click.argument("role")
@config_option
@dsn_option
@databases_option
@click.pass_context
def close(ctx: click.Context, role: str, config: str, dsn: str | None, databases: tuple[str, ...], jobs: int) -> int:
    from pgwarden.elevate import end

    ui = ui_of(ctx)
    results = each_database(
        config, dsn, databases, lambda s, conn, i: end(conn, role=role, kind="break-glass", expired_only=False)
    )
    ended = [e for r in results for e in r]
    if not ended:
        ui.info(f"no break-glass window of {role} is open")
        return EXIT_OK
    ui.print(f"break-glass closed: {role} is NOLOGIN again; {sum(e.terminated for e in ended)} session(s) ended")
    return EXIT_OK
