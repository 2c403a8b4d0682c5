"""The pgwarden command line: thin (parse, call the library, render); no SQL here."""

from __future__ import annotations

import gc
import importlib
import pkgutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pgwarden import __version__
from pgwarden.errors import PgwardenError
from pgwarden.ui import UI, report_error, report_usage_error

if TYPE_CHECKING:
    from pgwarden.policy import Policy

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_ERROR = 2

HELP = """\
pgwarden keeps schema changes and data access apart on PostgreSQL 14-18.

One role (the owner) owns each database and every object in it and is the only one that runs
migrations (directly or through deploy logins). Every other role works with rows only: it gets a
profile (readwrite, readonly, append, or one of your own) on schemas or listed tables, with table
and column exceptions, or gets its rights as a member of a group. A policy file (pgwarden.toml,
version 2) says who is who in one or several databases; pgwarden sets it up, keeps it true and
proves it.

\b
Typical session:
  pgwarden init --database app --owner app_owner --app app_rw   # writes pgwarden.toml
  pgwarden plan            # what would change, and why
  pgwarden apply           # do it (one transaction per database)
  pgwarden check           # drift and hazards; exit 1 when something is found
  pgwarden probe           # act as each role and prove what it can and cannot do
  pgwarden plan -d shop    # one database of the file (default: all of them)

\b
Connection: --dsn 'host=... user=... dbname=postgres' (or a postgresql:// URL), else $PGWARDEN_DSN,
else the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSERVICE, ~/.pgpass).
Passwords: each LOGIN role's from $PGWARDEN_PASSWORD_<ROLE> (never stored in the file).

\b
Exit codes: 0 success and clean; 1 the command worked and found something (check findings,
probe failures, plan --exit-code with changes pending); 2 it could not do its job (usage, policy
file, a name the database does not have, connection, credentials, output closed early);
130 interrupted (it says what was kept).
"""


#: Commands that change nothing: interrupting them leaves everything as it was.
_READ_ONLY = frozenset({"plan", "check", "probe", "report", "completion"})
#: ... and those whose only output is what they print (a closed output leaves nothing half-done)
_CHANGE_NOTHING = _READ_ONLY | {"init"}


class Interrupted(PgwardenError):
    """Ctrl-C (or SIGTERM where a command turns it into one): exit 130, saying what was kept."""

    exit_code = 130


#: What a command has committed so far in this run (set by `kept`), for an interruption or a closed
#: output that arrives afterwards: they must say the change was made, not only that it stopped.
_KEPT: list[str] = []


def kept(sentence: str) -> None:
    """Record that the command has committed something (`sentence` says what), once it has."""
    _KEPT.append(sentence)


def interrupted(command: str | None) -> Interrupted:
    """What can be said of an interruption knowing only the command (apply and demo say more)."""
    if _KEPT:
        return Interrupted(
            f"interrupted after the change was committed: {'; '.join(_KEPT)} (kept)",
            hint="nothing to redo: run `pgwarden check` to see the result",
        )
    if command in _READ_ONLY:
        return Interrupted("interrupted: nothing was changed", hint=f"run `pgwarden {command}` again")
    if command == "policy":  # it works on a file, never on a database
        return Interrupted(
            "interrupted: the policy file is as it was or completely rewritten, never half",
            hint="run the command again",
        )
    return Interrupted(
        "interrupted",
        hint="run `pgwarden plan` to see where the database stands (apply is safe to re-run)",
    )


def lost_connection(exc: BaseException) -> PgwardenError | None:
    """The server ended the connection mid-command (psycopg's OperationalError): it rolled back the open
    transaction; what the command committed before (said by `kept`) stays. None for any other error."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.OperationalError):
        return None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    done = f"; committed before it and kept: {'; '.join(_KEPT)}" if _KEPT else ""
    return PgwardenError(
        f"the connection to the server was lost: {first}{done}",
        hint="the server rolled back what was in progress; once it is back, run `pgwarden plan` to see where "
        "things stand (apply is safe to re-run)",
    )


class LazyGroup(click.Group):
    """Commands live in pgwarden.commands.<name>; import them only when used (fast --help/--version)."""

    def _names(self) -> list[str]:
        import pgwarden.commands as pkg

        # a command's name is its module's with dashes (break_glass.py is `break-glass`)
        return sorted(
            m.name.replace("_", "-") for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")
        )

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self._names()) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in self._names():
            return None
        module = importlib.import_module(f"pgwarden.commands.{cmd_name.replace('-', '_')}")
        command: click.Command = module.command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # click turns KeyboardInterrupt into Abort (after printing a blank line) and a Ctrl-C at a
        # prompt into Abort too; both become one Interrupted error here, with the command's name.
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # before click's own handler, which exits 1 without a word
            raise output_closed(ctx.invoked_subcommand in _CHANGE_NOTHING) from None
        except KeyboardInterrupt:
            raise interrupted(ctx.invoked_subcommand) from None
        except click.exceptions.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise Interrupted(
                    "interrupted at the question: nothing was changed",
                    hint="run the command again and answer, or pass --yes",
                ) from None
            raise


@click.group(
    cls=LazyGroup,
    help=HELP,
    invoke_without_command=True,  # `pgwarden` alone prints its help and exits 0 (a request, not a mistake)
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", "-V", prog_name="pgwarden", message="%(prog)s %(version)s")
@click.option("-q", "--quiet", is_flag=True, help="Print only results and errors (no progress, no notes).")
@click.option("-v", "--verbose", is_flag=True, help="Print more detail about what is done and why.")
@click.option(
    "--color/--no-color",
    default=None,
    help="Force or disable colours (default: on a terminal, unless NO_COLOR is set).",
)
@click.option("--debug", is_flag=True, help="Show the Python traceback when something fails.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool, color: bool | None, debug: bool) -> None:
    ctx.obj = UI(quiet=quiet, verbose=verbose, color=color)
    ctx.meta["pgwarden.debug"] = debug
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(EXIT_OK)


# --- options shared by commands --------------------------------------------------------------------------


def config_option(f: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config",
        default="pgwarden.toml",
        show_default=True,
        type=click.Path(dir_okay=False),
        help="Policy file.",
    )(f)


def dsn_option(f: F) -> F:
    return click.option(
        "--dsn",
        envvar="PGWARDEN_DSN",
        default=None,
        metavar="DSN",
        help="Admin connection: a libpq connection string or postgresql:// URL "
        "(default: $PGWARDEN_DSN, else the PG* environment).",
    )(f)


def _duration_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from pgwarden.policy import check_duration

    try:
        return check_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def lock_timeout_option(f: F) -> F:
    return click.option(
        "--lock-timeout",
        metavar="DURATION",
        callback=_duration_value,
        help="Override [apply] lock_timeout (e.g. 5s, 500ms): how long a statement may wait for a lock "
        "held by live traffic before the transaction gives up.",
    )(f)


def databases_option(f: F) -> F:
    f = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="With several databases: how many to work on at once.",
    )(f)
    return click.option(
        "-d",
        "--database",
        "databases",
        multiple=True,
        metavar="NAME|PATTERN",
        help="Work on this database (repeatable). A version 2 file: one of its [[databases]] (default: "
        "all of them; an entry named with a glob such as 'tenant_*' stands for every matching database of "
        "the cluster), or a glob pattern matching their names; a version 1 file: its policy applied to this "
        "database of the cluster instead of its own, a glob pattern such as 'tenant_*' selecting every "
        "matching database of the cluster.",
    )(f)


def database_option(f: F) -> F:
    """-d for a command that works on one database (run): the same selection, exactly one result."""
    return click.option(
        "-d",
        "--database",
        "databases",
        multiple=True,
        metavar="NAME|PATTERN",
        help="The database to work on, selected as for plan (a version 2 file: one of its [[databases]]; "
        "a version 1 file: its policy on this database of the cluster); exactly one must be selected.",
    )(f)


def format_option(*choices: str, default: str = "text") -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(list(choices)),
            default=default,
            show_default=True,
            help="Output format: " + ", ".join(choices) + ".",
        )(f)

    return deco


def ui_of(ctx: click.Context) -> UI:
    obj = ctx.find_object(UI)
    return obj if obj is not None else UI()


def mode_option(f: F) -> F:
    return click.option(
        "--mode",
        type=click.Choice(["authoritative", "additive"]),
        default=None,
        help="Override the policy's mode: authoritative revokes what the policy does not say; additive "
        "grants and creates what is missing and never revokes, drops or moves what exists (the rest is "
        "listed as withheld).",
    )(f)


def load_all(config: str, mode: str | None = None, read: tuple[str, dict[str, Any]] | None = None) -> list[Policy]:
    """The policy of every database of the file (one for version 1), with --mode when given. `read`:
    the file's text and TOML when the command has read them already (pgwarden.policy.load_policies)."""
    from pgwarden.policy import load_policies

    policies = load_policies(config, read)
    return policies if mode is None else [p.model_copy(update={"mode": mode}) for p in policies]


def load_targets(
    config: str,
    mode: str | None,
    dsn: str | None,
    databases: tuple[str, ...],
    read: tuple[str, dict[str, Any]] | None = None,
) -> dict[str, Policy]:
    """database name -> its policy, for -d/--database (pgwarden.multi.select_in_file), with --mode."""
    from pgwarden.multi import select_in_file

    return select_in_file(load_all(config, mode, read), dsn, databases, source=config)


def single_target(targets: dict[str, Policy], command: str) -> Policy:
    """The one database a command that works on one at a time was given; else an error naming them."""
    if len(targets) == 1:
        return next(iter(targets.values()))
    names = ", ".join(targets)
    raise PgwardenError(
        f"`pgwarden {command}` works on one database at a time and {len(targets)} are selected ({names})",
        hint=f"choose one with -d NAME (one of {names})",
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: `error:` and `hint:` lines, exit codes 0/1/2 (130 interrupted), --debug for the traceback.
    As the program, what exists is frozen as it ends: the interpreter's exit then does not scan it."""
    try:
        _main(argv)
    finally:  # in-process (tests), what a command froze (commands/_background.py) is collected as usual after
        gc.freeze() if argv is None else gc.unfreeze()


# the exit-code contract (0/1/2/130) in one place: one except clause per way a command can end
def _main(argv: list[str] | None) -> None:  # noqa: C901 (one except clause per way a command ends)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    if not debug:
        # psycopg logs "error ignored terminating <psycopg.Pipeline [BAD] at 0x...>" when the server goes
        # away mid-pipeline; Python's last-resort handler would print it above our own one-line error.
        import logging

        logging.getLogger("psycopg").addHandler(logging.NullHandler())
    _KEPT.clear()
    try:
        rv = cli.main(args=argv, prog_name="pgwarden", standalone_mode=False)
        sys.stdout.flush()  # a closed pipe shows here, while it can still be reported
    except BrokenPipeError:
        report_error(output_closed())
        _silence_stdout()
        sys.exit(EXIT_ERROR)
    except OutputClosed as exc:
        report_error(exc)
        _silence_stdout()
        sys.exit(EXIT_ERROR)
    except SystemExit as exc:
        # click's own answer to a closed output outside a command (--version, --help): exit 1, silent
        if exc.code == 1 and type(sys.stdout).__name__ == "_PacifyFlushWrapper":
            report_error(output_closed(read_only=True))
            sys.exit(EXIT_ERROR)
        raise
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        report_usage_error(exc)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C before a command was chosen
            report_error(interrupted(None))
            sys.exit(130)
        report_error(
            PgwardenError(
                "aborted: no answer to the question (end of input); nothing was changed",
                hint="answer on a terminal, or pass --yes to go ahead without a question",
            )
        )
        sys.exit(EXIT_ERROR)
    except PgwardenError as exc:
        if debug:
            raise
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        report_error(interrupted(None))
        sys.exit(130)
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            raise
        lost = lost_connection(exc)  # the server went away mid-command: not a bug
        if lost is not None:
            report_error(lost)
            sys.exit(EXIT_ERROR)
        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("hint: re-run with --debug and report the traceback", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


class OutputClosed(PgwardenError):
    """Standard output was closed by its reader before the command finished writing."""


def output_closed(read_only: bool = False) -> OutputClosed:
    """The reader of our output went away (`pgwarden plan | head`): the job is not finished, so exit 2,
    saying whether something was committed before."""
    if _KEPT:
        return OutputClosed(
            f"output closed before pgwarden finished writing (broken pipe); the change was applied: {'; '.join(_KEPT)}",
            hint="nothing to redo: run `pgwarden check` to see the result",
        )
    if read_only:
        return OutputClosed(
            "output closed before pgwarden finished writing (broken pipe); nothing was changed",
            hint="let the command finish: write to a file, or pipe into `less`",
        )
    return OutputClosed(
        "output closed before pgwarden finished writing (broken pipe)",
        hint="run `pgwarden plan` to see where the database stands (apply is safe to re-run)",
    )


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture it in memory)
        pass
