"""What each identity probe acts as must be allowed to do, from the policy's Scopes (pure)."""

# An access role holds its own grants; a member (a person) holds the grants of the groups it
# inherits from, and after `SET ROLE group` exactly that group's; the owner may do everything.

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pgwarden.kinds import kind
from pgwarden.policy import AccessSpec, MemberSpec, Policy
from pgwarden.scopes import PUBLIC_ROLE, Scopes

if TYPE_CHECKING:
    from pgwarden.probe.actions import Action
    from pgwarden.probe.targets import Target

_NOTHING: frozenset[str] = frozenset()
#: Privileges a statement naming no column (`SELECT 1 FROM t`, `INSERT ... SELECT`) needs on the
#: table or on any one column: PostgreSQL accepts either (ACLMASK_ANY in ExecCheckPermissions).
_ANY_COLUMN = frozenset({"SELECT", "INSERT"})


@dataclass(frozen=True)
class Rights:
    """The grants of `holders` in one database (union), or everything for the owner."""

    scopes: Scopes
    holders: tuple[str, ...]
    owner: bool = False
    public: bool = False  # PUBLIC keeps CONNECT and TEMPORARY (the hardening is switched off)
    own: frozenset[str] = _NOTHING  # a member's own database privileges (Scopes.member_database)
    public_usage: frozenset[str] = _NOTHING  # managed schemas where PUBLIC holds USAGE (read by probe)

    @classmethod
    def of(cls, policy: Policy, *holders: str, owner: bool = False, scopes: Scopes | None = None) -> Rights:
        return cls(scopes or Scopes.of(policy), holders, owner, not policy.hardening.revoke_public_connect)

    def database(self) -> frozenset[str]:
        """Held on the database: the holders' grants, and a member's own CONNECT."""
        return self.union(self.scopes.database) | self.own

    def uses_schema(self, schema: str) -> bool:
        """USAGE on `schema`: by the holders' grants, or PUBLIC's where the database gives it."""
        return schema in self.public_usage or "USAGE" in self.union(lambda r: self.scopes.schema(r, schema))

    def union(self, each: Callable[[str], frozenset[str]]) -> frozenset[str]:
        out = _NOTHING
        for role in (*self.holders, PUBLIC_ROLE):  # what PUBLIC is granted, every role holds
            out |= each(role)
        return out

    def table(self, schema: str, name: str) -> frozenset[str]:
        """Held on the whole table (or view)."""
        return self.union(lambda r: self.scopes.objects(r, "table", schema, name))

    def column(self, schema: str, table: str, column: str) -> frozenset[str]:
        """Held on one column: the table's privileges and the column-level ones."""
        return self.table(schema, table) | self.union(lambda r: self.scopes.on_column(r, schema, table, column))

    def on_some_column(self, schema: str, table: str) -> frozenset[str]:
        """Column-level privileges held on at least one column of a table with excluded columns."""
        out = _NOTHING
        for role in (*self.holders, PUBLIC_ROLE):
            rule = self.scopes.columns(role, schema, table)
            if rule is not None:
                out |= rule.columns.union(*rule.by_column.values())
        return out

    def allows(self, action: Action, target: Target | None, *, inquiry: bool = False) -> bool:
        """Whether the policy says this identity may do `action` on `target` (None: the database).
        `inquiry`: the server's has_*_privilege function is asked, which sees table-level grants only."""
        if self.owner:
            return True
        if action.from_public:  # TEMPORARY: PUBLIC's (the hardening), or the role's own (`database`)
            return self.public or (action.kind == "database" and action.privilege in self.database())
        privilege = action.privilege
        if privilege is None:  # only ownership allows it
            return False
        if action.kind == "database":
            held = self.database()
            return privilege in held or (self.public and privilege == "CONNECT")
        if target is None:
            return False
        if action.kind not in ("schema", "sequence") and not self.uses_schema(target.schema):
            # grants on objects of a schema it may not use (usage = false) reach nothing by name;
            # a sequence is tried by its oid (nextval(oid)), which no schema lookup stands before
            return False
        if action.kind == "schema":
            return privilege in self.union(lambda r: self.scopes.schema(r, target.name))
        if action.kind == "table":
            return self._allows_on_table(privilege, target, inquiry)
        # any other kind: named as the scopes name it (a routine with its arguments, a sequence with its table)
        args = ", ".join(target.argtypes) if kind(action.kind).signed else target.owned_by
        name, table = kind(action.kind).scope_name(target.name, args)
        return privilege in self.union(lambda r: self.scopes.objects(r, action.kind, target.schema, name, table))

    def _allows_on_table(self, privilege: str, target: Target, inquiry: bool) -> bool:
        """A table's privilege: on the column tried, the table, or (not for an inquiry) some column."""
        if target.what == "column" and target.col is not None:
            return privilege in self.column(target.schema, target.name, target.col)
        if privilege in self.table(target.schema, target.name):
            return True
        if inquiry:
            return False
        if privilege in _ANY_COLUMN and privilege in self.on_some_column(target.schema, target.name):
            return True
        # UPDATE ... SET col: the column's privilege is enough
        return (
            privilege == "UPDATE"
            and target.col is not None
            and privilege in self.column(target.schema, target.name, target.col)
        )


def inherits(member: MemberSpec | AccessSpec, group: str, version: int) -> bool:
    """Whether `member` holds `group`'s privileges without SET ROLE. PostgreSQL 16+: the membership's
    INHERIT option; 14-15 have only the role's INHERIT attribute, which pgwarden sets unless every
    membership of the member says `inherit = false`."""
    groups = member.member_of if isinstance(member, MemberSpec) else member.also_member_of
    if version >= 160000:
        return any(m.role == group and m.inherit for m in groups)
    if not isinstance(member, MemberSpec):  # an access role's INHERIT attribute is left as it is
        return any(m.role == group for m in groups)
    return any(m.inherit for m in groups) and any(m.role == group for m in groups)


def may_set(member: MemberSpec | AccessSpec, group: str, version: int) -> bool:
    """Whether `member` may `SET ROLE group`: 16+'s SET option; before 16 every member may."""
    groups = member.member_of if isinstance(member, MemberSpec) else member.also_member_of
    return version < 160000 or any(m.role == group and m.set for m in groups)


def named_tables(policy: Policy) -> tuple[tuple[str, str], ...]:
    """(schema, table) of every table a grant names (tables, except_tables, except_columns)."""
    names: Iterable[str] = (n for g in policy.grants() for n in (*g.tables, *g.except_tables, *g.except_columns))
    return tuple(tuple(n.partition(".")[::2]) for n in dict.fromkeys(names))  # type: ignore[misc]


#: What "writing" means for a role: changing rows of some table.
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE"})


def may_write(scopes: Scopes, role: str) -> bool:
    """Whether any grant of `role` lets it change rows of some table of the database."""
    return bool(scopes.anywhere(role, "table") & WRITES)


def reads_only(scopes: Scopes, role: str) -> bool:
    """Whether `role` holds grants that read tables and none that write them."""
    held = scopes.anywhere(role, "table")
    return "SELECT" in held and not held & WRITES


def held_on(
    rights: Rights, kind_name: str, schema: str, name: str | None = None, table: str | None = None
) -> frozenset[str]:
    """What `rights` holds on an object of `kind_name` (table-level; routines by schema; a
    sequence's `table` when it belongs to one)."""
    if rights.owner:
        raise ValueError("the owner holds everything: ask the catalogs")
    if kind_name == "routine":
        name = None
    return rights.union(lambda r: rights.scopes.objects(r, kind_name, schema, name, table))


def member_rights(policy: Policy, member: MemberSpec, version: int, scopes: Scopes | None = None) -> Rights:
    """What a member holds without SET ROLE: the grants of the groups it inherits from."""
    held = [m.role for m in member.member_of if inherits(member, m.role, version)]
    rights = Rights.of(policy, *held, scopes=scopes)
    return replace(rights, own=rights.scopes.member_database(member.name))
