"""commands/_background.py: the collector paused while a command imports, and always on again after."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from helpers import run_cli, write_policy
from pgwarden.commands._background import collector_paused, import_in_background


def test_the_collector_is_off_while_importing_then_on_with_the_imports_frozen() -> None:
    assert gc.isenabled()
    try:
        with collector_paused() as resume:
            assert not gc.isenabled()
            resume()
            assert gc.isenabled() and gc.get_freeze_count() > 0  # what exists now is never scanned again
            resume()  # twice (the import thread, then the command): harmless
        assert gc.isenabled() and gc.get_freeze_count() > 0  # frozen until the process ends
    finally:
        gc.unfreeze()


def test_the_cli_called_in_process_unfreezes_what_a_command_froze(tmp_path: Path) -> None:
    # an in-process caller (the tests) goes on after the command: its later garbage is collected. A
    # valid file and a refused connection: the command's imports were done (and frozen) before it failed
    policy = write_policy(tmp_path / "p.toml", database="d", owner="o", app=["a"])
    result = run_cli(["check", "-c", str(policy), "--dsn", "host=127.0.0.1 port=1 user=x dbname=postgres"])
    assert result.exit_code == 2 and "cannot open the admin connection" in result.stderr, str(result)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_collector_is_on_again_after_an_error_or_an_interruption() -> None:
    for exc in (ValueError("bad file"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), collector_paused():
            raise exc
        assert gc.isenabled()


def test_a_caller_that_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with collector_paused() as resume:
            resume()
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_the_import_thread_resumes_the_collector_when_done_even_after_a_failed_import() -> None:
    try:
        with collector_paused() as resume:
            with import_in_background("json", "pgwarden.no_such_module", then=resume):
                pass  # joined on the way out
            assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_command_decorated_runs_with_the_collector_paused_and_resumes_it() -> None:
    from collections.abc import Callable

    from pgwarden.commands._background import with_collector_paused

    seen: list[tuple[str, bool]] = []

    @with_collector_paused
    def command(word: str, imported: Callable[[], None]) -> int:
        seen.append((word, gc.isenabled()))
        imported()
        seen.append(("imported", gc.isenabled()))
        return 7

    try:
        assert command(word="hello") == 7 and command.__name__ == "command"
        assert seen == [("hello", False), ("imported", True)] and gc.isenabled()
    finally:
        gc.unfreeze()
