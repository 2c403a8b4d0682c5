"""`pgwarden plan`: what apply would do, each step with its reason."""

from __future__ import annotations

from typing import Any

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_all,
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
  pgwarden plan --out plan.json      # also write the plan for review; `apply --plan plan.json` runs it

Steps the connected role may not run are marked with what they need.""",
)
@config_option
@dsn_option
@databases_option
@mode_option
@format_option("text", "sql", "json")
@click.option("--exit-code", is_flag=True, help="Exit 1 when changes are pending, 0 when none.")
@click.option(
    "--out",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Also write the plan (every selected database) with what it was computed from: the server's "
    "identity, the policy's digest and a fingerprint of the catalog state; `apply --plan FILE` runs "
    "exactly it (docs/change-control.md).",
)
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
    out: str | None,
) -> int:
    from pgwarden.multi import Outcome, run_over
    from pgwarden.plan import Plan
    from pgwarden.planfile import PlanRecorder
    from pgwarden.policy import Policy
    from pgwarden.render import database_progress, render_plan, render_plans
    from pgwarden.retirement import with_retirements
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, mode, dsn, databases)
    base = next(iter(targets.values()))  # roles (and their passwords) are the same in every database
    secrets = base.secrets()

    recorder = PlanRecorder(load_all(config, mode)) if out else None

    def made(policy: Policy) -> tuple[Plan, Any]:
        """The plan, and what the plan file records of it: both returned, never kept in this process's
        objects (with several databases the job runs in a forked worker: pgwarden.fleet)."""
        with Session.open(dsn, policy) as session:
            snap = session.snapshot(secrets=secrets)
            result = with_retirements(session, snap, session.plan(snap, secrets))  # the preflight of `retired`
            return result, (PlanRecorder.entry(session, snap, result) if recorder is not None else None)

    if len(targets) == 1:
        result, entry = made(next(iter(targets.values())))
        render_plan(ui, result, fmt)
        if recorder is not None and out is not None:
            recorder.record(entry)
            ui.info(recorder.write(out))
        return EXIT_FOUND if exit_code and not result.empty else EXIT_OK
    with database_progress(ui, "planning databases") as progress:
        both = run_over(targets, made, jobs=jobs, on_done=progress)
    outcomes = [Outcome(o.database, o.result[0] if o.result else None, o.error, o.seconds) for o in both]
    render_plans(ui, outcomes, fmt)
    if any(o.error for o in outcomes):
        return EXIT_ERROR  # and no plan file: a reviewed plan covers every database it names
    if recorder is not None and out is not None:
        for o in both:
            if o.result is not None:
                recorder.record(o.result[1])
        ui.info(recorder.write(out))
    pending = any(o.result is not None and not o.result.empty for o in outcomes)
    return EXIT_FOUND if exit_code and pending else EXIT_OK
