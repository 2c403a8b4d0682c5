"""A database's `expected`: the names a migration will create, which must be names its schemas and grants use."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from pgwarden.policy.names import LocatedError

if TYPE_CHECKING:
    from pgwarden.policy.model import DatabaseSpec


def policy_names(db: DatabaseSpec) -> set[str]:
    """Every schema, table, routine and column name the database's schemas and grants use, as
    written (a column as schema.table.column): what `expected` may list."""
    names = set(db.schemas)
    for grant in db.grants:
        for key in ("tables", "except_tables", "routines", "except_routines"):
            names.update(getattr(grant, key, ()))  # routines: with the keys that say any database exactly
        for key in ("except_columns", "columns"):
            listed: dict[str, tuple[str, ...]] = getattr(grant, key, {})
            names.update(listed)
            names.update(f"{table}.{column}" for table, columns in listed.items() for column in columns)
    for entry in getattr(db, "refresh", ()):
        names.update(entry.views)  # materialized views a role may refresh
    return names


def check_expected(db: DatabaseSpec) -> None:
    """A name in `expected` that the database's schemas and grants do not use is a typo of the file."""
    usable = policy_names(db)
    for index, name in enumerate(db.expected):
        if name not in usable:
            close = difflib.get_close_matches(name, sorted(usable), n=1)
            raise LocatedError(
                f"{name!r} is not a name this database's schemas or grants use"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + ": expected lists schemas, tables (schema.table) and columns (schema.table.column) "
                "named elsewhere in the file",
                "expected",
                index,
            )
