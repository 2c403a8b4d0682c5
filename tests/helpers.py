"""Shared test helpers: run the CLI in-process, write policies, connect as a role."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgwarden.cli import main
from pgwarden.policy import Policy, build_policy


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"exit={self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@contextlib.contextmanager
def _env(overrides: Mapping[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in overrides}
    try:
        for k, v in overrides.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(args: Sequence[str], env: Mapping[str, str | None] | None = None, stdin: str = "") -> CliResult:
    """Run `pgwarden ARGS` in-process exactly as the console script does (exit codes included)."""
    out, err = io.StringIO(), io.StringIO()
    base: dict[str, str | None] = {"NO_COLOR": "1", "COLUMNS": "200"}
    base.update(env or {})
    code = 0
    with _env(base), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        import sys

        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        finally:
            sys.stdin = old_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


def write_policy(path: Path, policy: Policy | None = None, **kwargs: Any) -> Path:
    """Write a policy file; kwargs go to build_policy (database=, owner=, app=, readonly=, schemas=,
    version=). The suite's tests were written against version 1 files, which keep working as they
    were; version 2 has its own tests (and `upgrade` is proved to plan the same)."""
    kwargs.setdefault("version", 1)
    policy = policy or build_policy(**kwargs)
    path.write_text(policy.to_toml(), encoding="utf-8")
    return path


def role_conninfo(admin_dsn: str, role: str, password: str | None = None, dbname: str | None = None) -> str:
    """Conninfo to log in as `role` on the same server as `admin_dsn`."""
    params = conninfo_to_dict(admin_dsn)
    params.pop("password", None)
    params["user"] = role
    if password is not None:
        params["password"] = password
    if dbname is not None:
        params["dbname"] = dbname
    return make_conninfo(**params)


def db_conninfo(admin_dsn: str, dbname: str) -> str:
    return make_conninfo(admin_dsn, dbname=dbname)


def connect(conninfo: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, autocommit=autocommit)


def find_chromium() -> str | None:
    """A headless-capable Chromium on PATH (Debian's `chromium`, installed by .ci/run), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_dom(browser: str, html: str, tmp_path: Path, width: int, name: str = "measured") -> str:
    """The DOM of `html` as headless Chromium laid it out in a window `width` px wide (--dump-dom): a
    script the page carries can write what it measured into the DOM for the test to read."""
    copy = tmp_path / f"{name}-{width}.html"
    copy.write_text(html, encoding="utf-8")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chrome'}",
            f"--window-size={width},900",
            "--dump-dom",
            copy.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
