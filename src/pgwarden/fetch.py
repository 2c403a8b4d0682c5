"""The one way to run a catalog query: queries/<name>.sql, bound parameters, typed frozen rows."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg.pq import TransactionStatus

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import BaseRowFactory, RowMaker

T = TypeVar("T")
#: Turns a value as psycopg returns it (JSON already parsed) into the type a field declares.
Decode = Callable[[Any], Any]


@cache
@cache
def query(name: str) -> str:
    """The text of queries/<name>.sql, each `/* include <other> */` replaced by queries/<other>.sql
    (a part several queries share, said once: object_rows.sql)."""
    text = resources.files("pgwarden.queries").joinpath(f"{name}.sql").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda m: query(m.group(1)), text)


_INCLUDE = re.compile(r"/\* include (\w+) \*/")


#: Settings for one query, set just before it and put back just after (two statements, whatever
#: their number). The objects query joins a CTE whose size the planner cannot estimate: a merge
#: join there sorts every object (0.14 s at 200,000 objects), a hash join does not; and its hash
#: tables spill to disk under the default work_mem at that size.
QUERY_SETTINGS: Mapping[str, Mapping[str, str]] = {
    "objects": {"enable_mergejoin": "off", "work_mem": "64MB"},
    "objects_expected": {"enable_mergejoin": "off", "work_mem": "64MB"},
}

#: From this size of pg_class's file (server.sql's `catalog_bytes`: about 24,000 relations) a catalog
#: is big: the objects query takes its QUERY_SETTINGS (below, the default plan is as good and fits the
#: default work_mem: two statements fewer; the rows are the same whatever the plan), and check reads on
#: two connections (pgwarden.parallel). One measure, read in the first statement.
BIG_CATALOG_BYTES = 16 * 1024 * 1024


def needs_settings(catalog_bytes: int) -> bool:
    """Whether the objects query takes its QUERY_SETTINGS, given server.sql's `catalog_bytes` (-1: unknown)."""
    return catalog_bytes < 0 or catalog_bytes >= BIG_CATALOG_BYTES


def fetch(
    conn: psycopg.Connection[Any],
    name: str,
    row: type[T],
    params: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
    settings: bool = True,
) -> list[T]:
    """The rows of queries/<name>.sql (or of `text`, a query assembled from such files) as `row`s:
    a frozen dataclass whose fields are the query's column aliases (JSON columns decoded: `typed_row`).
    `settings=False`: without the query's QUERY_SETTINGS (a small catalog: needs_settings)."""
    settings_ = QUERY_SETTINGS.get(name, {}) if settings else {}
    previous = _swap_settings(conn, settings_) if settings_ else {}
    try:
        with conn.cursor(row_factory=typed_row(row)) as cur:
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


def typed_row(cls: type[T]) -> BaseRowFactory[T]:
    """psycopg's class_row, with each column decoded to the type its field declares: a JSON column
    becomes the typed rows it holds, once, here (`decoder`), so no reader indexes JSON by key."""

    def factory(cursor: Any) -> RowMaker[T]:  # a psycopg BaseCursor (not exported)
        names = [c.name for c in cursor.description or ()]
        fields = _column_decoders(cls)
        pairs = [(n, fields.get(n)) for n in names]
        decoded = [(n, d) for n, d in pairs if d is not None]

        def make(values: Sequence[Any]) -> T:
            kwargs = dict(zip(names, values, strict=True))
            for n, d in decoded:
                kwargs[n] = d(kwargs[n])
            return cls(**kwargs)

        return make

    return factory


def _column_decoders(cls: type[Any]) -> dict[str, Decode | None]:
    """A row's columns: psycopg already gives scalars and arrays of scalars their Python type, so
    only the fields that hold rows (a JSON column) are decoded."""
    found = _COLUMNS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _COLUMNS[cls] = {n: None if _scalar(hints[n]) else d for n, d in _field_decoders(cls).items()}
    return found


def _field_decoders(cls: type[Any]) -> dict[str, Decode | None]:
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _FIELDS[cls] = {f.name: decoder(hints[f.name]) for f in dataclasses.fields(cls)}
    return found


#: per row class, its fields' decoders (classes are not Hashable to mypy, so no functools.cache)
_FIELDS: dict[type[Any], dict[str, Decode | None]] = {}
_COLUMNS: dict[type[Any], dict[str, Decode | None]] = {}


def _scalar(tp: Any) -> bool:
    """A scalar or a list of scalars (X | None too): what psycopg returns typed from a column."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _scalar(args[0])
    if typing.get_origin(tp) is list:
        return all(_scalar(a) for a in args)
    return not (dataclasses.is_dataclass(tp) or typing.get_origin(tp) in (tuple, frozenset))


@cache
def decoder(tp: Any) -> Decode | None:
    """How to turn a parsed JSON value into `tp` (None: it already is one). Understood: a frozen
    dataclass (from an object by field name, or from an array by position), tuple[X, ...],
    tuple[X, Y], frozenset[X] and list[X] (JSON null: empty), X | None, int (from a JSON string too:
    an oid), float (from a JSON integer too), and other scalars as they are."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        one = decoder(inner[0]) if len(inner) == 1 else None
        return None if one is None else (lambda v: None if v is None else one(v))
    if origin in (tuple, frozenset, list):
        return _collection(origin, args)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp)
    if tp is float:
        return float  # JSON renders an integral double as an integer (an epoch): digests tell 1 from 1.0
    return int if tp is int else None  # int(): JSON renders an oid as a string


def _collection(origin: type[Any], args: tuple[Any, ...]) -> Decode:
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        each = [decoder(a) for a in args]  # fixed size: one type per position
        return lambda v: tuple(x if d is None else d(x) for d, x in zip(each, v, strict=True))
    item = decoder(args[0]) if args else None
    if item is None:
        return lambda v: origin(v or ())
    return lambda v: origin(map(item, v or ()))


def _dataclass(cls: type[Any]) -> Decode:
    fields = _field_decoders(cls)
    order = list(fields.values())
    if all(d is None for d in order):  # the common case (an ACL entry by name): no call per value
        plain_object: Decode = lambda v: cls(**v) if type(v) is dict else cls(*v)  # noqa: E731
        return plain_object
    converted = [(i, d) for i, d in enumerate(order) if d is not None]

    def decode(v: Any) -> Any:
        if type(v) is dict:
            return cls(**{k: x if (d := fields.get(k)) is None else d(x) for k, x in v.items()})
        if type(v) is list:
            if len(v) > len(order):
                raise TypeError(f"{cls.__name__} from {len(v)} values")
            values = list(v)
            for i, d in converted:
                if i < len(values):
                    values[i] = d(values[i])
            return cls(*values)
        raise TypeError(f"{cls.__name__} from {type(v).__name__}")

    return decode
