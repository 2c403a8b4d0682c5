"""Progress on stderr: one rich bar on a terminal, a line per item with --verbose otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgwarden.apply import EventHandler
    from pgwarden.multi import Outcome
    from pgwarden.plan import Step
    from pgwarden.ui import UI


class _Bar:
    """One rich progress bar on stderr when it is a terminal (and not --quiet); a no-op elsewhere."""

    def __init__(self, ui: UI, *, transient: bool = True) -> None:
        self._bar: Any = None
        self._task: Any = None
        if ui.err.is_terminal and not ui.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=ui.err,
                transient=transient,
            )

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def show(self, description: str, done: int, total: int) -> None:
        if self._bar is None:
            return
        if self._task is None:
            self._task = self._bar.add_task(description, total=total)
        self._bar.update(self._task, description=description, total=total, completed=done)

    def __enter__(self) -> _Bar:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@contextmanager
def apply_progress(ui: UI) -> Iterator[EventHandler]:
    """A progress bar on a terminal (for long applies), the statements with --verbose otherwise."""
    with _Bar(ui, transient=False) as bar:

        def on_event(event: str, step: Step | None, done: int, total: int) -> None:
            if event == "waiting":
                ui.info("another pgwarden apply holds the lock on this cluster: waiting for it to finish")
            elif step is not None:
                bar.show(f"applying ({step.phase.name.lower()})", done, total)
                if not bar.shown and ui.verbose:
                    ui.detail(f"{step.object}: {step.render_short()}")

        yield on_event


@contextmanager
def database_progress(ui: UI, what: str) -> Iterator[Callable[[Outcome[Any], int, int], None]]:
    """Progress over several databases: a bar on a terminal, one line per database with --verbose."""
    with _Bar(ui) as bar:

        def on_done(outcome: Outcome[Any], done: int, total: int) -> None:
            bar.show(what, done, total)
            state = f"error: {outcome.error}" if outcome.error else f"{outcome.seconds:.2f}s"
            ui.detail(f"[{done}/{total}] {outcome.database}: {state}")

        yield on_done


@contextmanager
def role_progress(ui: UI) -> Iterator[Callable[[str, int, int], None]]:
    """Progress over the roles a probe acts as: a bar on a terminal, a line per role with --verbose."""
    with _Bar(ui) as bar:

        def on_role(role: str, done: int, total: int) -> None:
            bar.show(f"probing as {role}", done, total)
            ui.detail(f"probing as {role} ({done + 1}/{total})")

        yield on_role
