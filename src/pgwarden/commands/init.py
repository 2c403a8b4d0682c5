"""`pgwarden init`: write a policy file from a few arguments, or from what a live database holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pgwarden.cli import EXIT_OK, Interrupted, dsn_option, ui_of
from pgwarden.errors import PolicyError
from pgwarden.ui import UI

if TYPE_CHECKING:
    from pgwarden.policy.compose import Team


@click.command(
    "init",
    help="""Write a policy file (TOML) for one database, its owner and its access roles.

\b
  pgwarden init --database djangosite --owner sqlmigrations --app django
  pgwarden init --database shop --owner shop_owner --app shop_rw --readonly bi --schema sales --schema public
  pgwarden init --database 'tenant_*' --owner tenant_owner --app tenant_rw   # every tenant database
  pgwarden init --from-database shop                 # describe what the live database holds
  pgwarden init --database shop --owner shop_owner --deploy-login shop_deploy --app shop_app
      --group analysts:readonly --member alice:analysts --member bob:analysts
  pgwarden init --append --database billing --app billing_app   # add a database to pgwarden.toml
  pgwarden init --from-database shop --suggest -c -  # a smaller policy, and what it would change
  pgwarden init --preset supabase --owner app_owner  # Supabase: anon, authenticated, service_role

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
@click.option(
    "--deploy-login",
    "deploy_login",
    metavar="NAME",
    help="Write the owner NOLOGIN, with NAME as the login migrations run through (a deploy login; apply "
    "creates it, its password from $PGWARDEN_PASSWORD_<NAME>); with --from-database too.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME:PROFILE",
    help="A NOLOGIN group holding PROFILE (readwrite, readonly, append) on the schemas (repeatable).",
)
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="PERSON:GROUP",
    help="A login that gets its rights as a member of GROUP (repeatable; a person may be in several groups).",
)
@click.option(
    "--append",
    is_flag=True,
    help="Add --database (its schemas, grants and the roles the file lacks) to the existing version 2 file; "
    "the rest of the file is kept as it is, comments included.",
)
@click.option(
    "--preset",
    type=click.Choice(["supabase"]),
    help="Start from a provider's role layout: supabase makes anon, authenticated and service_role the access "
    "roles and authenticator a login that may only SET ROLE to them (database: --database, else postgres; "
    "owner: --owner, else app_owner; schemas: --schema, else public). docs/managed-services.md",
)
@dsn_option
@click.option(
    "-c",
    "--config",
    "config",
    default=None,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write, as every command's -c (default: pgwarden.toml; - for standard output).",
)
@click.option(
    "-o",
    "--output",
    default=None,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The same as -c/--config (deprecated: kept so that scripts keep working).",
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
    deploy_login: str | None,
    groups: tuple[str, ...],
    members: tuple[str, ...],
    append: bool,
    preset: str | None,
    dsn: str | None,
    config: str | None,
    output: str | None,
    force: bool,
) -> int:
    ui = ui_of(ctx)
    output = _file(config, output)
    path = None if output == "-" else Path(output)
    if append:
        if path is None or not path.exists():
            raise PolicyError(
                f"--append adds to an existing file and {output} does not exist",
                hint="leave out --append to write a new file, or name the file with -c FILE",
            )
    elif path is not None and path.exists() and not force:
        raise PolicyError(
            f"{path} already exists", hint="pass --force to overwrite it, --append to add a database to it, or -c FILE"
        )
    if preset is not None:
        return _from_preset(ui, preset, (database, owner, schemas), (app, readonly, groups, members), path, output)
    if from_database is not None:
        if database or app or readonly or groups or members or append:
            raise PolicyError(
                "--from-database reads the roles and grants from the database",
                hint="leave out --database, --app, --readonly, --group, --member and --append "
                "(keep --owner and --schema if you need them)",
            )
        return _from_database(ui, from_database, dsn, (owner, deploy_login), schemas, suggest, path, output)
    if suggest:
        raise PolicyError(
            "--suggest works with --from-database NAME", hint="pgwarden init --from-database NAME --suggest"
        )
    from pgwarden.policy.compose import Team, parse_pair

    if append and not owner and path is not None:
        from pgwarden.policy import load_policy

        owner = load_policy(path).owner.name  # the file's owner: one owner per file
    if not database or not owner:
        raise PolicyError(
            f"give {'--database NAME' if not database else '--owner ROLE'}",
            hint="pgwarden init --database NAME --owner ROLE --app ROLE (or --from-database NAME)",
        )
    pairs = [parse_pair(g, "--group") for g in groups], [parse_pair(m, "--member") for m in members]
    team = Team(database, owner, schemas, app, readonly, *pairs, deploy_login=deploy_login)
    return _from_arguments(ui, team, path, output, append)


def _from_preset(
    ui: UI,
    name: str,
    where: tuple[str | None, str | None, tuple[str, ...]],
    roles: tuple[tuple[str, ...], ...],
    path: Path | None,
    output: str,
) -> int:
    """The preset's file: its roles are fixed, so role arguments are refused rather than ignored."""
    from pgwarden.policy.presets import preset

    if any(roles):
        raise PolicyError(
            f"--preset {name} fixes the access roles",
            hint="leave out --app, --readonly, --group and --member (edit the written file to add roles)",
        )
    database, owner, schemas = where
    text, _ = preset(name, database or "postgres", owner or "app_owner", schemas)
    _write(ui, path, text)
    ui.info("next: pgwarden plan" + ("" if output == "pgwarden.toml" else f" -c {output}"))
    return EXIT_OK


def _file(config: str | None, output: str | None) -> str:
    """-c/--config, or its old name -o/--output; both naming different files is a mistake."""
    if config is not None and output is not None and config != output:
        raise PolicyError(f"-c {config} and -o {output} name two files", hint="give one: -c FILE (-o is its old name)")
    return config or output or "pgwarden.toml"


def _from_arguments(ui: UI, team: Team, path: Path | None, output: str, append: bool) -> int:
    from pgwarden.policy import build_policy
    from pgwarden.policy.compose import append_team, build_team
    from pgwarden.policy.patterns import is_pattern

    if not (team.app or team.readonly or team.groups):
        raise PolicyError(
            "give at least one access role (--app ROLE or --readonly ROLE) or a group (--group NAME:PROFILE)"
        )
    _check_pattern(team.database)
    shown: list[str] | None = None  # the roles whose password to mention (None: every login)
    if append and path is not None:
        text, policy, shown = append_team(path.read_text(encoding="utf-8"), str(path), team)
        _write(ui, path, text)
    elif team.groups or team.members or team.deploy_login:
        policy = build_team(team)
        _write(ui, path, policy.to_toml())
    else:  # the file init has always written for these arguments
        policy = build_policy(
            database=team.database, owner=team.owner, app=team.app, readonly=team.readonly, schemas=team.schemas
        )
        _write(ui, path, policy.to_toml())
    if is_pattern(team.database):
        ui.info(
            f"  {team.database!r} is a pattern: it covers every matching database of the cluster; create them first"
        )
    for role, env in policy.login_roles():
        if shown is None or role in shown:
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
