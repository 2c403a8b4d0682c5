"""Labels: sensitive columns named by pattern in the policy (`[labels] pii = ["app.*.phone"]`), which
grants may except (`except_labels`) and which `review` and `report` put first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

# the patterns are the policy's (its validation checks them): matched here against the catalog's columns
from pgwarden.policy.labels import labels_of as labels_of
from pgwarden.policy.labels import parts as parts

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy.model import Policy


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
    from pgwarden.command_rows import LabelColumnRow
    from pgwarden.fetch import fetch  # here: `review` loads this module before it connects

    patterns = [_like(p) for ps in policy.labels.values() for p in ps]
    rows = fetch(
        conn, "label_columns", LabelColumnRow, {"schemas": list(policy.database.schemas), "patterns": patterns}
    )
    found = [(r.schema, r.table, r.column) for r in rows]
    return [c for c in found if labels_of(policy.labels, *c)]
