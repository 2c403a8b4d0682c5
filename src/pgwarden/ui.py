"""Terminal output: rich on a terminal, plain text in a pipe, NO_COLOR honoured, quiet/verbose."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from click import ClickException
    from rich.console import Console

    from pgwarden.errors import PgwardenError


@dataclass
class UI:
    """What every command prints through: data on stdout, diagnostics on stderr."""

    quiet: bool = False
    verbose: bool = False
    color: bool | None = None  # None: decide from the terminal and NO_COLOR
    _out: Console | None = field(default=None, repr=False)
    _err: Console | None = field(default=None, repr=False)

    def _console(self, stderr: bool) -> Console:
        from rich.console import Console

        class _Console(Console):
            def on_broken_pipe(self) -> None:
                # rich exits 1 without a word; pgwarden.cli reports it (exit 2, and what was committed)
                self.quiet = True
                raise BrokenPipeError

        stream = sys.stderr if stderr else sys.stdout
        force = True if self.color else None
        return _Console(
            file=stream,
            no_color=self.no_color,
            force_terminal=force,
            highlight=False,
            soft_wrap=not stream.isatty(),
            emoji=False,
        )

    @property
    def no_color(self) -> bool:
        """--no-color, or NO_COLOR set (any value, https://no-color.org) without --color."""
        return self.color is False or (self.color is None and bool(os.environ.get("NO_COLOR")))

    @property
    def styled(self) -> bool:
        """Whether stdout gets colours: a terminal (or --color) and neither --no-color nor NO_COLOR."""
        return self.out.is_terminal and not self.no_color

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = self._console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = self._console(stderr=True)
        return self._err

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty() and sys.stdout.isatty()

    def print(self, *objects: Any, style: str | None = None) -> None:
        """Data for the user (stdout). Strings are printed as they are: names are user data, and a
        table named `[red]` must not be read as rich markup (styles come from Text objects)."""
        self.out.print(*objects, style=style, markup=False)

    def info(self, message: str) -> None:
        """Progress and notes (stderr), hidden by --quiet."""
        if not self.quiet:
            self.err.print(message, markup=False)

    def detail(self, message: str) -> None:
        """Only with --verbose."""
        if self.verbose and not self.quiet:
            self.err.print(message, markup=False, style="dim")

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", markup=False, style="yellow")

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

    def raw(self, text: str) -> None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


_DEFAULT_HINTS: tuple[tuple[str, str], ...] = (
    ("PolicyError", "each problem names the file, line and key: fix them (docs/policy.md lists every key)"),
    ("ConnectError", "check --dsn or the PG* environment variables"),
)


def report_error(exc: PgwardenError) -> None:
    """`error: ...` and `hint: ...`, always both (a hint-less error gets its kind's general advice)."""
    import click

    hint = exc.hint or next(
        (h for kind, h in _DEFAULT_HINTS if kind in (c.__name__ for c in type(exc).__mro__)),
        "re-run with -v for details (or --debug for the traceback)",
    )
    click.echo(f"error: {exc.message}", err=True)
    click.echo(f"hint: {hint}", err=True)


def report_usage_error(exc: ClickException) -> None:
    """click's usage errors (bad option value, unknown command) in the same two lines."""
    import click

    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "pgwarden"
    click.echo(f"error: {exc.format_message()}", err=True)
    click.echo(f"hint: see `{path} --help`", err=True)
