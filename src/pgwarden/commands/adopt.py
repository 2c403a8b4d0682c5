"""`pgwarden adopt`: move the database and every object in it from one role to the policy's owner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_targets,
    lock_timeout_option,
    ui_of,
)
from pgwarden.commands._output import print_errors
from pgwarden.findings import SCHEMA_VERSION as ADOPT_SCHEMA_VERSION  # one version for every document

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pgwarden.adopt import AdoptPlan
    from pgwarden.multi import Outcome
    from pgwarden.policy import Policy
    from pgwarden.ui import UI


@click.command(
    "adopt",
    help="""Move ownership of the database and of every object in it owned by ROLE to the policy's owner.

One ALTER ... OWNER TO per object (REASSIGN OWNED cannot move what the bootstrap superuser owns,
and would also move other databases), in batches, each its own transaction with lock_timeout;
a batch that waits too long is retried. Grants survive. Safe to interrupt and re-run.
Extension members stay; event triggers, foreign-data wrappers and extensions are reported only.

\b
  pgwarden adopt --from postgres           # show the statements (asks on a terminal)
  pgwarden adopt --from postgres --yes     # do it
  pgwarden adopt -d shop --from postgres   # one database of a version 2 file (default: all)""",
)
@config_option
@dsn_option
@databases_option
@click.option("--from", "from_role", required=True, metavar="ROLE", help="The role that owns the objects now.")
@click.option("-y", "--yes", is_flag=True, help="Move ownership without asking (otherwise: a dry run).")
@lock_timeout_option
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=100, show_default=True, help="Objects per transaction."
)
@format_option("text", "json")
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    from_role: str,
    yes: bool,
    lock_timeout: str | None,
    batch_size: int,
    fmt: str,
) -> int:
    from pgwarden.adopt import adopt, plan_adopt
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, None, dsn, databases)
    policy = next(iter(targets.values()))  # roles (and their passwords) are the same in every database
    secrets = policy.secrets()
    if len(targets) > 1:
        return _adopt_many(ui, targets, dsn, from_role, secrets, yes=yes, jobs=jobs, fmt=fmt,
                          lock_timeout=lock_timeout, batch_size=batch_size)  # fmt: skip
    with Session.open(dsn, policy) as session:
        preview = plan_adopt(session, from_role, secrets)
        if not yes:
            if fmt == "json":
                ui.json(_summary(preview, None))
                return EXIT_OK
            _show_plan(ui, preview)
            _show_notes(ui, preview)
            if not preview.objects or not ui.interactive:
                if preview.objects:
                    ui.info("dry run: nothing changed (pass --yes to move ownership)")
                return EXIT_OK
            if not click.confirm(f"Move these {len(preview.objects)} object(s)?", default=False, err=True):
                ui.info("nothing changed")
                return EXIT_OK
        result = _run(ui, session, from_role, lock_timeout, batch_size, adopt, secrets)
    if fmt == "json":
        ui.json(_summary(result.plan, len(result.moved), result.batches, result.retries))
        return EXIT_OK
    _show_notes(ui, result.plan)
    ui.print(
        f"moved {len(result.moved)} object(s) in {result.plan.database} from {result.plan.from_role} to "
        f"{result.plan.to_role} in {result.batches} batch(es)"
        + (f", {result.retries} retried after a lock timeout" if result.retries else "")
    )
    return EXIT_OK


def _summary(p: AdoptPlan, moved: int | None, batches: int = 0, retries: int = 0) -> dict[str, Any]:
    """The JSON document (schemas/adopt.json): a dry run when `moved` is None."""
    from pgwarden.adopt import REPORT_REASONS

    return {
        "schema_version": ADOPT_SCHEMA_VERSION,
        "database": p.database,
        "from": p.from_role,
        "to": p.to_role,
        "dry_run": moved is None,
        "statements": [s.as_string(None) for s in p.statements()],
        "objects": [o.to_dict() for o in p.objects],
        "moved": moved or 0,
        "batches": batches,
        "retries": retries,
        "reported": [{**o.to_dict(), "reason": REPORT_REASONS.get(o.kind, "")} for o in p.reported],
        "default_privileges": [d.to_dict() for d in p.default_privileges],
        "roles": [{"object": s.object, "sql": s.render(), "reason": s.reason} for s in p.roles],
    }


def _show_plan(ui: UI, p: AdoptPlan) -> None:
    if p.roles:
        ui.print(f"-- first, the policy's {len(p.roles)} missing role(s), as apply creates them:")
        for step in p.roles:
            ui.raw(step.render() + ";")
    if not p.objects:
        ui.print(f"nothing in database {p.database} is owned by {p.from_role}")
        return
    ui.print(f"-- adopt: {len(p.objects)} object(s) in {p.database} from {p.from_role} to {p.to_role}")
    for stmt in p.statements():
        ui.raw(stmt.as_string(None) + ";")


def _show_notes(ui: UI, p: AdoptPlan) -> None:
    from pgwarden.adopt import REPORT_REASONS

    for o in p.reported:
        ui.warn(f"{o.label} stays owned by {p.from_role}: {REPORT_REASONS.get(o.kind, '')}")
    if p.default_privileges:
        ui.warn(
            f"{p.from_role} defined default privileges in {p.database}; they apply only to objects "
            f"{p.from_role} creates. The equivalent for {p.to_role} (pgwarden apply sets the policy's own):"
        )
        for d in p.default_privileges:
            ui.info(f"  {d.statement};")


def _run(
    ui: Any, session: Any, from_role: str, lock_timeout: str | None, batch_size: int, adopt: Any, secrets: Any
) -> Any:
    """Run adopt with a progress bar on a terminal (stderr), plain notes otherwise."""
    if ui.quiet or not ui.err.is_terminal:

        def plain(what: str, done: int, total: int) -> None:
            if what == "retry":
                ui.info(f"lock timeout: retrying a batch ({done}/{total} moved)")

        return adopt(
            session, from_role, lock_timeout=lock_timeout, batch_size=batch_size, on_progress=plain, secrets=secrets
        )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("adopting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=ui.err, transient=True
    ) as progress:
        task = progress.add_task("adopt", total=None)

        def bar(what: str, done: int, total: int) -> None:
            progress.update(task, total=total, completed=done)
            if what == "retry":
                progress.console.print(f"lock timeout: retrying a batch ({done}/{total} moved)")

        return adopt(
            session, from_role, lock_timeout=lock_timeout, batch_size=batch_size, on_progress=bar, secrets=secrets
        )


def _adopt_many(
    ui: UI,
    targets: dict[str, Policy],
    dsn: str | None,
    from_role: str,
    secrets: dict[str, str],
    *,
    yes: bool,
    jobs: int,
    fmt: str,
    lock_timeout: str | None,
    batch_size: int,
) -> int:
    """Several databases: each previewed (a dry run without --yes), the policy's missing roles created
    once (roles are the cluster's: parallel runs would each try), then each database adopted on its own."""
    from pgwarden.adopt import adopt, create_roles, plan_adopt
    from pgwarden.multi import run_over
    from pgwarden.render import database_progress, envelope
    from pgwarden.session import Session

    def preview(policy: Policy) -> AdoptPlan:
        with Session.open(dsn, policy) as session:
            return plan_adopt(session, from_role, secrets)

    with database_progress(ui, "reading databases") as progress:
        previews = run_over(targets, preview, jobs=jobs, on_done=progress)
    plans = [o.result for o in previews if o.result is not None]
    if not yes:
        stop = _dry_run_many(ui, previews, fmt)
        if stop is not None:
            return stop
    elif print_errors(ui, previews):
        return EXIT_ERROR  # nothing was changed: every database is read before any is adopted
    missing = next((p for p in plans if p.roles), None)
    if missing is not None:
        with Session.open(dsn, targets[missing.database]) as session:
            create_roles(session, missing.roles)

    def one(policy: Policy) -> Any:
        with Session.open(dsn, policy) as session:
            return adopt(session, from_role, lock_timeout=lock_timeout, batch_size=batch_size, secrets=secrets)

    with database_progress(ui, "adopting databases") as progress:
        outcomes = run_over(targets, one, jobs=jobs, on_done=progress)
    if fmt == "json":
        moved = sum(len(o.result.moved) for o in outcomes if o.result is not None)
        summary = {"databases": len(outcomes), "moved": moved, "errors": sum(1 for o in outcomes if o.error)}
        ui.json(envelope(outcomes, lambda r: _summary(r.plan, len(r.moved), r.batches, r.retries), summary))
    else:
        for o in outcomes:
            if o.result is not None:
                r = o.result
                _show_notes(ui, r.plan)
                ui.print(f"moved {len(r.moved)} object(s) in {o.database} from {from_role} to {r.plan.to_role}")
    return EXIT_ERROR if print_errors(ui, outcomes) else EXIT_OK


def _dry_run_many(ui: UI, previews: Sequence[Outcome[AdoptPlan]], fmt: str) -> int | None:
    """Show what adopt would do in each database; the exit code when that is all (no --yes, nothing to
    move, a database that could not be read, not on a terminal, or "no"), None to go ahead."""
    from pgwarden.render import envelope

    plans = [o.result for o in previews if o.result is not None]
    total = sum(len(p.objects) for p in plans)
    if fmt == "json":
        errors = sum(1 for o in previews if o.error is not None)
        summary = {"databases": len(previews), "objects": total, "errors": errors}
        ui.json(envelope(previews, lambda p: _summary(p, None), summary))
    else:
        for o in previews:
            ui.print(f"== database {o.database}")
            if o.result is not None:
                _show_plan(ui, o.result)
                _show_notes(ui, o.result)
    failed = print_errors(ui, previews)
    if failed or not total or not ui.interactive:
        if total and not failed and fmt != "json":
            ui.info("dry run: nothing changed (pass --yes to move ownership)")
        return EXIT_ERROR if failed else EXIT_OK
    if not click.confirm(f"Move these {total} object(s) in {len(plans)} databases?", default=False, err=True):
        ui.info("nothing changed")
        return EXIT_OK
    return None
