"""`pgwarden report`: who holds which privileges on how many objects, where it differs from the policy."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_OK, config_option, dsn_option, format_option, load, ui_of

#: pgwarden.render.report.FORMATS, written out so that `--help` does not import the renderers
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

Exit codes: 0 the report was written (deviations included), 2 it could not be.""",
)
@config_option
@dsn_option
@format_option(*REPORT_FORMATS)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.pass_context
def command(ctx: click.Context, config: str, dsn: str | None, fmt: str, output: str | None) -> int:
    from pathlib import Path

    from pgwarden.connect import secrets_from_env
    from pgwarden.errors import PgwardenError
    from pgwarden.render import emit, render_report, report_styled
    from pgwarden.report import build_report
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load(config)
    secrets = secrets_from_env([env for _, env in policy.login_roles()])
    with Session.open(dsn, policy) as session:
        report = build_report(session, secrets)
    if output is None:
        if fmt == "text":
            emit(ui, report_styled(report))  # coloured on a terminal
        else:
            ui.raw(render_report(report, fmt))
        return EXIT_OK
    try:
        Path(output).write_text(render_report(report, fmt), encoding="utf-8")
    except OSError as exc:
        raise PgwardenError(f"cannot write {output}: {exc.strerror}", hint="choose a writable path for -o") from None
    ui.info(f"report written to {output} ({len(report.deviations)} deviation(s), {len(report.findings)} finding(s))")
    return EXIT_OK
