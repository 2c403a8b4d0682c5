"""`pgwarden policy`: work on the policy file itself (upgrade a version 1 file, validate one); no database."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pgwarden.cli import EXIT_OK, ui_of
from pgwarden.errors import PgwardenError, PolicyError

if TYPE_CHECKING:
    from pgwarden.policy import Policy


@click.group(
    "policy",
    help="""Work on a policy file without connecting to a database.

\b
  pgwarden policy upgrade pgwarden.toml        # rewrite a version 1 file as version 2 (keeps a backup)
  pgwarden policy upgrade old.toml -o new.toml
  pgwarden policy upgrade tenant.toml --databases 'tenant_*'   # a file used with -d 'tenant_*'
  pgwarden policy validate pgwarden.toml       # load it, one line per database

Exit codes: 0 done, 2 the file could not be read, is invalid, or could not be written.""",
    invoke_without_command=True,
)
@click.pass_context
def command(ctx: click.Context) -> int:
    if ctx.invoked_subcommand is None:  # `pgwarden policy` alone: its help, not a usage error
        click.echo(ctx.get_help())
    return EXIT_OK


_FILE = click.Path(dir_okay=False, path_type=Path)


@command.command(
    "upgrade",
    help="""Rewrite a version 1 policy file as version 2, with the same meaning: each access role's level
becomes a grant of that profile on every managed schema, so that `pgwarden plan` gives the same
steps in the same order. In place by default, the original kept as FILE.v1.bak (never replaced by
another file);
-o OUT writes elsewhere, -o - to standard output. Comments right above [database] and each
[[access]] table are carried over; other comments stay in the backup. A file that already is
version 2 is left alone (exit 0, with a note). A file used with -d 'tenant_*' (one policy over every
matching database of the cluster): --databases 'tenant_*' writes that pattern as the database's name.""",
)
@click.argument("file", type=_FILE)
@click.option(
    "-o",
    "--output",
    metavar="OUT",
    default=None,
    help="Write the version 2 file here (- for standard output) instead of replacing FILE.",
)
@click.option(
    "--databases",
    "pattern",
    metavar="PATTERN",
    default=None,
    help="The version 1 file is used with -d PATTERN (one policy over every matching database of the "
    "cluster): write a [[databases]] entry named PATTERN (e.g. 'tenant_*') that covers them, in place of "
    "the file's own database.",
)
@click.pass_context
def upgrade_command(ctx: click.Context, file: Path, output: str | None, pattern: str | None) -> int:
    from pgwarden.policy import load_policies, parse_policies, render_toml_v2, upgrade

    ui = ui_of(ctx)
    policies = load_policies(file)
    if policies[0].version == 2:
        ui.info(f"{file} is already version 2: nothing to do")
        return EXIT_OK
    text = _read(file)
    v1 = policies[0] if pattern is None else _over_pattern(policies[0], pattern)
    v2 = upgrade(v1)
    backup = file.with_name(file.name + ".v1.bak")
    where = backup.name if output is None else file.name
    header = f"# Upgraded from version 1 ({where}) by `pgwarden policy upgrade`.\n"
    new_text = header + render_toml_v2(v2, comments=carried_comments(text, v1)) + "\n"
    # the new file must say what the old one said: the same engine policy, read back from the text
    again = parse_policies(new_text, f"{file} (upgraded)")
    if len(again) != 1 or again[0] != v2:
        raise PgwardenError(
            f"upgrading {file} would change its meaning; nothing was written",
            hint="please report this file; upgrade it by hand meanwhile (docs/policy.md)",
        )
    if output == "-":
        sys.stdout.write(new_text)
        return EXIT_OK
    if output is not None:
        _write(Path(output), new_text)
        ui.info(f"wrote the version 2 policy to {output} ({file} is unchanged)")
        return EXIT_OK
    if backup.exists() and _read(backup) != text:  # the same text: a re-run after an interruption
        raise PgwardenError(
            f"{backup} exists: nothing was written (a backup is never overwritten)",
            hint=f"move {backup} away, or write elsewhere with -o OUT",
        )
    _write(backup, text)
    # a new file moved over the old one: an interruption leaves the old file or the new, never half of one
    partial = file.with_name(f".{file.name}.upgrading")
    _write(partial, new_text)
    partial.replace(file)
    ui.info(f"upgraded {file} to version 2; the version 1 file is kept as {backup}")
    return EXIT_OK


def _over_pattern(policy: Policy, pattern: str) -> Policy:
    """The version 1 policy with a glob pattern for its database name (--databases)."""
    from pgwarden.policy.patterns import check_pattern, is_pattern

    if not is_pattern(pattern):
        raise PolicyError(
            f"--databases {pattern!r} is not a pattern (no *, ? or [...])",
            hint="give a glob such as 'tenant_*'; without --databases the file keeps its own database",
        )
    try:
        check_pattern(pattern)
    except ValueError as exc:
        raise PolicyError(f"--databases: {exc}", hint="a glob such as 'tenant_*' (docs/policy.md)") from None
    return policy.model_copy(update={"database": policy.database.model_copy(update={"name": pattern})})


@command.command(
    "validate",
    help="""Load a policy file (either version) and print one line per database: its schemas, the roles
and the grants. An invalid file gives the same error as every other command (file:line: key:
problem) and exit code 2.""",
)
@click.argument("file", type=_FILE)
@click.pass_context
def validate_command(ctx: click.Context, file: Path) -> int:
    from pgwarden.policy import load_policies

    ui = ui_of(ctx)
    policies = load_policies(file)
    first = policies[0]
    roles = len(first.role_names)
    ui.info(f"{file}: version {first.version}, {len(policies)} database(s), {roles} role(s), mode {first.mode}")
    for policy in policies:
        ui.print(summary_line(policy))
    return EXIT_OK


def summary_line(policy: Policy) -> str:
    """`shop: schemas app, reporting; roles shop_owner (owner), shop_app, analysts; 6 grant(s)`."""
    owner = policy.owner.name
    holders = [a.name for a in policy.access]
    people = [m.name for m in policy.members]
    roles = [f"{owner} (owner)", *policy.owner.deploy_logins, *holders, *people]
    grants = policy.grants()
    from pgwarden.policy.patterns import is_pattern

    pattern = " (a pattern: every matching database of the cluster)" if is_pattern(policy.database.name) else ""
    return (
        f"{policy.database.name}{pattern}: schemas {', '.join(policy.database.schemas)}; roles {', '.join(roles)}; "
        f"{len(grants)} grant(s)"
    )


_HEADER = re.compile(r"^\s*\[(\[access\]|database)\]\s*(#.*)?$")
_NAME = re.compile(r"^\s*name\s*=\s*\"((?:[^\"\\]|\\.)*)\"")


def carried_comments(text: str, policy: Policy) -> dict[str, list[str]]:
    """Comment lines right above `[database]` and each `[[access]]` table of a version 1 file, keyed as
    render_toml_v2 wants them (`database.NAME`, a role's name)."""
    import json

    lines = text.splitlines()
    out: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        header = _HEADER.match(line)
        if not header:
            continue
        above: list[str] = []
        j = index - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            above.insert(0, lines[j].lstrip()[1:].strip())
            j -= 1
        if not above:
            continue
        if header.group(1) == "database":
            out[f"database.{policy.database.name}"] = above
            continue
        for body in lines[index + 1 :]:
            if body.lstrip().startswith("["):
                break
            name = _NAME.match(body)
            if name:
                out[json.loads(f'"{name.group(1)}"')] = above
                break
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # load_policies read it a moment ago
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PgwardenError(f"cannot write {path}: {exc.strerror}", hint="choose a writable path (-o OUT)") from None
