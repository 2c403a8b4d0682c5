"""`pgwarden report`: who holds which privileges on how many objects, where it differs from the policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_targets,
    single_target,
    ui_of,
)
from pgwarden.commands._output import output_option, print_errors, write_output

if TYPE_CHECKING:
    from pgwarden.multi import Outcome
    from pgwarden.report import Report

#: pgwarden.render.report_text.FORMATS, written out so that `--help` does not import the renderers
REPORT_FORMATS = ("text", "json", "markdown", "md", "html", "dot", "mermaid")


@click.command(
    "report",
    help="""Summarise privileges: per role and schema, which privileges it holds on how many
objects and where that differs from the policy; owners, default privileges, memberships and the
findings of `check`. Changes nothing.

\b
  pgwarden report                                # text
  pgwarden report --format markdown > PRIVILEGES.md
  pgwarden report --format html -o report.html   # one self-contained page
  pgwarden report --format dot | dot -Tsvg > roles.svg   # who can become whom (or mermaid)
  pgwarden report -d shop                        # one database of a version 2 file (default: all)

Several databases: text and Markdown give a section per database, JSON one envelope; html, dot
and mermaid need one database (-d).

Exit codes: 0 the report was written (deviations included), 2 it could not be.""",
)
@config_option
@dsn_option
@databases_option
@format_option(*REPORT_FORMATS)
@output_option
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    fmt: str,
    output: str | None,
) -> int:
    from pgwarden.multi import run_over
    from pgwarden.policy import Policy
    from pgwarden.render import database_progress, emit, render_report, report_styled
    from pgwarden.report import build_report
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, None, dsn, databases)
    if len(targets) > 1 and fmt in _ONE_DATABASE:
        single_target(targets, f"report --format {fmt}")  # raises: one page or graph per database
    first = next(iter(targets.values()))  # roles (and their passwords) are the same in every database
    secrets = first.secrets()

    def one(policy: Policy) -> Report:
        with Session.open(dsn, policy) as session:
            return build_report(session, secrets)

    if len(targets) == 1:
        report = one(first)
        if output is None and fmt == "text":
            emit(ui, report_styled(report))  # coloured on a terminal
            return EXIT_OK
        write_output(ui, render_report(report, fmt), output)
        if output is not None:
            from pgwarden.render.report_parts import summary_sentence

            ui.info(f"report written to {output}: {summary_sentence(report)}")
        return EXIT_OK
    with database_progress(ui, "reporting on databases") as progress:
        outcomes = run_over(targets, one, jobs=jobs, on_done=progress)
    write_output(ui, _several(outcomes, fmt), output)
    failed = print_errors(ui, outcomes)
    if output is not None:
        ui.info(f"report on {len(outcomes)} database(s) written to {output}")
    return EXIT_ERROR if failed else EXIT_OK


#: Formats that are one document of one database (a page, a graph): several databases need -d.
_ONE_DATABASE = ("html", "dot", "mermaid")


def _several(outcomes: Sequence[Outcome[Report]], fmt: str) -> str:
    """Several databases: the JSON envelope, else each database's report under a heading."""
    from pgwarden.render import envelope, render_report

    if fmt == "json":
        summary = {
            "databases": len(outcomes),
            "deviations": sum(o.result.summary["deviations"] for o in outcomes if o.result is not None),
            "findings": sum(len(o.result.findings) for o in outcomes if o.result is not None),
            "errors": sum(1 for o in outcomes if o.error is not None),
        }
        return json.dumps(envelope(outcomes, lambda r: r.to_json(), summary), indent=2, ensure_ascii=False) + "\n"
    parts = []
    for o in outcomes:
        head = f"# database {o.database}" if fmt in ("markdown", "md") else f"== database {o.database}"
        body = render_report(o.result, fmt) if o.result is not None else f"error: {o.error}\n"
        parts.append(f"{head}\n\n{body}")
    return "\n".join(parts)
