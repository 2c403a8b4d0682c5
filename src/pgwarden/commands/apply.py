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
    kept,
    load_all,
    lock_timeout_option,
    mode_option,
    ui_of,
)
from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.ledger import LedgerHooks
    from pgwarden.policy import Policy
    from pgwarden.session import Session
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
  pgwarden apply -d shop    # one database of a version 2 file (default: all)
  pgwarden apply --plan reviewed.json   # exactly the reviewed plan, or nothing

Every apply records what it changed in the database's ledger (`pgwarden log`).""",
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
@click.option(
    "--plan",
    "plan_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Run exactly the plan `pgwarden plan --out FILE` wrote (the reviewed file is the approval: no "
    "question is asked); refuse, changing nothing, when the server, the database, the policy or the "
    "catalog state it was computed from has changed since.",
)
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
    plan_path: str | None,
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
    if plan_path is not None:
        from pgwarden.commands._reviewed import apply_reviewed

        return apply_reviewed(ui, plan_path, loaded, dsn, databases, secrets, skip_unprivileged, lock_timeout, fmt)
    if not yes and not ui.interactive:
        # refuse before connecting: nothing is read or changed
        raise PgwardenError(
            "apply changes the database and needs confirmation",
            hint="pass --yes (not on a terminal), or run `pgwarden plan` first to review",
        )
    from pgwarden.multi import select_in_file

    targets = list(select_in_file(loaded, dsn, databases, source=config).values())
    if len(targets) > 1:
        return _apply_many(ui, targets, dsn, secrets, yes, skip_unprivileged, lock_timeout, jobs, fmt, loaded)
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
        hooks = ledger_hooks(session, loaded)  # the ledger, and expire first when something is due
        with apply_progress(ui) as on_event:
            result = apply(
                session,
                secrets,
                skip_unprivileged=skip_unprivileged,
                lock_timeout=lock_timeout,
                on_event=on_event,
                hooks=hooks,
            )
        for note in hooks.notes:
            ui.info(note)
    if result.changed:  # committed: a Ctrl-C or a closed output from here on must say so
        kept(f"{len(result.executed)} change(s) committed in database {policy.database.name}")
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
    loaded: list[Policy],
) -> int:
    """Apply to several databases: each all-or-nothing on its own; roles are shared by the cluster,
    so a run that changes them waits for the others (advisory lock)."""
    import importlib

    from pgwarden.apply import ApplyResult, apply
    from pgwarden.multi import Outcome, run_each
    from pgwarden.planfile import policy_digest
    from pgwarden.render import render_applies
    from pgwarden.session import Session
    from pgwarden.shared import read_shared

    names = [p.database.name for p in targets]
    if not yes and not click.confirm(f"Apply the policy to {len(names)} databases?", default=False, err=True):
        ui.info("nothing changed")
        return EXIT_OK
    by_name = {p.database.name: p for p in targets}
    digest = policy_digest(loaded)  # the file's, as one database's apply records it; once, not per database
    cluster = read_shared(dsn, targets)  # the cluster-level part of each first read, once, before the fork

    def one(name: str) -> ApplyResult:
        with Session.open(dsn, by_name[name], cluster) as session:
            hooks = ledger_hooks(session, loaded, digest)
            return apply(session, secrets, skip_unprivileged=skip_unprivileged, lock_timeout=lock_timeout, hooks=hooks)

    def done(o: Outcome[ApplyResult], finished: int, total: int) -> None:
        if o.result is not None and o.result.changed:  # as it arrives: a Ctrl-C from here on must say so
            kept(f"{len(o.result.executed)} change(s) committed in database {o.database}")
        changes = f"{len(o.result.executed) if o.result else 0} change(s)"
        ui.info(f"[{finished}/{total}] {o.database}: " + (f"error: {o.error}" if o.error else changes))

    # the modules each database's apply imports on first use, imported once here: forked workers
    # would each import them again (about 17 ms per worker)
    for name in (
        "pgwarden.elevate",
        "pgwarden.ledger",
        "pgwarden.plan.expect",
        "pgwarden.resolve",
        "pgwarden.timebound",
    ):
        importlib.import_module(name)
    outcomes = run_each(names, one, jobs=jobs, on_done=done)
    render_applies(ui, outcomes, fmt)
    return EXIT_ERROR if any(o.error for o in outcomes) else EXIT_OK


def ledger_hooks(session: Session, policies: list[Policy], digest: str | None = None) -> LedgerHooks:
    """Every apply writes the database's ledger (pgwarden.ledger), with the policy's digest (given
    when already computed: a fleet's thousand databases share one)."""
    from pgwarden.elevate import expire_all
    from pgwarden.ledger import LedgerHooks
    from pgwarden.planfile import policy_digest

    return LedgerHooks(session, digest or policy_digest(policies), expire=expire_all)
