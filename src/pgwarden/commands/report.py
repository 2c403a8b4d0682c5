"""`pgwarden report`: who holds which privileges on how many objects, where it differs from the policy."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_OK, config_option, dsn_option, format_option, load, ui_of


@click.command(
    "report",
    help="""Summarise privileges: per role and schema, which privileges it holds on how many
objects and where that differs from the policy; owners, default privileges, memberships and the
findings of `check`. Changes nothing.

\b
  pgwarden report                                # text
  pgwarden report --format markdown > PRIVILEGES.md
  pgwarden report --format html -o report.html   # one self-contained page

Exit codes: 0 the report was written (deviations included), 2 it could not be.""",
)
@config_option
@dsn_option
@format_option("text", "json", "markdown", "html")
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

    from pgwarden.errors import PgwardenError
    from pgwarden.report import build_report, render_report
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load(config)
    with Session.open(dsn, policy) as session:
        report = build_report(session)
    text = render_report(report, fmt)
    if output is None:
        ui.raw(text)
    else:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PgwardenError(
                f"cannot write {output}: {exc.strerror}", hint="choose a writable path for -o"
            ) from None
        ui.info(
            f"report written to {output} ({len(report.deviations)} deviation(s), {len(report.findings)} finding(s))"
        )
    return EXIT_OK
