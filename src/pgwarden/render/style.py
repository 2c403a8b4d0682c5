"""Styled text for terminals: severity colours, aligned columns, plain text in pipes and under NO_COLOR."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

# rich is imported where text is styled: JSON, SARIF and JUnit output need none of it (start-up)
if TYPE_CHECKING:
    from rich.text import Text

    from pgwarden.ui import UI

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
OK_STYLE = "green"
BAD_STYLE = "bold red"
HEAD_STYLE = "bold"


def join(lines: Iterable[Text | str]) -> Text:
    """Lines into one text, each ended by a newline."""
    from rich.text import Text

    out = Text()
    for line in lines:
        out.append_text(line if isinstance(line, Text) else Text(line))
        out.append("\n")
    return out


def aligned(rows: Sequence[Sequence[Text | str]], gap: int = 2) -> list[Text]:
    """Rows of cells padded into columns (the last column is not padded); widths in characters."""
    from rich.text import Text

    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    if not cells:
        return []
    width = max(len(r) for r in cells)
    widths = [max((r[i].cell_len for r in cells if i < len(r)), default=0) for i in range(width)]
    out = []
    for row in cells:
        line = Text()
        for i, cell in enumerate(row):
            line.append_text(cell)
            if i < len(row) - 1:
                line.append(" " * (widths[i] - cell.cell_len + gap))
        line.rstrip()
        out.append(line)
    return out


def emit(ui: UI, text: Text | str) -> None:
    """Styled on a colour terminal (or with --color), the same characters without styles elsewhere."""
    if isinstance(text, str):
        from rich.text import Text

        text = Text(text)
    if ui.styled:
        ui.out.print(text, soft_wrap=True, end="")
    else:
        ui.raw(text.plain)
