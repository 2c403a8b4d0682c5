"""`pgwarden plan`: what apply would do, each step with its reason."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_FOUND, EXIT_OK, config_option, dsn_option, format_option, load, ui_of


@click.command(
    "plan",
    help="""Show what `apply` would change, each step with its reason. Changes nothing.

\b
  pgwarden plan                      # human-readable
  pgwarden plan --format sql > review.sql
  pgwarden plan --format json
  pgwarden plan --exit-code          # exit 1 when changes are pending (for CI)

Steps the connected role may not run are marked with what they need.""",
)
@config_option
@dsn_option
@format_option("text", "sql", "json")
@click.option("--exit-code", is_flag=True, help="Exit 1 when changes are pending, 0 when none.")
@click.pass_context
def command(ctx: click.Context, config: str, dsn: str | None, fmt: str, exit_code: bool) -> int:
    from pgwarden.connect import secrets_from_env
    from pgwarden.plan import plan
    from pgwarden.render import render_plan
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load(config)
    secrets = secrets_from_env([env for _, env in policy.login_roles()])
    with Session.open(dsn, policy) as session:
        result = plan(policy, session.snapshot(secrets=secrets), secrets)
    render_plan(ui, result, fmt)
    return EXIT_FOUND if exit_code and not result.empty else EXIT_OK
