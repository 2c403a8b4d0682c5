"""docs/adopting.md is executed: its marked blocks run in order on a fresh database and print what the page shows.

A block preceded by `<!-- doc-test: KIND -->` is run:
- `sql`: as the admin (the bootstrap superuser), a `\\c DB` line switches database as in psql;
- `sql as ROLE`: logged in as ROLE to database shop, with the password the page exported for it;
- `shell`: each `$ ` line is a command (`pgwarden ...` run as a user would, `export VAR=value`), and the
  lines up to the next `$ ` are what it prints (stdout and stderr as a terminal shows them);
- `show FILE`: the block is FILE's content at that point;
- `append FILE`: the block's text is added at the end of FILE;
- `insert FILE after TEXT`: the block's lines are inserted after the first line containing TEXT.
Only what must vary is normalised: ports, durations, version numbers. With PGWARDEN_REGEN_DOCS=1 the
test writes the outputs it got into the page instead of comparing (then review the diff).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

import exactness
from conftest import PgCleanup
from helpers import role_conninfo
from pgwarden.server import LocalServer

PAGE = Path(__file__).resolve().parent.parent / "docs" / "adopting.md"
MARK = re.compile(r"^<!-- doc-test: (?P<kind>.+?) -->\n```[a-z]*\n(?P<body>.*?)^```$", re.M | re.S)
DATABASES = ("shop",)
ROLES = ("shop_owner", "shop_deploy", "shop_app", "bi", "analysts", "alice")


@dataclass
class Block:
    kind: str
    body: str
    start: int  # offsets of the body in the page
    end: int


def blocks(text: str) -> list[Block]:
    return [Block(m["kind"], m["body"], m.start("body"), m.end("body")) for m in MARK.finditer(text)]


def normalise(text: str) -> str:
    text = re.sub(r"\bport[= ]\d+", "port=<PORT>", text)
    text = re.sub(r"(?<=[:])\d{4,5}\b", "<PORT>", text)
    text = re.sub(r"\b\d+(\.\d+)?\s?(ms|s)\b", "<T>", text)
    text = re.sub(r"PostgreSQL \d+(\.\d+)?", "PostgreSQL <V>", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def commands(body: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a shell block."""
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
        command, _, expected = chunk.partition("\n")
        out.append((command, expected))
    return out


class Page:
    """Runs the page's blocks in a working directory, against one server."""

    def __init__(self, server: LocalServer, workdir: Path) -> None:
        self.admin = server.conninfo("postgres")
        self.workdir = workdir
        self.env = {**os.environ, "PGWARDEN_DSN": self.admin, "NO_COLOR": "1", "COLUMNS": "100"}
        self.env.pop("PGDATABASE", None)

    def sql(self, body: str, role: str | None = None) -> None:
        if role is None:
            conninfo = self.admin
        else:
            password = self.env.get(f"PGWARDEN_PASSWORD_{role.upper()}")
            conninfo = role_conninfo(self.admin, role, password, "shop")
        conn = psycopg.connect(conninfo, autocommit=True)
        try:
            for stmt in _statements(body):
                if stmt.startswith("\\c "):
                    conn.close()
                    conn = psycopg.connect(make_conninfo(conninfo, dbname=stmt[3:].strip()), autocommit=True)
                else:
                    conn.execute(stmt.encode())
        finally:
            conn.close()

    def shell(self, command: str) -> str:
        argv = shlex.split(command, comments=True)
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            self.env[name] = value
            return ""
        assert argv[0] == "pgwarden", f"the page runs pgwarden commands only: {command}"
        proc = subprocess.run(
            [sys.executable, "-m", "pgwarden", *argv[1:]],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        return proc.stdout

    def edit(self, kind: str, body: str) -> None:
        words = kind.split(None, 2)
        path = self.workdir / words[1]
        text = path.read_text()
        if words[0] == "append":
            text = text.rstrip("\n") + "\n\n" + body
        else:
            anchor = words[2].removeprefix("after ").strip('"')
            lines = text.splitlines(keepends=True)
            at = next(i for i, line in enumerate(lines) if anchor in line)
            text = "".join(lines[: at + 1]) + body + "".join(lines[at + 1 :])
        path.write_text(text)


def _statements(body: str) -> list[str]:
    """The statements of a SQL block (one per `;`-ended line group; psql's \\c on a line of its own)."""
    out, current = [], []
    for line in body.splitlines():
        stripped = line.split("--", 1)[0].rstrip() if not line.lstrip().startswith("\\") else line.strip()
        if stripped.startswith("\\c "):
            out.append(stripped)
            continue
        if stripped:
            current.append(stripped)
        if stripped.endswith(";"):
            out.append("\n".join(current))
            current = []
    assert not current, f"a statement without its `;`: {current}"
    return out


# The page shows PostgreSQL 15+ output; on 14 PUBLIC may also CREATE in schema public and postgres owns it,
# which the page says in a sentence instead of a second transcript.
@pytest.mark.minversion(15)
def test_adopting_page_runs_as_written(pg_server: LocalServer, pg_cleanup: PgCleanup, tmp_path: Path) -> None:
    for name in DATABASES:
        pg_cleanup.database(name)
    for role in ROLES:
        pg_cleanup.role(role)
    assert pg_server.superuser == "postgres", "the page's objects belong to postgres"
    text = PAGE.read_text()
    page = Page(pg_server, tmp_path)
    regen = os.environ.get("PGWARDEN_REGEN_DOCS") == "1"
    replacements: list[tuple[int, int, str]] = []
    found = blocks(text)
    assert len(found) >= 8, "the page lost its executed blocks"
    mismatches: list[str] = []
    try:
        _run(page, found, replacements, mismatches)
    finally:
        if regen:  # what ran so far, even when a block failed: the page shows where it stopped
            for start, end, body in reversed(replacements):
                text = text[:start] + body.rstrip("\n") + "\n" + text[end:]
            PAGE.write_text(text)
    if not regen:
        assert not mismatches, "docs/adopting.md drifted (PGWARDEN_REGEN_DOCS=1 rewrites it):\n\n" + "\n\n".join(
            mismatches
        )


def _shell(page: Page, block: Block, mismatches: list[str]) -> str:
    """Run a shell block's commands; returns the block as they printed it, notes what differs."""
    new_body = []
    for command, expected in commands(block.body):
        got = page.shell(command)
        new_body.append(f"$ {command}\n{got}")
        if normalise(got) != normalise(expected):
            mismatches.append(f"$ {command}\n--- the page says:\n{expected}\n--- it printed:\n{got}")
    return "".join(new_body)


#: The roles the page says keep exactly what they held (the app's own role is new, the owner's are new).
KEPT = ("bi", "analysts", "alice")


def _run(page: Page, found: list[Block], replacements: list[tuple[int, int, str]], mismatches: list[str]) -> None:
    before: set[exactness.Fact] | None = None
    for block in found:
        if block.kind == "sql":
            page.sql(block.body)
            if before is None:  # the database as the page builds it: what bi, analysts and alice hold
                before = exactness.record(page.admin, "shop", None, KEPT)
        elif block.kind.startswith("sql as "):
            page.sql(block.body, block.kind.removeprefix("sql as "))
        elif block.kind.startswith(("append ", "insert ")):
            page.edit(block.kind, block.body)
        elif block.kind.startswith("show "):
            got = (page.workdir / block.kind.removeprefix("show ")).read_text()
            if normalise(got) != normalise(block.body):
                mismatches.append(f"{block.kind}\n--- the page says:\n{block.body}\n--- the file is:\n{got}")
            replacements.append((block.start, block.end, got))
        elif block.kind == "shell":
            replacements.append((block.start, block.end, _shell(page, block, mismatches)))
        else:
            pytest.fail(f"unknown doc-test block kind {block.kind!r}")
    # "bi, analysts and alice hold what they held before": every effective privilege, recorded
    assert before is not None and before, "the page's database gave bi, analysts and alice nothing to keep"
    after = exactness.record(page.admin, "shop", None, KEPT)
    assert sorted(before - after) == [] and sorted(after - before) == [], "the page's path changed what they hold"
