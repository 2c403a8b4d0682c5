"""Probe's table of actions: what each tries, on which targets, what the server is asked instead, who may."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby

from psycopg import sql

from pgwarden.plan import PROFILES
from pgwarden.policy import Policy
from pgwarden.probe.targets import Target

#: How to try an action on a target, given the probe's tag (a name nothing else uses); None: not here.
Statement = Callable[[Target, str], "sql.Composed | None"]


@dataclass(frozen=True)
class Action:
    """One row of the table. `kind` and `privilege` say, through the privilege profiles, which levels
    must be allowed to do it (no privilege: only ownership allows it); the owner may do everything."""

    name: str
    on: str  # the targets: schemas, database, first-tables, tables, readables, sequences, functions
    kind: str  # the profiles' object kind: database, schema, table, sequence, routine
    privilege: str | None
    statement: Statement | None  # None: never tried (it would change something rollback cannot undo)
    inquiry: str | None = None  # the server's privilege inquiry function, asked beyond --max-objects
    from_public: bool = False  # every role holds it through PUBLIC unless the hardening revokes it
    refused_warning: str | None = None  # a warning SQLSTATE meaning "done nothing" although it succeeded


def _ident(t: Target) -> sql.Identifier:
    return sql.Identifier(t.schema, t.name)


def _call(t: Target, tag: str) -> sql.Composed:
    # EXECUTE is checked when the executor initialises the call, which a false one-time filter then
    # never runs; arguments come from a materialized CTE so the planner cannot fold (and so call) it.
    args = [sql.SQL("NULL::{} AS {}").format(sql.SQL(ty), sql.Identifier(f"a{n}")) for n, ty in enumerate(t.argtypes)]
    cte = sql.SQL("SELECT {}").format(sql.SQL(", ").join(args)) if args else sql.SQL("SELECT")
    call = sql.SQL("{}({})").format(
        _ident(t), sql.SQL(", ").join(sql.Identifier("a", f"a{n}") for n in range(len(t.argtypes)))
    )
    return sql.SQL("WITH a AS MATERIALIZED ({}) SELECT {} FROM a WHERE false").format(cte, call)


def _update(t: Target, tag: str) -> sql.Composed | None:
    if t.col is None:
        return None
    return sql.SQL("UPDATE {} SET {} = DEFAULT WHERE false").format(_ident(t), sql.Identifier(t.col))


def _select(t: Target, tag: str) -> sql.Composed:
    return sql.SQL("SELECT 1 FROM {} WHERE false").format(_ident(t))


def _select_column(t: Target, tag: str) -> sql.Composed | None:
    if t.col is None:
        return None
    return sql.SQL("SELECT {} FROM {} WHERE false").format(sql.Identifier(t.col), _ident(t))


_TABLE = "has_table_privilege"
_SEQUENCE = "has_sequence_privilege"

#: In the order they are tried and shown. Statements touch no row and are rolled back; sequences are
#: never advanced: nextval (USAGE) and setval (UPDATE) are not transactional, so they are only asked.
TABLE: tuple[Action, ...] = (
    Action("connect", "connection", "database", "CONNECT", None),
    Action(
        "create-table",
        "schemas",
        "schema",
        "CREATE",
        lambda t, tag: sql.SQL("CREATE TABLE {} (id integer)").format(sql.Identifier(t.name, tag)),
    ),
    Action(
        "create-schema",
        "database",
        "database",
        "CREATE",
        lambda t, tag: sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(tag)),
    ),
    Action(
        "create-temp-table",
        "database",
        "database",
        "TEMPORARY",
        lambda t, tag: sql.SQL("CREATE TEMPORARY TABLE {} (id integer)").format(sql.Identifier(tag)),
        from_public=True,
    ),
    Action(
        "alter-table",
        "first-tables",
        "table",
        None,
        # RENAME needs ownership like any ALTER and works on every kind of table, partitions included
        # (ADD COLUMN is refused on a partition, whoever asks)
        lambda t, tag: sql.SQL("ALTER TABLE {} RENAME TO {}").format(_ident(t), sql.Identifier(tag)),
    ),
    Action(
        "drop-table", "first-tables", "table", None, lambda t, tag: sql.SQL("DROP TABLE {} CASCADE").format(_ident(t))
    ),
    Action(
        "truncate", "first-tables", "table", "TRUNCATE", lambda t, tag: sql.SQL("TRUNCATE {} CASCADE").format(_ident(t))
    ),
    # A role without the grant option gets only the warning "no privileges were granted" (01007):
    # that, not the ACL (PUBLIC may hold SELECT already), says whether it could grant.
    Action(
        "grant-to-public",
        "first-tables",
        "table",
        None,
        lambda t, tag: sql.SQL("GRANT SELECT ON TABLE {} TO PUBLIC").format(_ident(t)),
        refused_warning="01007",
    ),
    Action("select", "tables", "table", "SELECT", _select, _TABLE),
    Action(
        "insert",
        "tables",
        "table",
        "INSERT",
        lambda t, tag: sql.SQL("INSERT INTO {} SELECT WHERE false").format(_ident(t)),
        _TABLE,
    ),
    Action("update", "tables", "table", "UPDATE", _update, _TABLE),
    Action(
        "delete",
        "tables",
        "table",
        "DELETE",
        lambda t, tag: sql.SQL("DELETE FROM {} WHERE false").format(_ident(t)),
        _TABLE,
    ),
    # each column of a table whose grants exclude columns, alone: the excluded ones must be denied
    Action("select", "columns", "table", "SELECT", _select_column),
    Action("select", "readables", "table", "SELECT", _select, _TABLE),
    Action(
        "sequence-select",
        "sequences",
        "sequence",
        "SELECT",
        lambda t, tag: sql.SQL("SELECT last_value FROM {}").format(_ident(t)),
        _SEQUENCE,
    ),
    Action("sequence-usage", "sequences", "sequence", "USAGE", None, _SEQUENCE),
    Action("sequence-update", "sequences", "sequence", "UPDATE", None, _SEQUENCE),
    Action("execute", "functions", "routine", "EXECUTE", _call, "has_function_privilege"),
)

#: Action names in display order.
ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(a.name for a in TABLE))
_BY_NAME: Mapping[str, Action] = {a.name: a for a in reversed(TABLE)}
#: The row of each action name (the first, for a name tried on several target groups).
BY_NAME = _BY_NAME
#: Target groups with one target per object, bounded by --max-objects (beyond it: the inquiry).
BOUNDED = frozenset({"tables", "readables", "sequences", "functions"})


def stages() -> Iterator[tuple[str, list[Action]]]:
    """Consecutive actions on the same targets: each target gets all of them before the next one."""
    for group, actions in groupby(TABLE, key=lambda a: a.on):
        yield group, list(actions)


def _profile(level: str, kind: str) -> frozenset[str]:
    return PROFILES.get(level, {}).get(kind, frozenset())


def expected(policy: Policy, level: str, action: str) -> bool:
    """Whether a version 1 role of `level` may do `action` on every object (the profile's word).
    Probe itself asks `Rights.allows` (pgwarden.probe.rights), which knows scopes and exceptions."""
    if level == "owner":
        return True
    row = _BY_NAME[action]
    if row.from_public:
        return not policy.hardening.revoke_public_connect
    return row.privilege is not None and row.privilege in _profile(level, row.kind)
