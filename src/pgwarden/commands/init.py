"""`pgwarden init`: write a policy file from a few arguments."""

from __future__ import annotations

from pathlib import Path

import click

from pgwarden.cli import EXIT_OK, ui_of
from pgwarden.errors import PolicyError


@click.command(
    "init",
    help="""Write a policy file (TOML) for one database, its owner and its access roles.

\b
  pgwarden init --database djangosite --owner sqlmigrations --app django
  pgwarden init --database shop --owner shop_owner --app shop_rw --readonly bi --schema sales --schema public

Passwords are never written to the file: each LOGIN role reads its password from the environment
variable PGWARDEN_PASSWORD_<ROLE> (upper-cased, other characters replaced by _). Review the file,
then run `pgwarden plan`.""",
)
@click.option("--database", required=True, metavar="NAME", help="Database the policy manages.")
@click.option("--owner", required=True, metavar="ROLE", help="Role that owns everything and runs migrations.")
@click.option("--app", "app", multiple=True, metavar="ROLE", help="A readwrite access role (repeatable).")
@click.option("--readonly", multiple=True, metavar="ROLE", help="A readonly access role (repeatable).")
@click.option(
    "--schema", "schemas", multiple=True, metavar="NAME", help="A managed schema (repeatable; default: public)."
)
@click.option(
    "-o", "--output", default="pgwarden.toml", show_default=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.pass_context
def command(
    ctx: click.Context,
    database: str,
    owner: str,
    app: tuple[str, ...],
    readonly: tuple[str, ...],
    schemas: tuple[str, ...],
    output: str,
    force: bool,
) -> int:
    from pgwarden.policy import build_policy

    ui = ui_of(ctx)
    if not app and not readonly:
        raise PolicyError("give at least one access role with --app ROLE or --readonly ROLE")
    policy = build_policy(database=database, owner=owner, app=app, readonly=readonly, schemas=schemas)
    path = Path(output)
    if path.exists() and not force:
        raise PolicyError(f"{path} already exists", hint="pass --force to overwrite it, or -o FILE")
    try:
        path.write_text(policy.to_toml(), encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot write {path}: {exc.strerror}") from None
    ui.info(f"wrote {path}")
    for role, env in policy.login_roles():
        ui.info(f"  password of {role}: set {env} before `pgwarden apply` (or leave unset to manage it yourself)")
    ui.info("next: pgwarden plan" + ("" if output == "pgwarden.toml" else f" -c {output}"))
    return EXIT_OK
