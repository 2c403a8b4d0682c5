"""Typed rows of the catalog queries that only commands other than `check` read, declared as in pgwarden.rows."""

# Apart from rows.py, which `check` imports whole: every frozen dataclass costs its import about 4
# million instructions (dataclasses compiles the methods it generates from source), and these eleven
# (report, probe, adopt, review, the retirement of roles and of leased logins) were ~44M of a check's
# ~1,760M at 10,000 tables.

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The report's two privilege queries (report.py).


@dataclass(frozen=True, slots=True)
class HeldCountRow:
    """queries/report_privileges.sql: on how many of a schema's objects of a kind a role (0: PUBLIC) holds a
    privilege, out of how many."""

    role: int
    schema: int
    kind: str
    privilege: str
    held: int
    total: int


@dataclass(frozen=True, slots=True)
class ScopeHeldRow:
    """queries/report_scope_privileges.sql: whether a role (0: PUBLIC) holds a database or schema privilege."""

    role: int
    kind: Literal["database", "schema"]
    name: str
    privilege: str
    held: bool


# What probe acts on (probe/targets.py).


@dataclass(frozen=True, slots=True)
class TargetRow:
    """queries/probe_targets.sql: a relation or function of the managed schemas."""

    what: str  # relation, function
    schema: str
    name: str
    oid: int
    subkind: str
    col: str | None
    argtypes: list[str] | None
    owned_by: str | None


@dataclass(frozen=True, slots=True)
class ColumnTargetRow:
    """queries/probe_columns.sql: a column of a table whose grants exclude columns."""

    schema: str
    name: str
    oid: int
    col: str


# adopt.py, retirement.py, access review and labels, lease_retirement.py.


@dataclass(frozen=True, slots=True)
class OwnedObjectRow:
    """queries/adopt_objects.sql: an object the role owns, with the words to name it in SQL."""

    catalog: str
    objid: int
    kind: str
    schema: str | None
    name: str
    args: str | None
    action: str  # alter, report
    ord: int  # the order ALTER ... OWNER runs in


@dataclass(frozen=True, slots=True)
class DefaultGrantRow:
    """queries/adopt_default_acls.sql: one privilege of the role's default privileges (grantee None: PUBLIC)."""

    schema: str | None
    objtype: str
    grantee: str | None
    privilege: str
    grantable: bool


@dataclass(frozen=True, slots=True)
class HoldingRow:
    """queries/retire_holdings.sql: how many objects of a catalog a retired role owns or holds in a database."""

    role: int
    database: str
    allows_connections: bool
    may_connect: bool
    catalog: str
    deptype: str
    count: int


@dataclass(frozen=True, slots=True)
class SessionCountRow:
    """queries/retire_sessions.sql: the sessions a role has open."""

    role: str
    sessions: int


@dataclass(frozen=True, slots=True)
class ReviewServerRow:
    """queries/review_server.sql: what identifies the server in an access review."""

    system_identifier: str | None
    version: str
    version_num: int


@dataclass(frozen=True, slots=True)
class LabelColumnRow:
    """queries/label_columns.sql: a column of the managed schemas that a label's pattern may match."""

    schema: str
    table: str
    column: str


@dataclass(frozen=True, slots=True)
class ExpiredRow:
    """queries/lease_expired.sql: a leased login past its VALID UNTIL."""

    role: int
    name: str
    superuser: bool
