"""What probe acts on: the managed schemas, the database, and every table, view, sequence and function in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgwarden.command_rows import ColumnTargetRow, TargetRow
from pgwarden.fetch import fetch
from pgwarden.findings import display_name

if TYPE_CHECKING:
    import psycopg

DEFAULT_MAX_OBJECTS = 200


@dataclass(frozen=True)
class Target:
    what: str  # relation | function | schema | database | column (name: the table, col: the column)
    schema: str
    name: str
    oid: int
    subkind: str  # relkind or prokind
    col: str | None
    argtypes: tuple[str, ...] = ()
    owned_by: str | None = None  # a sequence's table (serial, identity)

    @property
    def label(self) -> str:
        if self.what in ("schema", "database"):
            return f"{self.what} {self.name}"
        base = display_name(self.schema, self.name)
        if self.what == "column":
            return f"{base} (column {self.col})"
        return f"{base}({', '.join(self.argtypes)})" if self.what == "function" else base


@dataclass(frozen=True)
class Targets:
    schemas: tuple[str, ...]
    tables: tuple[Target, ...]  # relkind r, p: every DML action
    readables: tuple[Target, ...]  # views, materialized views, foreign tables: SELECT only
    sequences: tuple[Target, ...]
    functions: tuple[Target, ...]
    max_objects: int = DEFAULT_MAX_OBJECTS
    notes: tuple[str, ...] = field(default=())
    database: str = ""
    named: frozenset[tuple[str, str]] = frozenset()  # tables a grant names: DDL is tried on each too
    columns: tuple[Target, ...] = ()  # each column of the tables whose grants exclude columns

    def of(self, group: str) -> Sequence[Target]:
        """The targets of one group an action names (see actions.Action.on)."""
        if group == "schemas":
            return [Target("schema", s, s, 0, "", None) for s in self.schemas]
        if group == "database":
            return [Target("database", "", self.database, 0, "", None)]
        if group == "first-tables":
            # DDL on one table per schema (enough to prove ownership, and each takes an exclusive
            # lock) and on every table a grant names: its scope differs from its schema's.
            firsts = {tb.schema: tb for tb in reversed(self.tables)}
            chosen = [firsts[s] for s in self.schemas if s in firsts]
            return chosen + [t for t in self.tables if (t.schema, t.name) in self.named and t not in chosen]
        if group == "columns":
            return self.columns
        groups: dict[str, Sequence[Target]] = {
            "tables": self.tables,
            "readables": self.readables,
            "sequences": self.sequences,
            "functions": self.functions,
        }
        return groups[group]


def read_targets(
    conn: psycopg.Connection[Any],
    schemas: Sequence[str],
    max_objects: int,
    database: str = "",
    named: Sequence[tuple[str, str]] = (),
    column_tables: Sequence[tuple[str, str]] = (),
) -> Targets:
    """The managed schemas' objects; `named`: tables a grant names, `column_tables`: tables whose
    grants exclude columns (their columns become targets of their own)."""
    rows = fetch(conn, "probe_targets", TargetRow, {"schemas": list(schemas)})
    wanted = {"schemas": [s for s, _ in column_tables], "tables": [t for _, t in column_tables]}
    cols = fetch(conn, "probe_columns", ColumnTargetRow, wanted) if column_tables else []
    found = [
        Target(r.what, r.schema, r.name, r.oid, r.subkind, r.col, tuple(r.argtypes or ()), r.owned_by) for r in rows
    ]
    existing = {r.schema for r in rows}
    return Targets(
        tuple(schemas),
        tuple(t for t in found if t.what == "relation" and t.subkind in ("r", "p")),
        tuple(t for t in found if t.what == "relation" and t.subkind in ("v", "m", "f")),
        tuple(t for t in found if t.subkind == "S"),
        tuple(t for t in found if t.what == "function"),
        max_objects,
        tuple(f"schema {s} has no table, sequence or function to probe" for s in schemas if s not in existing),
        database,
        frozenset(named),
        tuple(Target("column", r.schema, r.name, r.oid, "r", r.col) for r in cols),
    )
