"""Several catalog queries in one round trip (psycopg's pipeline mode), each as pgwarden.fetch runs it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pgwarden.fetch import QUERY_SETTINGS, query, typed_row

if TYPE_CHECKING:
    import psycopg


class Call(NamedTuple):
    """One query for fetch_each: queries/<name>.sql (or `text`), its row type and parameters."""

    name: str
    row: type[Any]
    params: Mapping[str, Any] | None = None
    text: str | None = None


def fetch_each(conn: psycopg.Connection[Any], calls: Sequence[Call]) -> list[list[Any]]:
    """The rows of each call, sent together and answered together: one round trip instead of one
    per query (a fleet's databases each wait for the server less often). The queries must not
    depend on each other's results; an error in one raises as fetch would (the rest are not run)."""
    if any(c.name in QUERY_SETTINGS for c in calls):
        raise ValueError("a query with its own settings goes through pgwarden.fetch")
    import psycopg

    if len(calls) == 1 or not psycopg.Pipeline.is_supported():  # one, or a libpq before 14: one by one
        return [_one(conn, call) for call in calls]
    cursors = []
    try:
        with conn.pipeline():
            for call in calls:
                cur = conn.cursor(row_factory=typed_row(call.row))
                cursors.append(cur)
                cur.execute((call.text if call.text is not None else query(call.name)).encode(), call.params or {})
        return [cur.fetchall() for cur in cursors]
    finally:
        for cur in cursors:
            cur.close()


def _one(conn: psycopg.Connection[Any], call: Call) -> list[Any]:
    with conn.cursor(row_factory=typed_row(call.row)) as cur:
        text = call.text if call.text is not None else query(call.name)
        return cur.execute(text.encode(), call.params or {}).fetchall()
