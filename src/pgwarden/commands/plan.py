"""`pgwarden plan`: what apply would do, each step with its reason."""

from __future__ import annotations

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_targets,
    mode_option,
    ui_of,
)


@click.command(
    "plan",
    help="""Show what `apply` would change, each step with its reason. Changes nothing.

\b
  pgwarden plan                      # human-readable
  pgwarden plan --format sql > review.sql
  pgwarden plan --format json
  pgwarden plan --exit-code          # exit 1 when changes are pending (for CI)
  pgwarden plan -d shop              # one database of a version 2 file (default: all)
  pgwarden plan -d 'tenant_*' -j 8   # version 1: every matching database of the cluster

Steps the connected role may not run are marked with what they need.""",
)
@config_option
@dsn_option
@databases_option
@mode_option
@format_option("text", "sql", "json")
@click.option("--exit-code", is_flag=True, help="Exit 1 when changes are pending, 0 when none.")
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    mode: str | None,
    fmt: str,
    exit_code: bool,
) -> int:
    from pgwarden.multi import run_over
    from pgwarden.plan import Plan
    from pgwarden.policy import Policy
    from pgwarden.render import database_progress, render_plan, render_plans
    from pgwarden.retirement import with_retirements
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, mode, dsn, databases)
    base = next(iter(targets.values()))  # roles (and their passwords) are the same in every database
    secrets = base.secrets()

    def one(policy: Policy) -> Plan:
        with Session.open(dsn, policy) as session:
            snap = session.snapshot(secrets=secrets)
            return with_retirements(session, snap, session.plan(snap, secrets))  # the preflight of `retired`

    if len(targets) == 1:
        result = one(next(iter(targets.values())))
        render_plan(ui, result, fmt)
        return EXIT_FOUND if exit_code and not result.empty else EXIT_OK
    with database_progress(ui, "planning databases") as progress:
        outcomes = run_over(targets, one, jobs=jobs, on_done=progress)
    render_plans(ui, outcomes, fmt)
    if any(o.error for o in outcomes):
        return EXIT_ERROR
    pending = any(o.result is not None and not o.result.empty for o in outcomes)
    return EXIT_FOUND if exit_code and pending else EXIT_OK
