"""Labels: sensitive columns named by pattern in the policy (`[labels] pii = ["app.*.phone"]`), which
grants may except (`except_labels`) and which `review` and `report` put first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from pgwarden.policy.names import LocatedError

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy.model import DatabaseSpec, Policy


def parts(pattern: str) -> tuple[str, str, str] | None:
    """schema.table.column, each part a name or a pattern (`*` any name, `?` one character)."""
    split = pattern.split(".")
    if len(split) != 3 or not all(split):
        return None
    return split[0], split[1], split[2]


def check_labels(labels: Mapping[str, Sequence[str]], databases: Sequence[DatabaseSpec]) -> None:
    """Each pattern is schema.table.column in a managed schema; each `except_labels` names a label.
    Errors are LocatedError at the key that is wrong."""
    schemas = {s for db in databases for s in db.schemas}
    for name, patterns in labels.items():
        if not patterns:
            raise LocatedError(f"label {name!r}: list at least one column (schema.table.column)", "labels", name)
        for index, pattern in enumerate(patterns):
            split = parts(pattern)
            if split is None:
                raise LocatedError(
                    f"{pattern!r} is not schema.table.column (a part may be * or contain *)", "labels", name, index
                )
            if not any(fnmatchcase(s, split[0]) for s in schemas):
                raise LocatedError(
                    f"{pattern!r}: schema {split[0]!r} is not a managed schema ({', '.join(sorted(schemas))})",
                    "labels",
                    name,
                    index,
                )
    for d_index, db in enumerate(databases):
        for g_index, grant in enumerate(db.grants):
            for l_index, label in enumerate(grant.except_labels):
                if label not in labels:
                    known = ", ".join(sorted(labels)) or "none"
                    raise LocatedError(
                        f"unknown label {label!r} (defined in [labels]: {known})",
                        "databases",
                        d_index,
                        "grants",
                        g_index,
                        "except_labels",
                        l_index,
                    )


def labels_of(labels: Mapping[str, Sequence[str]], schema: str, table: str, column: str) -> tuple[str, ...]:
    """The labels whose patterns match schema.table.column."""
    found = []
    for name, patterns in labels.items():
        for pattern in patterns:
            split = parts(pattern)
            if split and all(fnmatchcase(v, p) for v, p in zip((schema, table, column), split, strict=True)):
                found.append(name)
                break
    return tuple(found)


def resolve(policy: Policy, columns: Iterable[tuple[str, str, str]]) -> Policy:
    """The policy with each grant's `except_labels` written out as `except_columns` for the columns
    that exist now (so a new column that matches a label is excepted as soon as it appears)."""
    columns = list(columns)
    if not any(g.except_labels for g in policy.grants()):
        return policy
    grants = []
    for grant in policy.database.grants:
        excepted = {k: list(v) for k, v in grant.except_columns.items()}
        for schema, table, column in columns:
            hits = set(labels_of(policy.labels, schema, table, column)) & set(grant.except_labels)
            if hits and grant.covers_table(schema, table):
                names = excepted.setdefault(f"{schema}.{table}", [])
                if column not in names:
                    names.append(column)
        grants.append(grant.model_copy(update={"except_columns": {k: tuple(v) for k, v in excepted.items()}}))
    database = policy.database.model_copy(update={"grants": tuple(grants)})
    return policy.model_copy(update={"database": database})


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def read_columns(conn: psycopg.Connection[Any], policy: Policy) -> list[tuple[str, str, str]]:
    """The columns of the managed schemas that a label matches (one query; narrowed by LIKE, then
    matched exactly here)."""
    from pgwarden.fetch import fetch  # here: the policy's validation imports this module, without a server
    from pgwarden.rows import LabelColumnRow

    patterns = [_like(p) for ps in policy.labels.values() for p in ps]
    rows = fetch(
        conn, "label_columns", LabelColumnRow, {"schemas": list(policy.database.schemas), "patterns": patterns}
    )
    found = [(r.schema, r.table, r.column) for r in rows]
    return [c for c in found if labels_of(policy.labels, *c)]
