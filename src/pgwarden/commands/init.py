"""`pgwarden init`: write a policy file from a few arguments, or from what a live database holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pgwarden.cli import EXIT_OK, Interrupted, dsn_option, ui_of
from pgwarden.errors import PolicyError
from pgwarden.ui import UI


@click.command(
    "init",
    help="""Write a policy file (TOML) for one database, its owner and its access roles.

\b
  pgwarden init --database djangosite --owner sqlmigrations --app django
  pgwarden init --database shop --owner shop_owner --app shop_rw --readonly bi --schema sales --schema public
  pgwarden init --from-database shop                 # describe what the live database holds
  pgwarden init --from-database shop --suggest -o -  # a smaller policy, and what it would change

Passwords are never written to the file: each LOGIN role reads its password from the environment
variable PGWARDEN_PASSWORD_<ROLE> (upper-cased, other characters replaced by _). Review the file,
then run `pgwarden plan`.""",
)
@click.option("--database", metavar="NAME", help="Database the policy manages.")
@click.option("--owner", metavar="ROLE", help="Role that owns everything and runs migrations.")
@click.option("--app", "app", multiple=True, metavar="ROLE", help="A readwrite access role (repeatable).")
@click.option("--readonly", multiple=True, metavar="ROLE", help="A readonly access role (repeatable).")
@click.option(
    "--schema", "schemas", multiple=True, metavar="NAME", help="A managed schema (repeatable; default: public)."
)
@click.option(
    "--from-database",
    "from_database",
    metavar="NAME",
    help="Read this live database and write the policy that describes it (the owner: --owner, else the "
    "role owning most objects; schemas: --schema, else every schema with objects or grants).",
)
@click.option(
    "--deploy-login",
    "deploy_login",
    metavar="NAME",
    help="With --from-database: write the owner NOLOGIN, with NAME as the login migrations run through "
    "(a deploy login; created by apply when it does not exist).",
)
@click.option(
    "--suggest", is_flag=True, help="With --from-database: write a smaller policy and list what it would change."
)
@dsn_option
@click.option(
    "-o",
    "--output",
    default="pgwarden.toml",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write (- for standard output).",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.pass_context
def command(
    ctx: click.Context,
    database: str | None,
    owner: str | None,
    app: tuple[str, ...],
    readonly: tuple[str, ...],
    schemas: tuple[str, ...],
    from_database: str | None,
    deploy_login: str | None,
    suggest: bool,
    dsn: str | None,
    output: str,
    force: bool,
) -> int:
    ui = ui_of(ctx)
    path = None if output == "-" else Path(output)
    if path is not None and path.exists() and not force:
        raise PolicyError(f"{path} already exists", hint="pass --force to overwrite it, or -o FILE")
    if from_database is not None:
        if database or app or readonly:
            raise PolicyError(
                "--from-database reads the roles and grants from the database",
                hint="leave out --database, --app and --readonly (keep --owner and --schema if you need them)",
            )
        return _from_database(ui, from_database, dsn, (owner, deploy_login), schemas, suggest, path, output)
    if deploy_login:
        raise PolicyError(
            "--deploy-login works with --from-database NAME",
            hint="pgwarden init --from-database NAME --owner ROLE --deploy-login NAME",
        )
    if suggest:
        raise PolicyError(
            "--suggest works with --from-database NAME", hint="pgwarden init --from-database NAME --suggest"
        )
    if not database or not owner:
        raise PolicyError(
            f"give {'--database NAME' if not database else '--owner ROLE'}",
            hint="pgwarden init --database NAME --owner ROLE --app ROLE (or --from-database NAME)",
        )
    from pgwarden.policy import build_policy

    if not app and not readonly:
        raise PolicyError("give at least one access role with --app ROLE or --readonly ROLE")
    policy = build_policy(database=database, owner=owner, app=app, readonly=readonly, schemas=schemas)
    _write(ui, path, policy.to_toml())
    for role, env in policy.login_roles():
        ui.info(f"  password of {role}: set {env} before `pgwarden apply` (or leave unset to manage it yourself)")
    ui.info("next: pgwarden plan" + ("" if output == "pgwarden.toml" else f" -c {output}"))
    return EXIT_OK


def _write(ui: UI, path: Path | None, text: str) -> None:
    """The whole file or nothing: written beside it, then renamed over it."""
    if path is None:
        ui.raw(text)
        return
    partial = path.with_name(f".{path.name}.pgwarden-partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise PolicyError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    ui.info(f"wrote {path}")


def _from_database(
    ui: UI,
    name: str,
    dsn: str | None,
    roles: tuple[str | None, str | None],
    schemas: tuple[str, ...],
    suggest: bool,
    path: Path | None,
    output: str,
) -> int:
    from pgwarden.connect import connect, conninfo_for
    from pgwarden.errors import ConnectError
    from pgwarden.generate import from_database

    owner, deploy_login = roles
    try:
        with connect(conninfo_for(dsn, dbname=name), what=f"a connection to database {name}") as conn:
            result = from_database(conn, schemas or None, owner, suggest=suggest, deploy_login=deploy_login)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: nothing was written, nothing was changed", hint="run it again") from None
    except ConnectError as exc:
        if "does not exist" in str(exc) and "database" in str(exc):
            raise PolicyError(
                f"database {name} does not exist: there is nothing to describe",
                hint="name an existing database with --from-database (psql -l lists them), or write a new "
                "policy with pgwarden init --database NAME --owner ROLE --app ROLE",
            ) from None
        raise
    _write(ui, path, result.text)
    summary = result.summary()
    if summary:
        ui.info("what init saw (`pgwarden plan` lists every step it takes):")
        for line in summary:
            ui.info(f"  - {line}")
    if suggest:
        ui.info(f"the suggested policy changes {len(result.diff)} privilege(s) (+ widened, - narrowed):")
        for line in result.diff:
            ui.info(f"  {line}")
    if path is not None:
        _next_steps(ui, result, suggest, "" if output == "pgwarden.toml" else f" -c {output}")
    return EXIT_OK


def _next_steps(ui: UI, result: Any, suggest: bool, target: str) -> None:
    """The next command: plan, or on a database whose owner is still to be made (a new role, or
    objects a superuser owns) the adoption path of docs/adopting.md."""
    if suggest:
        ui.info(f"next: pgwarden plan{target}   # what applying the suggestion would grant and revoke")
    elif result.owner_exists and not result.superuser_owned:
        ui.info(f"next: pgwarden plan{target} --exit-code   # exits 0 when the file says what the database holds")
    else:
        owner = result.policy.owner.name
        ui.info(
            f"next: the owner {owner} is still to be made"
            + (" (the policy creates it)" if not result.owner_exists else "")
            + ": adopt step by step (docs/adopting.md):"
        )
        ui.info(f"  pgwarden plan{target} --mode additive    # creates {owner}, takes nothing from anyone")
        ui.info(f"  pgwarden apply{target} --mode additive")
        source = f" --from {result.previous_owner}" if result.previous_owner else ""
        ui.info(f"  pgwarden adopt{target}{source}          # moves the database and its objects to {owner}")
        ui.info(f"  pgwarden apply{target}                   # authoritative: the split itself, nothing else")
