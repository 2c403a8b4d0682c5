"""`pgwarden probe`: act as each policy role, try what it must and must not do, roll everything back."""

from __future__ import annotations

import click

from pgwarden.cli import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    config_option,
    databases_option,
    dsn_option,
    format_option,
    load_targets,
    ui_of,
)


@click.command(
    "probe",
    help="""Act as each role of the policy and try what it must and must not be able to do:
create a table in each managed schema, create a schema, create a temporary table, alter / drop /
truncate a table, grant to PUBLIC, read and write every table (statements that touch no row),
use every sequence (never advancing it), execute every function. Every attempt runs under a
savepoint and everything is rolled back: nothing is left behind.

\b
  pgwarden probe                   # SET ROLE from the admin connection
  pgwarden probe --login           # log in as each role with its password (proves CONNECT, pg_hba)
  pgwarden probe --format junit > probe.xml
  pgwarden probe -d shop            # one database of a version 2 file (default: all)
  pgwarden probe -d 'tenant_*' -j 4  # version 1: every matching database of the cluster

Exit codes: 0 every outcome is what the policy expects, 1 something differs, 2 could not run.""",
)
@config_option
@dsn_option
@databases_option
@format_option("text", "json", "junit")
@click.option(
    "--login", is_flag=True, help="Log in as each role with the password from its policy environment variable."
)
@click.option(
    "--max-objects",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Objects of each kind tried for real; beyond that the server's privilege functions are asked.",
)
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    fmt: str,
    login: bool,
    max_objects: int,
) -> int:
    from pgwarden.multi import run_over
    from pgwarden.policy import Policy
    from pgwarden.probe import ProbeResult, run_probe
    from pgwarden.render import database_progress, role_progress
    from pgwarden.render.probe import render_probe, render_probes
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, None, dsn, databases)
    policy = next(iter(targets.values()))  # roles (and their passwords) are the same in every database
    passwords = policy.secrets() if login else None

    def one(target: Policy) -> ProbeResult:
        with Session.open(dsn, target) as session:
            return run_probe(session, login=login, passwords=passwords, max_objects=max_objects)

    if len(targets) > 1:
        with database_progress(ui, "probing databases") as progress:
            outcomes = run_over(targets, one, jobs=jobs, on_done=progress)
        render_probes(ui, outcomes, fmt)
        if any(o.error for o in outcomes):
            return EXIT_ERROR
        return EXIT_FOUND if any(o.result and not o.result.ok for o in outcomes) else EXIT_OK
    only = next(iter(targets.values()))
    with role_progress(ui) as on_role, Session.open(dsn, only) as session:
        result = run_probe(session, login=login, passwords=passwords, max_objects=max_objects, on_role=on_role)
    render_probe(ui, result, fmt)
    return EXIT_OK if result.ok else EXIT_FOUND
