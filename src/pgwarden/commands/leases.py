"""`pgwarden leases`: the statements that keep leased logins least-privilege, and retiring expired ones."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_OK, config_option, dsn_option, load_all, lock_timeout_option, ui_of


@click.group(
    "leases",
    help="""Logins a system issues for a while (Vault/OpenBao's database secrets engine, Teleport's
auto-provisioning), declared under [[leased]] in the policy (docs/leased-logins.md).

\b
  pgwarden leases statements                 # the issuer's rights, creation and revocation statements
  pgwarden leases retire                     # dry run: the expired leased logins and where they hold what
  pgwarden leases retire --yes               # drop them, 100 per transaction

`pgwarden check` reports leased logins that hold grants of their own, own objects, or expired.
Exit codes: 0 done, 2 could not do the job.""",
    invoke_without_command=True,
)
@click.pass_context
def command(ctx: click.Context) -> int:
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return EXIT_OK


@command.command(
    "statements",
    help="""Print, for each [[leased]] entry, the SQL that keeps its logins least-privilege: the issuing
login's minimal rights (run once as a superuser: no superuser itself, CREATEROLE, and on PostgreSQL
16+ ADMIN on the group without using its rights), the creation statements (a LOGIN with VALID UNTIL,
a member of the group and nothing else) and the revocation statements (refuse logins, end its
sessions, DROP OWNED in each database of the policy, DROP ROLE), with Vault/OpenBao's {{name}},
{{password}} and {{expiration}} templates. The statements depend on the server's version: it is read
from the server (--dsn), or given with --pg-version.""",
)
@config_option
@dsn_option
@click.option("--pg-version", type=click.IntRange(14, 18), default=None, help="Print for this major version "
              "instead of asking the server.")  # fmt: skip
@click.pass_context
def statements_command(ctx: click.Context, config: str, dsn: str | None, pg_version: int | None) -> int:
    from pgwarden.caps import Capabilities
    from pgwarden.connect import connect, conninfo_for
    from pgwarden.errors import PolicyError
    from pgwarden.lease_statements import lease_statements

    ui = ui_of(ctx)
    policy = load_all(config)[0]
    if not policy.leased:
        raise PolicyError(f"{config} has no [[leased]] entry", hint="docs/leased-logins.md shows how to declare one")
    if pg_version is None:
        with connect(conninfo_for(dsn), what="the admin connection") as conn:
            num = conn.info.server_version
    else:
        num = pg_version * 10000
    caps = Capabilities(num)
    for lease in policy.leased:
        s = lease_statements(policy, lease, caps)
        who = s.issuer_name
        ui.raw(
            f"-- [[leased]] {lease.pattern}: logins in group {lease.group}, issued by {who} (PostgreSQL {caps.major})"
        )
        ui.raw(f"-- 1. the issuer's minimal rights: once, as a superuser (then set its password: \\password {who})")
        ui.raw("\n".join(s.issuer))
        ui.raw(f"-- 2. creation_statements: as {who}, for each login")
        ui.raw("\n".join(s.creation))
        ui.raw(f"-- 3. revocation_statements: as {who}, in each database of the policy ({', '.join(s.databases)})")
        ui.raw("\n".join(s.revocation))
        ui.raw(f"-- 4. then once, as {who}, in any database")
        ui.raw("\n".join(s.drop) + "\n")
    return EXIT_OK


@command.command(
    "retire",
    help="""Drop the leased logins whose VALID UNTIL has passed (by the server's clock), as a
non-superuser admin: in batches, each batch refused its logins and its sessions ended, what it owns
reassigned to the owner and what it holds revoked in every database it holds something in, then
dropped. Without --yes: a dry run that says what would be done and what stops it. Progress goes to
stderr. Safe to run again after an interruption.""",
)
@config_option
@dsn_option
@click.option("--pattern", default=None, metavar="GLOB", help="Only the [[leased]] entry with this pattern.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Logins dropped per transaction.")  # fmt: skip
@click.option("-y", "--yes", is_flag=True, help="Drop them (otherwise: a dry run).")
@lock_timeout_option
@click.pass_context
def retire_command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    pattern: str | None,
    batch_size: int,
    yes: bool,
    lock_timeout: str | None,
) -> int:
    from pgwarden.lease_retirement import plan_cleanup, run_cleanup
    from pgwarden.session import Session

    ui = ui_of(ctx)
    policy = load_all(config)[0]
    with Session.open(dsn, policy) as session:
        snap = session.snapshot(names=False)
        cleanup = plan_cleanup(session, snap, pattern)
        if not cleanup.roles:
            ui.info("no expired leased login exists")
            return EXIT_OK
        where = ", ".join(sorted(db or "cluster-wide" for db in cleanup.holdings)) or "nowhere"
        ui.info(f"{len(cleanup.roles)} expired leased login(s); they hold something in: {where}")
        for blocker in cleanup.blockers:
            ui.info(f"  blocked: {blocker}")
        if not yes:
            if not cleanup.blockers:
                ui.info("dry run: nothing changed (pass --yes to drop them)")
            return EXIT_OK

        def progress(what: str, done: int, total: int) -> None:
            if what == "batch":
                ui.info(f"retiring leased logins {done + 1}-{min(done + batch_size, total)} of {total}")

        result = run_cleanup(session, cleanup, batch=batch_size, lock_timeout=lock_timeout, progress=progress)
    cleared = ", ".join(sorted(result.databases)) or "no database"
    ui.print(f"dropped {len(result.dropped)} expired leased login(s); cleared in: {cleared}")
    return EXIT_OK
