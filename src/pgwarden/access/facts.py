"""The catalog facts of the effective-access model, read in one query (queries/access.sql)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgwarden.fetch import fetch
from pgwarden.rows import Acl

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy import Policy


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    num: int
    acl: Acl  # column privileges (empty: none of its own)


@dataclass(frozen=True, slots=True)
class Relation:
    """A table, view, materialized view, foreign table or sequence with what decides who reaches it."""

    oid: int
    schema: str
    name: str
    subkind: str  # relkind
    owner: int
    rls: bool
    invoker: bool  # a view with security_invoker (15+): it runs with its caller's rights
    acl: Acl
    schema_owner: int
    schema_acl: Acl
    columns: tuple[Column, ...]

    @property
    def ident(self) -> str:
        from pgwarden.findings import display_name

        return display_name(self.schema, self.name)


@dataclass(frozen=True, slots=True)
class Derived:
    """`via` exposes `base`'s rows (column `column`; 0: all of them): a view, materialized view or rule
    over it, or (kind `parent`) an inheritance parent or partitioned table whose queries read it."""

    via: int
    base: int
    column: int
    kind: str  # view, matview, rule, parent
    rule: str | None = None
    event: str | None = None  # rules: pg_rewrite.ev_type (1 SELECT, 2 UPDATE, 3 INSERT, 4 DELETE)


@dataclass(frozen=True, slots=True)
class Routine:
    oid: int
    schema: str
    name: str
    subkind: str
    args: str
    owner: int
    definer: bool
    acl: Acl
    schema_owner: int
    schema_acl: Acl
    references: tuple[tuple[int, int], ...]  # (relation, column; 0 all) a definer routine reads
    triggers: tuple[tuple[int, int], ...]  # (relation, tgtype) of the triggers that run it

    @property
    def ident(self) -> str:
        from pgwarden.findings import display_name

        return f"{display_name(self.schema, self.name)}({self.args})"


@dataclass(frozen=True)
class Facts:
    relations: Mapping[int, Relation]
    derived: tuple[Derived, ...]
    routines: tuple[Routine, ...]

    def column_of(self, ident: str) -> tuple[Relation, Column] | None:
        """The relation and column a column hop names (`app.customers.email`, as SQL text)."""
        from pgwarden.findings import display_name

        for rel in self.relations.values():
            if ident.startswith(rel.ident + "."):
                for col in rel.columns:
                    if f"{rel.ident}.{display_name(col.name)}" == ident:
                        return rel, col
        return None


@dataclass(frozen=True, slots=True)
class AccessRow:
    """queries/access.sql: the access model's facts, decoded by fetch into the values above."""

    derived: tuple[Derived, ...]
    relations: tuple[Relation, ...]
    routines: tuple[Routine, ...]


def parse(row: AccessRow) -> Facts:
    """The query's one row as values."""
    return Facts({r.oid: r for r in row.relations}, row.derived, row.routines)


def read_facts(
    conn: psycopg.Connection[Any], schemas: Sequence[str], start: Sequence[tuple[str, str]] | None = None
) -> Facts:
    """The facts for the managed `schemas` (start None), or for the tables `start` (schema, table)
    and what is built over them: one statement either way."""
    params = {
        "schemas": list(schemas),
        "start": None if start is None else json.dumps([{"s": s, "t": t} for s, t in start]),
    }
    return parse(fetch(conn, "access", AccessRow, params)[0])


def read_exception_facts(conn: psycopg.Connection[Any], policy: Policy) -> Facts | None:
    """The facts `check` needs to judge the exceptions' paths: one statement, none when nothing is excepted."""
    tables = policy.excepted_tables()
    return read_facts(conn, policy.database.schemas, tables) if tables else None
