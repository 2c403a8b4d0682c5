"""`pgwarden check`: drift and hazards as findings; exit 1 when any is at or above --fail-on."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_FOUND, EXIT_OK, config_option, dsn_option, format_option, load, ui_of


@click.command(
    "check",
    help="""Find drift (what `apply` would change) and hazards (what breaks the split though no
policy line says so: an access role that is a member of the owner, owns objects, may CREATE,
SECURITY DEFINER functions without search_path, ...). Changes nothing.

\b
  pgwarden check                         # text, exit 1 on any finding
  pgwarden check --fail-on high          # only high and critical fail
  pgwarden check --format json           # {"findings": [...], "summary": {...}}
  pgwarden check --format sarif > pgwarden.sarif

Exit codes: 0 nothing at or above --fail-on, 1 findings, 2 the check could not run.
The rules are listed in docs/rules.md.""",
)
@config_option
@dsn_option
@format_option("text", "json", "sarif")
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low"]),
    default="low",
    show_default=True,
    help="Lowest severity that makes the command exit 1.",
)
@click.pass_context
def command(ctx: click.Context, config: str, dsn: str | None, fmt: str, fail_on: str) -> int:
    from pgwarden import __version__
    from pgwarden.check import run_check
    from pgwarden.connect import secrets_from_env
    from pgwarden.findings import render_text, to_sarif
    from pgwarden.rules import RULES
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load(config)
    secrets = secrets_from_env([env for _, env in policy.login_roles()])
    with Session.open(dsn, policy) as session:
        result = run_check(session, secrets)
    if fmt == "json":
        ui.json(result.to_json(fail_on))
    elif fmt == "sarif":
        ui.json(to_sarif(result.findings, RULES.values(), version=__version__, target=result.database))
    else:
        ui.raw(render_text(result.findings, fail_on))
    return EXIT_FOUND if result.failed(fail_on) else EXIT_OK
