"""`pgwarden check`: drift and hazards as findings; exit 1 when any is at or above --fail-on."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    mode_option,
    ui_of,
)
from pgwarden.commands._background import import_in_background, with_collector_paused

if TYPE_CHECKING:
    from pgwarden.connect import EarlyAdmin
    from pgwarden.policy import Policy
    from pgwarden.ui import UI


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
  pgwarden check --format junit > pgwarden-junit.xml
  pgwarden check -d shop                 # one database of a version 2 file (default: all)
  pgwarden check -d 'tenant_*' -j 8      # version 1: every matching database of the cluster

Exit codes: 0 nothing at or above --fail-on, 1 findings, 2 the check could not run.
The rules are listed in docs/rules.md.""",
)
@config_option
@dsn_option
@databases_option
@mode_option
@format_option("text", "json", "sarif", "junit")
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low"]),
    default="low",
    show_default=True,
    help="Lowest severity that makes the command exit 1.",
)
@click.pass_context
@with_collector_paused
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    mode: str | None,
    fmt: str,
    fail_on: str,
    imported: Callable[[], None],
) -> int:
    # only what the first statement needs is imported before it (start-up: bench/startup.py): the
    # admin connection opens while the policy file is read (its errors come after the file's, as
    # they would without it); the planners, the rules and the renderers are imported meanwhile, in
    # the background, with the collector paused until they are (`imported`)
    ui = ui_of(ctx)
    from pgwarden.connect import EarlyAdmin

    read = _read(config)
    early = EarlyAdmin(dsn, _database_named(read, databases))
    try:
        targets = load_targets(config, mode, dsn, databases, read)
    except BaseException:  # a bad file (or an interruption): reported alone
        early.drop()
        raise
    policy = next(iter(targets.values()))  # roles (and their passwords) are the same in every database
    secrets = policy.secrets()
    if len(targets) > 1:
        early.drop(wait=True)  # each worker opens its own
        # several databases run in forked workers: they inherit these modules whole, imported once
        # here (a fork while a thread is importing one would give the workers half of it)
        for name in _later(policy):
            importlib.import_module(name)
        imported()
        return _check(ui, targets, dsn, jobs, fmt, fail_on, secrets)
    with import_in_background(*_later(policy), then=imported):
        return _check(ui, targets, dsn, jobs, fmt, fail_on, secrets, early)


def _read(config: str) -> tuple[str, dict[str, Any]] | None:
    """The policy file's text and TOML, read once: for the guess below, then validated (load_targets).
    None when it cannot be read or parsed: the policy's loading reads it again and reports why."""
    import tomllib
    from pathlib import Path

    try:
        text = Path(config).read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _database_named(read: tuple[str, dict[str, Any]] | None, databases: tuple[str, ...]) -> str | None:
    """The database this check will most likely work on, from -d or the file's TOML alone (before it
    is validated, which takes longer): its connection opens early. Only a guess: the session uses
    that connection when its target is this database, and closes it otherwise."""
    name: object = databases[0] if len(databases) == 1 else None
    if not databases and read is not None:
        data = read[1]
        entries = data.get("databases") if data.get("version") == 2 else [data.get("database")]
        if isinstance(entries, list) and len(entries) == 1 and isinstance(entries[0], dict):
            name = entries[0].get("name")
    return name if isinstance(name, str) and not any(c in name for c in "*?[") else None


#: What check needs once the server has answered its first queries, in the order it needs them:
#: imported while it waits (commands/_background.py)
_LATER = (
    "pgwarden.rows",
    "pgwarden.plan.expect",
    "pgwarden.plan",
    "pgwarden.resolve",
    "pgwarden.timebound",
    "pgwarden.leases",
    "pgwarden.hazards",
    "pgwarden.ledger",
    "pgwarden.rules",
    "pgwarden.retirement",
    "pgwarden.render.check",
)


def _later(policy: Policy) -> tuple[str, ...]:
    """_LATER, without the retirement (apply's, ~4 ms of imports) when the policy retires no role:
    check then needs none of it (pgwarden.check.run_check)."""
    return _LATER if policy.retired else tuple(m for m in _LATER if m != "pgwarden.retirement")


def _check(
    ui: UI,
    targets: dict[str, Policy],
    dsn: str | None,
    jobs: int,
    fmt: str,
    fail_on: str,
    secrets: dict[str, str],
    early: EarlyAdmin | None = None,
) -> int:
    from pgwarden.check import CheckResult, run_check
    from pgwarden.session import Session

    cluster = None
    if len(targets) > 1:  # the cluster-level part read once, before the workers fork
        from pgwarden.shared import read_shared

        cluster = read_shared(dsn, list(targets.values()))

    def one(target: Policy) -> CheckResult:
        with Session.open(dsn, target, cluster, early) as session:
            return run_check(session, secrets)

    if len(targets) > 1:
        from pgwarden.multi import run_over
        from pgwarden.render.check import render_checks
        from pgwarden.render.progress import database_progress

        with database_progress(ui, "checking databases") as progress:
            outcomes = run_over(targets, one, jobs=jobs, on_done=progress)
        render_checks(ui, outcomes, fmt, fail_on)
        if any(o.error for o in outcomes):
            return EXIT_ERROR
        return EXIT_FOUND if any(o.result and o.result.failed(fail_on) for o in outcomes) else EXIT_OK
    result = one(next(iter(targets.values())))
    from pgwarden.render.check import render_check

    render_check(ui, result, fmt, fail_on)
    return EXIT_FOUND if result.failed(fail_on) else EXIT_OK
