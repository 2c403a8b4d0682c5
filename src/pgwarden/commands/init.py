"""`pgwarden init`: write a policy file from a few arguments, or from what a live database holds."""

from __future__ import annotations

from pathlib import Path

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
  pgwarden init --database 'tenant_*' --owner tenant_owner --app tenant_rw   # every tenant database
  pgwarden init --from-database shop                 # describe what the live database holds
  pgwarden init --from-database shop --suggest -o -  # a smaller policy, and what it would change

Passwords are never written to the file: each LOGIN role reads its password from the environment
variable PGWARDEN_PASSWORD_<ROLE> (upper-cased, other characters replaced by _). Review the file,
then run `pgwarden plan`.""",
)
@click.option(
    "--database",
    metavar="NAME|PATTERN",
    help="Database the policy manages, or a glob pattern such as 'tenant_*': one [[databases]] entry that "
    "covers every matching database of the cluster (one per tenant, all alike; never created by apply).",
)
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
        return _from_database(ui, from_database, dsn, owner, schemas, suggest, path, output)
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
    from pgwarden.policy.patterns import is_pattern

    _check_pattern(database)
    policy = build_policy(database=database, owner=owner, app=app, readonly=readonly, schemas=schemas)
    _write(ui, path, policy.to_toml())
    if is_pattern(database):
        ui.info(f"  {database!r} is a pattern: it covers every matching database of the cluster; create them first")
    for role, env in policy.login_roles():
        ui.info(f"  password of {role}: set {env} before `pgwarden apply` (or leave unset to manage it yourself)")
    ui.info("next: pgwarden plan" + ("" if output == "pgwarden.toml" else f" -c {output}"))
    return EXIT_OK


def _check_pattern(database: str) -> None:
    """A pattern is a well-formed glob (an unclosed '[' would match almost nothing)."""
    from pgwarden.policy.patterns import check_pattern, is_pattern

    if is_pattern(database):
        try:
            check_pattern(database)
        except ValueError as exc:
            raise PolicyError(f"--database: {exc}", hint="docs/policy.md (databases by pattern)") from None


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
    owner: str | None,
    schemas: tuple[str, ...],
    suggest: bool,
    path: Path | None,
    output: str,
) -> int:
    from pgwarden.connect import connect, conninfo_for
    from pgwarden.generate import from_database

    try:
        with connect(conninfo_for(dsn, dbname=name), what=f"a connection to database {name}") as conn:
            result = from_database(conn, schemas or None, owner, suggest=suggest)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: nothing was written, nothing was changed", hint="run it again") from None
    _write(ui, path, result.text)
    if result.inexact:
        ui.info("not exact (also in the file's header): `pgwarden plan` will change")
        for line in result.inexact:
            ui.info(f"  - {line}")
    if result.hazards:
        ui.info("what the database does that the split forbids (not written as intent; `pgwarden check` reports it):")
        for line in result.hazards:
            ui.info(f"  - {line}")
    if suggest:
        ui.info(f"the suggested policy changes {len(result.diff)} privilege(s) (+ widened, - narrowed):")
        for line in result.diff:
            ui.info(f"  {line}")
    target = "" if output == "pgwarden.toml" else f" -c {output}"
    if path is not None and suggest:
        ui.info(f"next: pgwarden plan{target}   # what applying the suggestion would grant and revoke")
    elif path is not None:
        ui.info(f"next: pgwarden plan{target} --exit-code   # exits 0 when the file says what the database holds")
    return EXIT_OK
