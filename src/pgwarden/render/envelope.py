"""The one JSON envelope of several databases (plan, check, probe, apply): a document per database and a total."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pgwarden.findings import SCHEMA_VERSION

if TYPE_CHECKING:
    from pgwarden.multi import Outcome

__all__ = ["SCHEMA_VERSION", "document", "envelope"]

T = TypeVar("T")


def document(data: Mapping[str, Any]) -> dict[str, Any]:
    """A single-database document: `schema_version` first, then its keys."""
    return {"schema_version": SCHEMA_VERSION, **{k: v for k, v in data.items() if k != "schema_version"}}


def envelope(
    outcomes: Sequence[Outcome[T]],
    one: Callable[[T], Mapping[str, Any]],
    summary: Mapping[str, Any],
    *,
    error_extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """{"schema_version", "databases": [{"database", "seconds", ...the database's document or "error"}],
    "summary"}; a database that could not be worked on has an `error` string instead of its keys."""
    databases = []
    for o in outcomes:
        entry: dict[str, Any] = {"database": o.database, "seconds": round(o.seconds, 3)}
        if o.result is not None:
            entry |= {k: v for k, v in one(o.result).items() if k not in ("schema_version", "database")}
        else:
            entry |= {"error": str(o.error), **(error_extra or {})}
        databases.append(entry)
    return {"schema_version": SCHEMA_VERSION, "databases": databases, "summary": dict(summary)}
