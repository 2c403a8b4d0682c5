"""`pgwarden run`: run a migration command as a policy role, then check what it created."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_FOUND, EXIT_OK, config_option, dsn_option, format_option, load, ui_of


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    help="""Run COMMAND with a policy role's credentials, then check what it created.

The command gets PGUSER, PGPASSWORD (from the role's password variable, never on argv), PGHOST,
PGPORT, PGDATABASE and DATABASE_URL; the parent's other PG* variables and DATABASE_URL are
removed. As the owner it also gets PGWARDEN_MIGRATE=1 (read by pgwarden.contrib.django and
pgwarden.contrib.alembic). A NOLOGIN owner runs through its first deploy login, whose sessions
act as the owner. Afterwards, objects not owned by the owner or lacking the access roles' grants
are reported with the SQL that fixes them (exit 1). Otherwise the exit code is the command's.

\b
  pgwarden run --as owner -- python manage.py migrate
  pgwarden run --as owner -- alembic upgrade head""",
)
@config_option
@dsn_option
@click.option(
    "--as",
    "as_role",
    default="owner",
    show_default=True,
    metavar="owner|ROLE",
    help="The policy role to run as: owner, a deploy login, or an access role.",
)
@click.option("--no-check", is_flag=True, help="Do not inspect the database after the command.")
@format_option("text", "json")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND [ARG]...")
@click.pass_context
def command(
    ctx: click.Context, config: str, dsn: str | None, as_role: str, no_check: bool, fmt: str, argv: tuple[str, ...]
) -> int:
    from pgwarden.connect import secrets_from_env
    from pgwarden.runner import command_env, object_findings, resolve_role, run_command
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load(config)
    run_as = resolve_role(policy, as_role)
    env = command_env(policy, run_as, dsn)
    if "PGPASSWORD" not in env and run_as.password_env:
        ui.detail(f"{run_as.password_env} is not set: the command relies on ~/.pgpass or trust/peer auth")
    ui.info(f"running as {run_as.login}" + (f" (acting as {run_as.acts_as})" if run_as.login != run_as.acts_as else ""))
    code = run_command(argv, env)
    if no_check:
        return code
    secrets = secrets_from_env([e for _, e in policy.login_roles()])
    with Session.open(dsn, policy) as session:
        findings = object_findings(session, secrets) if session.target_exists() else []
    if fmt == "json":
        ui.json(
            {
                "schema_version": 1,
                "command": list(argv),
                "as": run_as.login,
                "acts_as": run_as.acts_as,
                "exit_code": code,
                "findings": [f.to_dict() for f in findings],
            }
        )
    elif findings:
        ui.print(f"{len(findings)} problem(s) with what the command left in {policy.database.name}:")
        for f in findings:
            ui.print(f"  [{f.severity}] {f.rule}: {f.object}: {f.message}")
        fixes = [f.fix for f in findings if f.fix]
        if fixes:
            ui.print("-- fix (or run `pgwarden apply`):")
            for fix in fixes:
                ui.raw(fix.rstrip(";") + ";")
    else:
        ui.info(
            f"checked {policy.database.name}: every object is owned by {policy.owner.name} "
            "and granted as the policy says"
        )
    if code != 0:
        return code
    return EXIT_FOUND if findings else EXIT_OK
