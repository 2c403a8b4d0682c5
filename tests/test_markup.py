"""Names are user data, never rich markup: roles and tables named `[red]`, `[/]`, `[bold]` print literally."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from psycopg import sql

from conftest import PgCleanup
from test_core import Split, make_split

MARKUP = ("[red]", "[/]", "[bold]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _outputs(split: Split, *args: str) -> list[tuple[str, str]]:
    """The command's stdout in a pipe and forced onto the rich path (--color), escape codes removed."""
    out = []
    for flags in ((), ("--color",)):
        result = split.cli(*flags, *args)
        assert result.exit_code in (0, 1), str(result)
        out.append((" ".join((*flags, *args)), _ANSI.sub("", result.stdout)))
    return out


def _assert_literal(outputs: list[tuple[str, str]], names: list[str]) -> None:
    for command, text in outputs:
        for name in names:
            assert name in text, f"{name!r} is missing from the output of `pgwarden {command}`:\n{text}"


def test_markup_in_role_and_table_names_is_printed_literally_by_every_command(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    owner, app, readonly = (pg_cleanup.role(unique_name(m)) for m in MARKUP)
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, owner=owner, app=app, readonly=readonly)
    roles = [owner, app, readonly]
    _assert_literal(_outputs(split, "plan"), roles)
    applied = split.cli("apply", "--yes")
    assert applied.exit_code == 0, str(applied)
    _assert_literal([("apply --yes", applied.stdout)], roles)
    with split.login(owner) as conn:
        for name in MARKUP:
            conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(name), sql.Identifier(app)))
    tables = [f'"{name}"' for name in MARKUP]  # quoted as in the SQL and in object labels
    _assert_literal(_outputs(split, "check"), tables + [app])
    _assert_literal(_outputs(split, "report"), tables + roles)
    _assert_literal(_outputs(split, "plan"), tables + [app])
    applied = split.cli("--color", "apply", "--yes")
    assert applied.exit_code == 0, str(applied)
    _assert_literal([("--color apply --yes", _ANSI.sub("", applied.stdout))], [app])
    _assert_literal(_outputs(split, "probe"), roles)
