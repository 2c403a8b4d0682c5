"""The one way to run a catalog query: queries/<name>.sql, bound parameters, typed frozen rows (class_row)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg.pq import TransactionStatus
from psycopg.rows import class_row

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


@cache
def query(name: str) -> str:
    """The text of queries/<name>.sql."""
    return resources.files("pgwarden.queries").joinpath(f"{name}.sql").read_text(encoding="utf-8")


#: Settings for one query, set just before it and put back just after (two statements, whatever
#: their number). The objects query joins a CTE whose size the planner cannot estimate: a merge
#: join there sorts every object (0.14 s at 200,000 objects), a hash join does not; and its hash
#: tables spill to disk under the default work_mem at that size.
QUERY_SETTINGS: Mapping[str, Mapping[str, str]] = {
    "objects": {"enable_mergejoin": "off", "work_mem": "64MB"},
    "objects_expected": {"enable_mergejoin": "off", "work_mem": "64MB"},
}


def fetch(
    conn: psycopg.Connection[Any],
    name: str,
    row: type[T],
    params: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
) -> list[T]:
    """The rows of queries/<name>.sql (or of `text`, a query assembled from such files) as `row`s:
    a frozen dataclass whose fields are the query's column aliases."""
    settings = QUERY_SETTINGS.get(name, {})
    previous = _swap_settings(conn, settings) if settings else {}
    try:
        with conn.cursor(row_factory=class_row(row)) as cur:
            return cur.execute((text if text is not None else query(name)).encode(), params or {}).fetchall()
    finally:
        # only on a connection that can take a statement: not after an error, and not while the
        # query is still running (an interruption raised KeyboardInterrupt in the middle of it,
        # and a second statement would replace it with "another command is already in progress")
        if previous and conn.info.transaction_status in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
            conn.execute(
                "SELECT count(set_config(k, v, false)) FROM unnest(%s::text[], %s::text[]) AS s(k, v)",
                (list(previous), list(previous.values())),
            )


def _swap_settings(conn: psycopg.Connection[Any], settings: Mapping[str, str]) -> dict[str, str]:
    """Set `settings` and return their old values: one statement."""
    row = conn.execute(
        "SELECT json_object_agg(k, old) AS old FROM ("
        "SELECT k, current_setting(k) AS old, set_config(k, v, false) "
        "FROM unnest(%s::text[], %s::text[]) AS s(k, v)) AS swapped",
        (list(settings), list(settings.values())),
    ).fetchone()
    return dict(row[0]) if row and row[0] else {}
