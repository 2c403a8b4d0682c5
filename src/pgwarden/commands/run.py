"""`pgwarden run`: run a migration command as a policy role, then check what it created."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from pgwarden.cli import (
    EXIT_FOUND,
    EXIT_OK,
    config_option,
    database_option,
    dsn_option,
    format_option,
    load_targets,
    single_target,
    ui_of,
)
from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.findings import Finding
    from pgwarden.policy import Policy
    from pgwarden.runner import RunAs
    from pgwarden.ui import UI

# Logs in with exactly the command's environment (libpq never prompts; PGCONNECT_TIMEOUT bounds it)
# and says who the session acts as: the role setting of a deploy login is proven, not assumed.
_LOGIN_CHECK = """
import sys, psycopg
try:
    with psycopg.connect("", application_name="pgwarden run") as conn:
        print(conn.execute("SELECT current_user").fetchone()[0])
except psycopg.Error as exc:
    print(" ".join(str(exc).split()), file=sys.stderr)
    sys.exit(1)
"""


def login_check(policy: Policy, run_as: RunAs, env: Mapping[str, str], apply_args: str) -> None:
    """Refuse (before the command starts) when the login fails or its sessions do not act as they should;
    `apply_args` (`-c FILE [-d DB]`) make the `pgwarden apply` of the hint work on this database."""
    from pgwarden.connect import scrub

    db = policy.database.name
    proc = subprocess.run(
        [sys.executable, "-c", _LOGIN_CHECK],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        message = scrub(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output")
        hint = "check that the server lets this role connect (pg_hba.conf, CONNECT on the database)"
        if "password" in message and run_as.password_env:
            hint = f"set {run_as.password_env} (passed as PGPASSWORD), or add {run_as.login} to ~/.pgpass ($PGPASSFILE)"
        raise PgwardenError(f"cannot log in as {run_as.login} to {db}: {message}", hint=hint)
    current = proc.stdout.strip()
    if current == run_as.acts_as:
        return
    if run_as.login != run_as.acts_as:
        raise PgwardenError(
            f"sessions of {run_as.login} in {db} act as {current}, not as the owner {run_as.acts_as}: "
            f"the role setting (ALTER ROLE {run_as.login} IN DATABASE {db} SET role) is missing",
            hint=f"`pgwarden apply {apply_args}` sets it; then run this again",
        )
    raise PgwardenError(
        f"sessions of {run_as.login} in {db} act as {current}, not as {run_as.acts_as}",
        hint=f"a role setting changes it: ALTER ROLE {run_as.login} IN DATABASE {db} RESET role",
    )


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    help="""Run COMMAND with a policy role's credentials, then check what it created.

The command gets PGUSER, PGPASSWORD (from the role's password variable, never on argv), PGHOST,
PGPORT, PGDATABASE and DATABASE_URL; the parent's other PG* variables and DATABASE_URL are
removed (PGPASSFILE is kept); PGCONNECT_TIMEOUT defaults to 10. Host, port and sslmode are those
of the admin connection pgwarden opened (--dsn, PGWARDEN_DSN, PG* or PGSERVICE). PGWARDEN_ROLE
and PGWARDEN_OWNER name the role it acts as and the policy's owner; as the owner it also gets
PGWARDEN_MIGRATE=1 (read by pgwarden.contrib.django and pgwarden.contrib.alembic). A
NOLOGIN owner runs through its first deploy login, whose sessions act as the owner. Before the
command starts pgwarden logs in as the role with that environment and refuses (exit 2) when the
login fails or its sessions would not act as the role (a missing role setting). Afterwards,
objects not owned by the owner or lacking the access roles' grants are reported with the SQL
that fixes them (exit 1). Otherwise the exit code is the command's.

\b
  pgwarden run --as owner -- python manage.py migrate
  pgwarden run --as owner -- alembic upgrade head
  pgwarden run -d shop --as owner -- alembic upgrade head   # a file with several databases

One command, one database: with several databases in the file (or -d matching several), choose one
with -d; to migrate many, run pgwarden run once per database.""",
)
@config_option
@dsn_option
@database_option
@click.option(
    "--as",
    "as_role",
    default="owner",
    show_default=True,
    metavar="owner|runtime|readonly|ROLE",
    help="The policy role to run as: owner, runtime/readwrite (the first login whose grants write rows), "
    "readonly (the first whose grants only read), or a role's name (a deploy login, an access role, a member).",
)
@click.option("--no-check", is_flag=True, help="Do not inspect the database after the command.")
@format_option("text", "json")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND [ARG]...")
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    as_role: str,
    no_check: bool,
    fmt: str,
    argv: tuple[str, ...],
) -> int:
    from pgwarden.connect import server_params
    from pgwarden.runner import command_env, object_findings, resolve_role, run_command
    from pgwarden.session import Session

    ui = ui_of(ctx)
    # one migration command, one database: a file with several needs -d (see docs/run.md)
    policy = single_target(load_targets(config, None, dsn, databases), "run")
    run_as = resolve_role(policy, as_role)
    apply_args = f"-c {config}" + (f" -d {policy.database.name}" if databases else "")
    with Session.open(dsn, policy) as session:
        if not session.target_exists():
            raise PgwardenError(
                f"database {policy.database.name} does not exist", hint=f"`pgwarden apply {apply_args}` creates it"
            )
        env = command_env(policy, run_as, server_params(session.admin))
    login_check(policy, run_as, env, apply_args)
    if "PGPASSWORD" not in env and run_as.password_env:
        ui.detail(f"{run_as.password_env} is not set: {run_as.login} logs in through ~/.pgpass or trust/peer auth")
    ui.info(f"running as {run_as.login}" + (f" (acting as {run_as.acts_as})" if run_as.login != run_as.acts_as else ""))
    code = run_command(argv, env)
    if code == 0 and run_as.is_owner:
        _keep_history(ui, policy, run_as, env)
    if no_check:
        return code
    secrets = policy.secrets()
    with Session.open(dsn, policy) as session:
        findings = object_findings(session, secrets) if session.target_exists() else []
    _report(ui, fmt, policy, run_as, argv, code, findings)
    if code != 0:
        return code
    return EXIT_FOUND if findings else EXIT_OK


def _keep_history(ui: UI, policy: Policy, run_as: RunAs, env: Mapping[str, str]) -> None:
    """The migration may have created its bookkeeping table, which the schema's default privileges just
    opened to the app role: the owner takes the writes back (docs/policy.md#migration-bookkeeping-tables)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from pgwarden.bookkeeping import take_back
    from pgwarden.connect import scrub

    keys = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}
    keys |= {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT"}
    params = {k: env[v] for k, v in keys.items() if env.get(v)}
    try:
        with psycopg.connect(make_conninfo(**params), autocommit=True, connect_timeout=10) as conn:
            if run_as.acts_as != run_as.login:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(run_as.acts_as)))
            for line in take_back(conn, policy):
                ui.info(f"migration history is the owner's to write: {line}")
    except psycopg.Error as exc:
        ui.err.print(f"warning: could not check the migration bookkeeping tables: {scrub(str(exc))}", markup=False)


def _report(
    ui: UI, fmt: str, policy: Policy, run_as: RunAs, argv: tuple[str, ...], code: int, findings: list[Finding]
) -> None:
    """What the command left behind: JSON, or the problems with their fixes, or one line."""
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
