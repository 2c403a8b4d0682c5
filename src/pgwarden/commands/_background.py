"""Imports a command needs later, made in a thread while it waits for the server's first answers."""

from __future__ import annotations

import functools
import gc
import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def collector_paused() -> Iterator[Callable[[], None]]:
    """Python's cyclic garbage collector off while a command imports its modules, on again (with
    what is imported so far frozen: never scanned again) when the given function is called, and
    in any case on the way out. Every import makes containers (classes, functions, dicts) that
    trigger collections, each scanning what is made so far, for no garbage; and what stays frozen
    is not scanned again by the collections of the interpreter's exit either: together ~0.09 s of
    check's ~0.38 s of CPU at 10,000 tables (bench/RESULTS.md). What is frozen stays so until the
    process ends; pgwarden.cli.main unfreezes it for a caller that goes on (tests)."""
    if not gc.isenabled():  # the caller manages it
        yield lambda: None
        return
    gc.disable()
    frozen = False

    def resume() -> None:
        nonlocal frozen
        if not frozen:
            frozen = True
            gc.freeze()
        gc.enable()

    try:
        yield resume
    finally:
        gc.enable()


def with_collector_paused(command: Callable[..., int]) -> Callable[..., int]:
    """`command` run inside collector_paused(), given the function that resumes it as `imported=`
    (a click callback: its own parameters pass through unchanged)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        with collector_paused() as resume:
            return command(*args, imported=resume, **kwargs)

    return run


@contextmanager
def import_in_background(*modules: str, then: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Import `modules` in a thread while the command waits for the server (imports hold the GIL, a
    query waiting for its answer does not), so that their cost hides behind the server's work; the
    command imports them again where it uses them (then a dictionary lookup, or waiting for the
    thread to finish that module). Joined on the way out: never left running past the command.
    `then` is called by the thread once it is done (or has failed)."""

    def run() -> None:
        try:
            for name in modules:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the command's own import will raise it where it matters
            pass
        finally:
            then()

    thread = threading.Thread(target=run, name="pgwarden-imports", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
