"""What the commands that write a document share: `-o/--output`, writing there or to standard output, and
the databases of a run that could not be worked on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.multi import Outcome
    from pgwarden.ui import UI

output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of standard output.",
)


def write_output(ui: UI, text: str, output: str | None) -> None:
    """`text` to standard output, or to the file `-o` names (an unwritable path: one error, nothing written)."""
    if output is None:
        ui.raw(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PgwardenError(f"cannot write {output}: {exc.strerror}", hint="choose a writable path for -o") from None


def print_errors(ui: UI, outcomes: Sequence[Outcome[Any]]) -> bool:
    """Each database that could not be worked on, on stderr; whether there was one."""
    failed = [o for o in outcomes if o.error is not None]
    for o in failed:
        ui.err.print(f"error: database {o.database}: {o.error}", markup=False)
    return bool(failed)
