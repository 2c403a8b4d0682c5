"""`pgwarden log`: what pgwarden changed, by whom and when, from each database's ledger."""

from __future__ import annotations

import click

from pgwarden.cli import EXIT_OK, config_option, databases_option, dsn_option, format_option, load_targets, ui_of


@click.command(
    "log",
    help="""Show the ledger: every apply, adoption, retirement, elevation, expiry and break-glass
opening or closing that pgwarden recorded in the database, newest first, with who ran it (the
session user, the OS user and host, pgwarden's version), when, the policy's digest, the steps and
the outcome. Read-only.

\b
  pgwarden log                  # the last 20 entries of every database of the policy
  pgwarden log -n 100 --steps   # more, with each entry's statements
  pgwarden log --format json    # {"entries": [...]}""",
)
@config_option
@dsn_option
@databases_option
@click.option(
    "-n", "--limit", type=click.IntRange(1, 100000), default=20, show_default=True, help="Entries per database."
)
@click.option("--steps", is_flag=True, help="Also print each entry's statements (text format).")
@format_option("text", "json")
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    dsn: str | None,
    databases: tuple[str, ...],
    jobs: int,
    limit: int,
    steps: bool,
    fmt: str,
) -> int:
    from pgwarden.findings import SCHEMA_VERSION
    from pgwarden.ledger import Entry, read
    from pgwarden.session import Session

    ui = ui_of(ctx)
    targets = load_targets(config, None, dsn, databases)
    entries: list[Entry] = []
    for policy in targets.values():
        with Session.open(dsn, policy) as session:
            if not session.target_exists():
                continue
            with session.connect_target() as conn:
                entries.extend(read(conn, limit))
    entries.sort(key=lambda e: (e.at, e.database, e.id), reverse=True)
    if fmt == "json":
        ui.json({"schema_version": SCHEMA_VERSION, "entries": [e.to_dict() for e in entries]})
        return EXIT_OK
    if not entries:
        ui.info("the ledger is empty: pgwarden has recorded no change in " + ", ".join(targets))
    for e in entries:
        by = f"{e.session_user}" + (f" ({e.os_user}@{e.host})" if e.os_user else "")
        what = e.detail.get("reason") or e.detail.get("error") or ""
        ui.print(
            f"#{e.id} {e.at.isoformat(timespec='seconds')} {e.database}: {e.action} {e.outcome} by {by}, "
            f"{len(e.steps)} step(s)" + (f": {what}" if what else "")
        )
        if steps:
            for s in e.steps:
                ui.print(f"    {s.get('sql', '')}")
    return EXIT_OK
