"""What each role must hold on each object of one database: the policy's grants (profile x scope,
minus exceptions) evaluated per role, kind, schema, object and column. Pure.

plan diffs the catalogs against it, probe derives what each role must be allowed to do from it,
report compares what is held with it. A role holds the union of its grants; a column exception
removes the column-capable privileges (SELECT, INSERT, UPDATE, REFERENCES) of its grant from the
table and gives them back on every other column, one column-level grant each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from pgwarden import bookkeeping
from pgwarden.policy import GrantSpec, Policy, split_qualified
from pgwarden.profiles import Profile, defined

#: How a grant names PUBLIC (the pseudo-role every role is a member of).
PUBLIC_ROLE = "PUBLIC"

#: Privileges PostgreSQL can grant on single columns.
COLUMN_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "REFERENCES"})

_NOTHING: frozenset[str] = frozenset()
_EXECUTE = frozenset({"EXECUTE"})
_MAINTAIN = frozenset({"MAINTAIN"})


@dataclass(frozen=True)
class ColumnRule:
    """A role's privileges on one table whose grant excludes columns."""

    table: frozenset[str]  # held on the whole table
    columns: frozenset[str]  # held on each column no grant of the role names (excepts or lists)
    excluded: frozenset[str]  # columns named by an exception or a `columns` list (see by_column)
    by_column: Mapping[str, frozenset[str]] = field(default_factory=dict)  # exact per excluded column


@dataclass(frozen=True)
class Scopes:
    """The grants of one database, by role."""

    grants: tuple[GrantSpec, ...]
    profiles: Mapping[str, Profile]
    schemas: tuple[str, ...]
    #: member -> ((group, inherit), ...) of the policy's people
    members: Mapping[str, tuple[tuple[str, bool], ...]] = field(default_factory=dict)
    #: migration bookkeeping: table names, and schemas whose every table is (pgwarden.bookkeeping)
    bookkeeping: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    #: role -> the materialized views (`schema.view`) it may refresh (pgwarden.refresh)
    refresh: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, policy: Policy) -> Scopes:
        from pgwarden import refresh

        members = {m.name: tuple((g.role, g.inherit) for g in m.member_of) for m in policy.members}
        books = (frozenset(bookkeeping.tables(policy)), frozenset(bookkeeping.schemas(policy)))
        views = refresh.views_by_role(policy)
        return cls(policy.grants(), defined(policy), policy.database.schemas, members, books, views)

    def refresh_routine_of(self, schema: str, routine: str | None) -> str | None:
        """The role whose refresh routine `routine` (`name(args)`) of `schema` is, if it is one: EXECUTE
        on it is that role's alone, whatever the profiles give on the schema's routines."""
        if not self.refresh or routine is None:
            return None
        from pgwarden.refresh import ARGS, routine_name

        for role, views in self.refresh.items():
            if routine == f"{routine_name(role)}({ARGS})" and any(split_qualified(v)[0] == schema for v in views):
                return role
        return None

    @cached_property
    def options(self) -> Scopes:
        """The grants' `grant_option` part as scopes of their own: what each role may keep WITH GRANT
        OPTION on each object, column, schema and database (each grant's profile narrowed to its list)."""
        grants: list[GrantSpec] = []
        profiles: dict[str, Profile] = {}
        for index, g in enumerate(self.grants):
            if not g.grant_option:
                continue
            keep = frozenset(g.grant_option)
            name = f"{g.profile}#{index}"
            base = self.profiles[g.profile]
            profiles[name] = Profile(name, {k: v & keep for k, v in base.grants.items()})
            database = None if g.database is None else tuple(p for p in g.database if p in keep)
            grants.append(g.model_copy(update={"profile": name, "database": database}))
        return Scopes(tuple(grants), profiles, self.schemas, {}, self.bookkeeping)

    def is_bookkeeping(self, schema: str, table: str) -> bool:
        return table in self.bookkeeping[0] or schema in self.bookkeeping[1]

    @property
    def holders(self) -> tuple[str, ...]:
        """Roles that hold a grant in this database, in the policy's order (PUBLIC apart)."""
        return tuple(dict.fromkeys(g.role for g in self.grants if g.role != PUBLIC_ROLE))

    def _of(self, role: str) -> tuple[GrantSpec, ...]:
        return self._by_role.get(role, ())

    @cached_property
    def _by_role(self) -> dict[str, tuple[GrantSpec, ...]]:
        """role -> its grants, in the policy's order: asked ~7,000 times a check at 100k tables."""
        out: dict[str, list[GrantSpec]] = {}
        for g in self.grants:
            out.setdefault(g.role, []).append(g)
        return {role: tuple(grants) for role, grants in out.items()}

    def _privs(self, grant: GrantSpec, kind_name: str) -> frozenset[str]:
        return self.profiles[grant.profile].on(kind_name)

    def anywhere(self, role: str, kind_name: str) -> frozenset[str]:
        """What any grant of `role` gives on objects of `kind_name` (its profiles' union)."""
        out: frozenset[str] = _NOTHING
        for g in self._of(role):
            out |= self._privs(g, kind_name)
        return out

    def database(self, role: str) -> frozenset[str]:
        """CONNECT from the role's profiles, or exactly what its grants' `database` keys list.
        PUBLIC's are the hardening switches'."""
        if role == PUBLIC_ROLE:
            return _NOTHING
        mine = self._of(role)
        said = [g.database for g in mine if g.database is not None]
        if said:
            return frozenset().union(*said)
        out: frozenset[str] = _NOTHING
        for g in mine:
            out |= self._privs(g, "database")
        return out

    def member_database(self, member: str) -> frozenset[str]:
        """The one privilege a member holds itself: CONNECT, where a group it does not inherit
        (`inherit = false`: it must SET ROLE first) holds it and none it inherits does. The check
        at login sees only the login's own and inherited privileges, so without it the member could
        never connect to SET ROLE; CONNECT reaches no data."""
        groups = self.members.get(member, ())
        if any(inherit and "CONNECT" in self.database(g) for g, inherit in groups):
            return _NOTHING
        if any(not inherit and "CONNECT" in self.database(g) for g, inherit in groups):
            return frozenset({"CONNECT"})
        return _NOTHING

    def schema(self, role: str, schema: str) -> frozenset[str]:
        out: frozenset[str] = _NOTHING
        if role == PUBLIC_ROLE:
            return out  # PUBLIC's USAGE is tolerated, never planned
        for g in self._of(role):
            if g.gives_usage(schema):
                out |= self._privs(g, "schema")
        return out

    def refreshed(self, schema: str, name: str) -> bool:
        """Whether some role may refresh the materialized view `schema.name` (its MAINTAIN grant is then
        the subject of rule refresh.missing too)."""
        return any(f"{schema}.{name}" in views for views in self.refresh.values())

    def detailed(self, schema: str) -> bool:
        """Whether some object of `schema` is treated apart (listed tables, exceptions, materialized
        views a role refreshes): its objects are then planned one by one, never with `ON ALL ... IN SCHEMA`."""
        return schema in self._detailed

    @cached_property
    def _detailed(self) -> frozenset[str]:
        """The schemas `detailed` is true of, found once: asked per object group (~1,100 times a check
        at 100k tables), each answer went through every grant's lists."""
        refreshed = {split_qualified(v)[0] for views in self.refresh.values() for v in views}
        return frozenset(refreshed.union(*(g.detailed_schemas for g in self.grants)))

    def objects(
        self, role: str, kind_name: str, schema: str, name: str | None = None, table: str | None = None
    ) -> frozenset[str]:
        """What `role` holds on an object of `kind_name` in `schema` (`name` None: any object of a
        schema that is not detailed; a routine's `name` is `name(args)`). On a table with excluded
        columns: the table-level part. A sequence that belongs to a `table` (serial, identity) goes
        with it: a grant on the table reaches the sequence too, unless the grant excepts the
        sequence by name, and listing the sequence itself works."""
        if kind_name == "routine" and (owner := self.refresh_routine_of(schema, name)) is not None:
            return _EXECUTE if role == owner else _NOTHING  # a refresh routine: its role's alone
        out: frozenset[str] = _NOTHING
        if kind_name == "table" and f"{schema}.{name}" in self.refresh.get(role, ()):
            out = _MAINTAIN  # a materialized view it refreshes (17+; plan leaves it out before)
        for g in self._of(role):
            privs = self._privs(g, kind_name)
            if privs and self._reaches(g, kind_name, schema, name, table):
                if kind_name == "table" and name is not None and g.excluded_columns(schema, name):
                    privs = privs - COLUMN_PRIVILEGES
                out |= privs
        if kind_name == "table" and name is not None and self.is_bookkeeping(schema, name):
            out &= bookkeeping.READ  # the migration history is the owner's to write
        if kind_name == "sequence" and (
            schema in self.bookkeeping[1] or (table and self.is_bookkeeping(schema, table))
        ):
            out &= bookkeeping.READ  # its sequence too: nextval/setval write the history's keys
        return out

    @staticmethod
    def _reaches(g: GrantSpec, kind_name: str, schema: str, name: str | None, table: str | None) -> bool:
        if name is None:
            return schema in g.schemas
        if kind_name == "routine":
            return g.covers_routine(schema, name)
        qualified = f"{schema}.{name}"
        if kind_name == "sequence" and table is not None:
            if qualified in g.tables:
                return True
            return g.covers_table(schema, table) and qualified not in g.except_tables
        return g.covers_table(schema, name)

    def defaults(self, role: str, kind_name: str, schema: str) -> frozenset[str]:
        """What `role` gets on objects created later in `schema` (grants on whole schemas, for the
        kinds of their `defaults`)."""
        out: frozenset[str] = _NOTHING
        for g in self._of(role):
            if schema in g.schemas and g.defaults_for(kind_name):
                out |= self._privs(g, kind_name)
        return out

    def global_defaults(self, role: str, kind_name: str) -> frozenset[str]:
        """What `role` gets on objects of `kind_name` the owner creates later in any schema."""
        out: frozenset[str] = _NOTHING
        for g in self._of(role):
            if kind_name in g.global_defaults:
                out |= self._privs(g, kind_name)
        return out

    def column_tables(self) -> tuple[tuple[str, str], ...]:
        """(schema, table) of every table some grant excludes or lists columns of."""
        names = dict.fromkeys(n for g in self.grants for n in (*g.except_columns, *g.columns))
        return tuple(tuple(n.partition(".")[::2]) for n in names)  # type: ignore[misc]

    def columns(self, role: str, schema: str, table: str) -> ColumnRule | None:
        """`role`'s column-level rule on a table that some grant of it excludes or lists columns of
        (None when its grants on the table are table-level only). A grant with `except_columns`
        reaches every column but those; one with `columns` only the columns it lists."""
        open_grants = [g for g in self._of(role) if g.covers_table(schema, table) and g.excluded_columns(schema, table)]
        listing = [g for g in self._of(role) if g.listed_columns(schema, table)]
        if not open_grants and not listing:
            return None
        whole = self.objects(role, "table", schema, table)

        def col(g: GrantSpec) -> frozenset[str]:
            return self._privs(g, "table") & COLUMN_PRIVILEGES

        columns = frozenset().union(*(col(g) for g in open_grants)) - whole
        named = frozenset().union(
            *(g.excluded_columns(schema, table) for g in open_grants),
            *(g.listed_columns(schema, table) for g in listing),
        )
        by_column = {
            c: frozenset().union(
                *(col(g) for g in open_grants if c not in g.excluded_columns(schema, table)),
                *(col(g) for g in listing if c in g.listed_columns(schema, table)),
            )
            - whole
            for c in named
        }
        return ColumnRule(whole, columns, named, by_column)

    def on_column(self, role: str, schema: str, table: str, column: str) -> frozenset[str]:
        """The column-level privileges `role` must hold on one column (beyond its table-level ones)."""
        rule = self.columns(role, schema, table)
        if rule is None:
            return _NOTHING
        return rule.by_column.get(column, rule.columns)
