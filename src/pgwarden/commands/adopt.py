"""`pgwarden adopt`: move the database and every object in it from one role to the policy's owner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import EXIT_OK, config_option, dsn_option, format_option, load, lock_timeout_option, ui_of
from pgwarden.findings import SCHEMA_VERSION as ADOPT_SCHEMA_VERSION  # one version for every document

if TYPE_CHECKING:
    from pgwarden.adopt import AdoptPlan
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
  pgwarden adopt --from postgres --yes     # do it""",
)
@config_option
@dsn_option
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
    from_role: str,
    yes: bool,
    lock_timeout: str | None,
    batch_size: int,
    fmt: str,
) -> int:
    from pgwarden.adopt import adopt, plan_adopt
    from pgwarden.connect import secrets_from_env
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load(config)
    secrets = secrets_from_env([env for _, env in policy.login_roles()])
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
