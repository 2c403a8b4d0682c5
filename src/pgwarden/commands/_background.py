"""Imports a command needs later, made in a thread while it waits for the server's first answers."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def import_in_background(*modules: str) -> Iterator[None]:
    """Import `modules` in a thread while the command waits for the server (imports hold the GIL, a
    query waiting for its answer does not), so that their cost hides behind the server's work; the
    command imports them again where it uses them (then a dictionary lookup, or waiting for the
    thread to finish that module). Joined on the way out: never left running past the command."""

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the command's own import will raise it where it matters
                return

    thread = threading.Thread(target=run, name="pgwarden-imports", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
