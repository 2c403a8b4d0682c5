"""`pgwarden apply`: make the database match the policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_all,
    lock_timeout_option,
    mode_option,
    ui_of,
)
from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.policy import Policy
    from pgwarden.ui import UI


@click.command(
    "apply",
    help="""Make the database match the policy: roles, database, schemas, grants, default privileges.

Roles and CREATE DATABASE run first (safe to re-run); everything inside the database then runs in
one transaction under an advisory lock, with lock_timeout so that live traffic is never blocked
for long. All or nothing: on any error the database is left as it was.

\b
  pgwarden apply            # shows the plan and asks on a terminal
  pgwarden apply --yes      # no question (CI, scripts)
  pgwarden apply -d shop    # one database of a version 2 file (default: all)""",
)
@config_option
@dsn_option
@databases_option
@mode_option
@click.option("-y", "--yes", is_flag=True, help="Apply without asking (required when not on a terminal).")
@click.option(
    "--skip-unprivileged",
    is_flag=True,
    help="Apply what the connected role may do, and print the SQL of the rest for someone with more rights.",
)
@lock_timeout_option
@format_option("text", "json")
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    mode: str | None,
    yes: bool,
    skip_unprivileged: bool,
    lock_timeout: str | None,
    fmt: str,
) -> int:
    from pgwarden.apply import apply
    from pgwarden.render import apply_progress, render_apply, render_plan
    from pgwarden.retirement import with_retirements
    from pgwarden.session import Session

    ui = ui_of(ctx)
    loaded = load_all(config, mode)
    policy = loaded[0]  # roles (and their passwords) are the same in every database
    secrets = policy.secrets()
    if not yes and not ui.interactive:
        # refuse before connecting: nothing is read or changed
        raise PgwardenError(
            "apply changes the database and needs confirmation",
            hint="pass --yes (not on a terminal), or run `pgwarden plan` first to review",
        )
    from pgwarden.multi import select_in_file

    targets = list(select_in_file(loaded, dsn, databases, source=config).values())
    if len(targets) > 1:
        return _apply_many(ui, targets, dsn, secrets, yes, skip_unprivileged, lock_timeout, jobs, fmt)
    policy = targets[0]
    with Session.open(dsn, policy) as session:
        if not yes:
            snap = session.snapshot(secrets=secrets)
            preview = with_retirements(session, snap, session.plan(snap, secrets))  # retired roles too
            if preview.empty:
                ui.info(f"database {policy.database.name} already matches the policy: nothing to do")
                return EXIT_OK
            render_plan(ui, preview, "text")
            if not click.confirm("Apply these changes?", default=False, err=True):
                ui.info("nothing changed")
                return EXIT_OK
        with apply_progress(ui) as on_event:
            result = apply(
                session, secrets, skip_unprivileged=skip_unprivileged, lock_timeout=lock_timeout, on_event=on_event
            )
    render_apply(ui, result, fmt)
    return EXIT_OK


def _apply_many(
    ui: UI,
    targets: list[Policy],
    dsn: str | None,
    secrets: dict[str, str],
    yes: bool,
    skip_unprivileged: bool,
    lock_timeout: str | None,
    jobs: int,
    fmt: str,
) -> int:
    """Apply to several databases: each all-or-nothing on its own; roles are shared by the cluster,
    so the cluster phase of each run waits for the others (advisory lock)."""
    from pgwarden.apply import ApplyResult, apply
    from pgwarden.multi import run_each
    from pgwarden.render import render_applies
    from pgwarden.session import Session

    names = [p.database.name for p in targets]
    if not yes and not click.confirm(f"Apply the policy to {len(names)} databases?", default=False, err=True):
        ui.info("nothing changed")
        return EXIT_OK
    by_name = {p.database.name: p for p in targets}

    def one(name: str) -> ApplyResult:
        with Session.open(dsn, by_name[name]) as session:
            return apply(session, secrets, skip_unprivileged=skip_unprivileged, lock_timeout=lock_timeout)

    outcomes = run_each(
        names,
        one,
        jobs=jobs,
        on_done=lambda o, done, total: ui.info(
            f"[{done}/{total}] {o.database}: "
            + (f"error: {o.error}" if o.error else f"{len(o.result.executed) if o.result else 0} change(s)")
        ),
    )
    render_applies(ui, outcomes, fmt)
    return EXIT_ERROR if any(o.error for o in outcomes) else EXIT_OK
