"""Plans and apply results as text, SQL and JSON (the library returns data; this prints)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from pgwarden.plan import Phase, Plan, Step
from pgwarden.plan.retire import describe
from pgwarden.render.check import provider_lines
from pgwarden.render.envelope import SCHEMA_VERSION, envelope

if TYPE_CHECKING:
    from pgwarden.apply import ApplyResult
    from pgwarden.multi import Outcome
    from pgwarden.ui import UI

PLAN_SCHEMA_VERSION = SCHEMA_VERSION


def plan_sql(plan: Plan) -> str:
    """A script a reviewer can read and run with psql (secrets appear as psql variables)."""
    out = [
        f"-- pgwarden plan for database {plan.database} (PostgreSQL {plan.server_version})",
        f"-- {len(plan.steps)} change(s); roles and CREATE DATABASE first, then the database part.",
    ]
    if any(s.display_sql is not None for s in plan.steps):
        out.append(
            "-- Passwords appear as psql variables: \\set PGWARDEN_PASSWORD_X to a SCRAM verifier, never clear text."
        )
    for note in plan.notes:
        out.append(f"-- note: {note}")
    current: Phase | None = None
    for step in plan.steps:
        if step.phase != current:
            current = step.phase
            out += ["", *_phase_header(plan, current)]
        out += _step_sql(step)
    if current == Phase.DATABASE:
        out.append("COMMIT;")
    out.extend(_retirements_sql(plan))
    out.extend(_withheld_sql(plan))
    return "\n".join(out) + "\n"


def _phase_header(plan: Plan, phase: Phase) -> list[str]:
    if phase == Phase.ROLES:
        return ["-- cluster: roles"]
    if phase == Phase.CREATE_DATABASE:
        return ["-- cluster: database (CREATE DATABASE cannot run inside a transaction)"]
    return [
        f"\\connect {_psql_ident(plan.database)}",
        "BEGIN;",
        f"SET LOCAL lock_timeout = {_psql_literal(plan.lock_timeout)};",
    ]


def _step_sql(step: Step) -> list[str]:
    """A step: a comment with its object, reason and flags (destructive, what it needs), then its SQL."""
    flags = []
    if step.destructive:
        flags.append("destructive")
    if not step.allowed:
        flags.append(f"needs {step.needs}")
    return [f"-- {step.object}: {step.reason}" + (f" [{'; '.join(flags)}]" if flags else ""), step.render() + ";"]


def _withheld_sql(plan: Plan) -> list[str]:
    if not plan.withheld:
        return []
    out = ["", f"-- additive mode: {len(plan.withheld)} step(s) withheld, what authoritative mode would also run:"]
    for step in plan.withheld:
        out.append(f"--   {step.object}: {step.reason}")
        out.extend(f"--     {line}" for line in step.render().splitlines())
    return out


def _retirements_sql(plan: Plan) -> list[str]:
    """Retired roles: each database's part in a transaction of its own, DROP ROLE last; a blocked
    retirement is printed commented out, under what blocks it."""
    if not plan.retirements:
        return []
    out = ["", "-- retired roles (apply commits every database's part only once all of them succeeded)"]
    for r in plan.retirements:
        out.extend(f"-- {line}" for line in describe([r]))
        lead = "-- " if r.blocked else ""
        out.extend(lead + s.render() + ";" for s in r.before)
        for work in r.databases:
            out += [f"{lead}\\connect {_psql_ident(work.database)}", f"{lead}BEGIN;"]
            out.append(f"{lead}SET LOCAL lock_timeout = {_psql_literal(plan.lock_timeout)};")
            out.extend(lead + s.render() + ";" for s in work.steps)
            out.append(f"{lead}COMMIT;")
        out.extend(lead + s.render() + ";" for s in r.after)
    return out


def _psql_ident(name: str) -> str:
    from psycopg import sql

    return sql.Identifier(name).as_string(None)


def _psql_literal(value: str) -> str:
    from psycopg import sql

    return sql.Literal(value).as_string(None)


def plan_text(steps: tuple[Step, ...] | list[Step]) -> str:
    """The plan as a numbered list for pipes and logs: "N. object — reason", then the SQL indented."""
    out = []
    for i, step in enumerate(steps, 1):
        flags = []
        if step.destructive:
            flags.append("destructive")
        if not step.allowed:
            flags.append(f"needs {step.needs}")
        out.append(f"{i}. {step.object} — {step.reason}" + (f" [{'; '.join(flags)}]" if flags else ""))
        out.extend("     " + line for line in step.render_short().splitlines())
    return "\n".join(out) + "\n"


def render_plan(ui: UI, plan: Plan, fmt: str) -> None:
    if fmt == "json":
        ui.json({"schema_version": PLAN_SCHEMA_VERSION, **plan.to_dict()})
        return
    if fmt == "sql":
        ui.raw(plan_sql(plan))
        return
    for note in plan.notes:
        ui.info(f"note: {note}")
    _provider(ui, plan)
    if plan.empty:
        done = "no changes" if not plan.withheld else "nothing to grant or create (additive mode)"
        ui.print(f"database {plan.database} matches the policy: {done}")
        _withheld(ui, plan)
        return
    if plan.steps:
        _steps(ui, plan)
    _retired(ui, plan)
    _withheld(ui, plan)


def _steps(ui: UI, plan: Plan) -> None:
    title = f"Plan for database {plan.database}: {len(plan.steps)} change(s)"
    if ui.out.is_terminal:
        _steps_table(ui, plan.steps, title)
    else:  # a narrow table folds SQL into unreadable columns: a list reads well in pipes and CI logs
        ui.raw(title + "\n\n" + plan_text(plan.steps))
    destructive = sum(1 for s in plan.steps if s.destructive)
    summary = f"{len(plan.steps)} change(s)"
    if destructive:
        summary += f", {destructive} destructive (revoking or moving what exists)"
    if plan.unprivileged:
        summary += (
            f", {len(plan.unprivileged)} need more than the connected role has "
            "(apply refuses unless --skip-unprivileged)"
        )
    ui.print(summary)


def _provider(ui: UI, plan: Plan) -> None:
    lines = provider_lines(plan)
    if lines:
        ui.raw("\n".join(lines) + "\n\n")


def _retired(ui: UI, plan: Plan) -> None:
    """The preflight of the retired roles that still exist: where they hold what, what blocks, the steps."""
    if not plan.retirements:
        return
    lines = describe(plan.retirements)
    steps = [s for r in plan.retirements if not r.blocked for s in r.steps]
    ui.raw(
        f"\nretired roles to drop ({len(plan.retirements)}), in every database of the cluster:\n"
        + "\n".join(lines)
        + "\n"
        + (("\n" + plan_text(steps)) if steps else "")
    )
    blocked = [r.role for r in plan.retirements if r.blocked]
    if blocked:
        ui.print(Text(f"blocked: {', '.join(blocked)} (apply refuses unless --skip-unprivileged, which leaves them)"))


def _withheld(ui: UI, plan: Plan) -> None:
    """Additive mode: what authoritative mode would also do, never run, listed apart."""
    if plan.withheld:
        ui.raw(
            f"\nwithheld in additive mode ({len(plan.withheld)}): authoritative mode would also run\n\n"
            + plan_text(plan.withheld)
        )


def render_plans(ui: UI, outcomes: Sequence[Outcome[Plan]], fmt: str) -> None:
    """Several databases: each plan, then a total; errors per database, never hiding the rest."""
    if fmt == "json":
        ui.json(envelope(outcomes, lambda p: p.to_dict(), _multi_summary(outcomes)))
        return
    for o in outcomes:
        if o.error is not None:
            ui.err.print(f"error: database {o.database}: {o.error}", markup=False)
            continue
        assert o.result is not None
        if fmt == "sql":
            ui.raw(plan_sql(o.result))
        else:
            render_plan(ui, o.result, fmt)
    summary = _multi_summary(outcomes)
    ui.info(
        f"{summary['databases']} database(s): {summary['with_changes']} with changes "
        f"({summary['changes']} in total), {summary['errors']} could not be planned"
    )


def _multi_summary(outcomes: Sequence[Outcome[Plan]]) -> dict[str, int]:
    return {
        "databases": len(outcomes),
        "with_changes": sum(1 for o in outcomes if o.result is not None and not o.result.empty),
        "changes": sum(len(o.result.steps) for o in outcomes if o.result is not None),
        "errors": sum(1 for o in outcomes if o.error is not None),
    }


def _steps_table(ui: UI, steps: tuple[Step, ...] | list[Step], title: str) -> None:
    from rich.table import Table

    table = Table(title=Text(title), title_justify="left", show_lines=False, expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("object")
    table.add_column("why")
    table.add_column("sql", overflow="fold")
    for i, step in enumerate(steps, 1):
        why = Text(step.reason)
        if step.destructive:
            why.append(" [destructive]", style="bold red")
        if not step.allowed:
            why.append(f" [needs {step.needs}]", style="bold yellow")
        table.add_row(str(i), Text(step.object), why, Text(step.render_short(), style="cyan"))
    ui.print(table)


def apply_summary(outcomes: Sequence[Outcome[ApplyResult]]) -> dict[str, int]:
    return {
        "databases": len(outcomes),
        "changed": sum(1 for o in outcomes if o.result and o.result.executed),
        "errors": sum(1 for o in outcomes if o.error),
    }


def render_applies(ui: UI, outcomes: Sequence[Outcome[ApplyResult]], fmt: str) -> None:
    """Several databases applied: the envelope in JSON; a total and each failure in text."""
    summary = apply_summary(outcomes)
    if fmt == "json":
        ui.json(envelope(outcomes, lambda r: r.to_dict(), summary))
        return
    failed = [o for o in outcomes if o.error]
    ui.print(f"{summary['databases']} database(s): {summary['changed']} changed, {len(failed)} failed")
    for o in failed:
        ui.print(f"  {o.database}: {o.error}")


def render_apply(ui: UI, result: ApplyResult, fmt: str) -> None:
    if fmt == "json":
        ui.json({"schema_version": PLAN_SCHEMA_VERSION, **result.to_dict()})
        return
    for note in result.notes:
        ui.info(f"note: {note}")
    if not result.executed and not result.skipped:
        ui.print(f"database {result.plan.database} already matched the policy: nothing changed")
        return
    if result.executed:
        ui.print(f"applied {len(result.executed)} change(s) to {result.plan.database}:")
        for step in result.executed:
            ui.print(Text(f"  {step.object}: {step.reason}"))
    if result.skipped:
        ui.print(
            f"skipped {len(result.skipped)} step(s) the connected role may not run; "
            "someone with the rights listed must run:"
        )
        for step in result.skipped:
            ui.raw(f"-- {step.object}: needs {step.needs}\n{step.render()};")
