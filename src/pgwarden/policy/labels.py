"""Label patterns (`[labels] pii = ["app.*.phone"]`): their shape, the labels a grant excepts, which columns
a label names; pure, read by the policy's validation and by the effective-access model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pgwarden.policy.names import LocatedError

if TYPE_CHECKING:
    from pgwarden.policy.model import DatabaseSpec


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
