"""The paths around the policy's exceptions: every way a grant's role still reaches a table or column
the grant excepts (what `check` reports as exception.path and `probe` tries)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pgwarden.access.model import COLUMN_PRIVILEGES
from pgwarden.access.paths import Access, Hop
from pgwarden.findings import display_name
from pgwarden.policy.model import GrantSpec, Policy
from pgwarden.policy.names import split_qualified
from pgwarden.profiles import defined
from pgwarden.scopes import PUBLIC_ROLE


@dataclass(frozen=True)
class Around:
    """`grant`'s role reaches `table` (its `column`; None: the whole table) by `path`, starting from
    `start` (the role, or PUBLIC), with `privileges`."""

    grant: GrantSpec
    table: str
    column: str | None
    start: str
    path: tuple[Hop, ...]
    privileges: tuple[str, ...]

    @property
    def target(self) -> str:
        return self.table if self.column is None else f"{self.table}.{display_name(self.column)}"

    def chain(self) -> str:
        return Access(self.table, "", self.column, self.start, "", self.path).chain()


def targets(policy: Policy, grant: GrantSpec) -> list[tuple[str, str | None]]:
    """(table as SQL text, column or None) of what `grant` excepts and no other grant of its role
    gives back (a role holds the union of its grants)."""
    return [(table, column) for table, column, _ in _targets(policy, grant)]


def _targets(policy: Policy, grant: GrantSpec) -> list[tuple[str, str | None, frozenset[str]]]:
    """targets(), each with what the policy's own grants to PUBLIC give there."""

    def given_back(schema: str, table: str, column: str | None) -> bool:
        return any(
            g is not grant
            and g.role == grant.role
            and g.covers_table(schema, table)
            and (column is None or column not in g.excluded_columns(schema, table))
            and (column is not None or not g.excluded_columns(schema, table))
            for g in policy.grants()
        )

    out: list[tuple[str, str | None, frozenset[str]]] = [
        (display_name(*split_qualified(t)), None, _public_gives(policy, *split_qualified(t), None))
        for t in grant.except_tables
        if not given_back(*split_qualified(t), None)
    ]
    for table, columns in grant.except_columns.items():
        schema, name = split_qualified(table)
        out += [
            (display_name(schema, name), c, _public_gives(policy, schema, name, c))
            for c in columns
            if not given_back(schema, name, c)
        ]
    return out


def _public_gives(policy: Policy, schema: str, table: str, column: str | None) -> frozenset[str]:
    """What the policy's own grants to PUBLIC give on the table (or column): every role holds it, so an
    exception cannot take it from one role, and reaching it is what the policy says."""
    profiles = defined(policy)
    out: set[str] = set()
    for g in policy.grants():
        if g.role != PUBLIC_ROLE or g.profile not in profiles:
            continue
        privileges = profiles[g.profile].on("table")
        if g.covers_table(schema, table) and (column is None or column not in g.excluded_columns(schema, table)):
            out |= privileges
        elif column is not None and column in g.columns.get(f"{schema}.{table}", ()):
            out |= privileges & set(COLUMN_PRIVILEGES)
    return frozenset(out)


def _own_grant(a: Access, role: str) -> bool:
    """The role's own grant on the excepted object: the plan's drift revokes it."""
    return a.role == role and len(a.path) == 1 and a.path[0].kind in ("grant", "column")


def paths_around(policy: Policy, accesses: Sequence[Access]) -> Iterator[Around]:
    """Every path by which a grant's role (or PUBLIC) reads or writes what the grant excepts, with
    the privileges the grant's profile would have given; one per (target, start, path)."""
    profiles = defined(policy)
    for grant in policy.grants():
        wanted = profiles[grant.profile].on("table") if grant.profile in profiles else frozenset()
        seen: dict[tuple[str, str | None, str, tuple[Hop, ...]], list[str]] = {}
        for table, column, public in _targets(policy, grant):
            judged = (wanted & set(COLUMN_PRIVILEGES) if column else wanted) - public
            for a in accesses:
                if a.object != table or a.role not in (grant.role, "PUBLIC") or a.privilege not in judged:
                    continue
                if (column is not None and a.column not in (column, None)) or _own_grant(a, grant.role):
                    continue
                seen.setdefault((table, column, a.role, a.path), []).append(a.privilege)
        for (table, column, start, path), privileges in seen.items():
            yield Around(grant, table, column, start, path, tuple(sorted(set(privileges))))
