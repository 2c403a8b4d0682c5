"""The effective-access model: from roles, memberships and the catalog facts, every path by which
each role can read or write each relation, column, sequence and routine. Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from pgwarden.access.facts import Facts, Relation, Routine
from pgwarden.access.paths import Access, Hop, Path
from pgwarden.access.roles import Chain, chains, inherited
from pgwarden.findings import display_name
from pgwarden.snapshot import Acl, Membership, Role

#: The privileges that read or write, per relkind ('S' sequences) and for routines.
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
#: Predefined roles that hold a privilege on every relation (PostgreSQL 14+).
PREDEFINED = {
    "pg_read_all_data": frozenset({"SELECT", "USAGE"}),
    "pg_write_all_data": frozenset({"INSERT", "UPDATE", "DELETE", "USAGE"}),
}
RELKINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}
#: What a privilege on a derived object gives on what it exposes, per kind of hop.
CARRIED = {
    "view": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "parent": ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"),
    "matview": ("SELECT",),
}
RULE_EVENTS = {"1": "SELECT", "2": "UPDATE", "3": "INSERT", "4": "DELETE"}
TRIGGER_EVENTS = {4: "INSERT", 8: "DELETE", 16: "UPDATE", 32: "TRUNCATE"}
#: Exposures followed through at most this many derived objects (a view over a view over ...).
MAX_DERIVED = 4


def privileges_of(subkind: str) -> tuple[str, ...]:
    return SEQUENCE_PRIVILEGES if subkind == "S" else TABLE_PRIVILEGES


@dataclass
class Model:
    """Roles, memberships and facts; `accesses()` is every path, computed once."""

    roles: Mapping[int, Role]
    memberships: Sequence[Membership]
    facts: Facts
    membership_options: bool
    _cache: dict[str, list[Access]] = field(default_factory=dict)
    _usage: dict[tuple[int, int, Acl], bool] = field(default_factory=dict)

    @cached_property
    def chains(self) -> dict[int, list[Chain]]:
        return chains(self.roles, self.memberships, self.membership_options)

    @cached_property
    def inherited(self) -> dict[int, frozenset[int]]:
        return inherited(self.chains)

    @cached_property
    def reaching(self) -> dict[int, list[Chain]]:
        """holder -> the chains that end at it."""
        out: dict[int, list[Chain]] = {}
        for cs in self.chains.values():
            for c in cs:
                out.setdefault(c.holder, []).append(c)
        return out

    @cached_property
    def predefined(self) -> dict[int, frozenset[str]]:
        return {oid: PREDEFINED[r.name] for oid, r in self.roles.items() if r.name in PREDEFINED}

    def name(self, oid: int) -> str:
        if oid == 0:
            return "PUBLIC"
        role = self.roles.get(oid)
        return role.name if role else str(oid)

    # --- who holds a privilege, and who reaches the holders -------------------------------------

    def _holders(self, ident: str, owner: int, acl: Acl, privilege: str, relation: bool) -> list[tuple[int, Hop]]:
        out = [(g.grantee, Hop("grant", ident, privilege)) for g in acl if g.privilege == privilege]
        out.append((owner, Hop("owner", ident)))
        if relation:
            out += [(oid, Hop("predefined", ident, privilege)) for oid, p in self.predefined.items() if privilege in p]
        return out

    def _uses_schema(self, acting: int, owner: int, acl: Acl) -> bool:
        """Whether a session as `acting` may look into a schema (USAGE by any inherited role);
        remembered, since every object of a schema asks the same question."""
        key = (acting, owner, acl)
        if key not in self._usage:
            self._usage[key] = self._usage_of(acting, owner, acl)
        return self._usage[key]

    def _usage_of(self, acting: int, owner: int, acl: Acl) -> bool:
        role = self.roles.get(acting)
        if role is not None and role.superuser:
            return True
        held = self.inherited.get(acting, frozenset({acting})) | {0}
        users = {g.grantee for g in acl if g.privilege == "USAGE"} | {owner} | set(self.predefined)
        return bool(held & users)

    def _reach(self, holders: list[tuple[int, Hop]], schema_owner: int, schema_acl: Acl) -> Iterator[tuple[str, Path]]:
        """(role, path) for every role that reaches one of `holders` (PUBLIC once, as itself), and
        every superuser (or role that can become one)."""
        for holder, hop in holders:
            if holder == 0 and self._uses_schema(0, schema_owner, schema_acl):
                yield "PUBLIC", (hop,)
                continue
            if holder == 0:  # PUBLIC cannot look into the schema: each role that can holds it
                for oid, role in self.roles.items():
                    if not role.superuser and self._uses_schema(oid, schema_owner, schema_acl):
                        yield role.name, (Hop("public", "PUBLIC"), hop)
                continue
            for c in self.reaching.get(holder, ()):
                if self._uses_schema(c.acting, schema_owner, schema_acl):
                    yield self.name(c.start), (*c.hops, hop)
        for cs in self.superuser_chains.values():
            for c in cs:
                yield self.name(c.start), (*c.hops, Hop("superuser", self.name(c.acting)))

    @cached_property
    def superuser_chains(self) -> dict[int, list[Chain]]:
        """The chains whose session identity is a superuser (a superuser's own empty chain included)."""
        out: dict[int, list[Chain]] = {}
        for start, cs in self.chains.items():
            found = [c for c in cs if self.roles[c.acting].superuser and c.acting == c.holder]
            if found:
                out[start] = found
        return out

    def can(self, role: int, relation: Relation, privilege: str) -> bool:
        """Whether `role` itself (with what it inherits) holds `privilege` on `relation` (what a view
        or definer routine owned by it runs with)."""
        if self.roles.get(role) is not None and self.roles[role].superuser:
            return True
        held = self.inherited.get(role, frozenset({role})) | {0}
        holders = self._holders("", relation.owner, relation.acl, privilege, True)
        return any(h in held for h, _ in holders)

    # --- every access -----------------------------------------------------------------------------

    def direct(self) -> list[Access]:
        """Access by grants, column grants, ownership, predefined roles, PUBLIC and superuser."""
        out: list[Access] = []
        for rel in self.facts.relations.values():
            kind = RELKINDS.get(rel.subkind, rel.subkind)
            for privilege in privileges_of(rel.subkind):
                holders = self._holders(rel.ident, rel.owner, rel.acl, privilege, True)
                for role, path in self._reach(holders, rel.schema_owner, rel.schema_acl):
                    out.append(Access(rel.ident, kind, None, role, privilege, path))
            for col in rel.columns:
                for privilege in COLUMN_PRIVILEGES:
                    held = [
                        (g.grantee, Hop("column", f"{rel.ident}.{display_name(col.name)}", privilege))
                        for g in col.acl
                        if g.privilege == privilege
                    ]
                    for role, path in self._reach(held, rel.schema_owner, rel.schema_acl) if held else ():
                        if path[-1].kind == "column":
                            out.append(Access(rel.ident, kind, col.name, role, privilege, path))
        for routine in self.facts.routines:
            holders = self._holders(routine.ident, routine.owner, routine.acl, "EXECUTE", False)
            for role, path in self._reach(holders, routine.schema_owner, routine.schema_acl):
                out.append(Access(routine.ident, "routine", None, role, "EXECUTE", path))
        return out

    def accesses(self) -> list[Access]:
        """Every path, derived ones included, without repeats, sorted."""
        if "all" not in self._cache:
            direct = self.direct()
            found = set(direct)
            frontier = direct
            for _ in range(MAX_DERIVED):
                frontier = [a for a in self._exposed(frontier) if a not in found]
                if not frontier:
                    break
                found.update(frontier)
            self._cache["all"] = sorted(found, key=Access.key)
        return self._cache["all"]

    def _exposed(self, known: list[Access]) -> Iterator[Access]:
        """One more derived hop over `known`: what views, rules, parents and definer routines (and
        the triggers that run them) expose."""
        by_object: dict[str, list[Access]] = {}
        for a in known:
            if a.column is None:
                by_object.setdefault(a.object, []).append(a)
        rels = self.facts.relations
        for d in self.facts.derived:
            via, base = rels.get(d.via), rels.get(d.base)
            if via is None or base is None or (d.kind == "view" and via.invoker):
                continue
            column = next((c.name for c in base.columns if c.num == d.column), None) if d.column else None
            carried = (RULE_EVENTS.get(d.event or "", ""),) if d.kind == "rule" else CARRIED[d.kind]
            for a in by_object.get(via.ident, ()):
                if a.privilege not in carried or any(h.name == base.ident for h in a.path):
                    continue
                if d.kind != "parent" and not self.can(via.owner, base, a.privilege):
                    continue  # the owner's rights do not reach it: the view fails
                hop = Hop(d.kind, via.ident, base.ident if column is None else f"{base.ident}.{display_name(column)}")
                yield Access(
                    base.ident, RELKINDS.get(base.subkind, base.subkind), column, a.role, a.privilege, (*a.path, hop)
                )
        for routine in self.facts.routines:
            if routine.definer and routine.references:
                yield from self._definer(routine, by_object)

    def _definer(self, routine: Routine, by_object: Mapping[str, list[Access]]) -> Iterator[Access]:
        """Who runs `routine` (EXECUTE, or a write that fires a trigger) reaches what it references
        with its owner's rights: reported as SELECT, what a routine that names a table can at least do."""
        rels = self.facts.relations
        runs: list[tuple[Access, Hop]] = []
        for a in by_object.get(routine.ident, ()):
            if a.privilege == "EXECUTE":
                runs.append((a, Hop("routine", routine.ident, "")))
        for relid, tgtype in routine.triggers:
            table = rels.get(relid)
            events = {p for bit, p in TRIGGER_EVENTS.items() if tgtype & bit}
            for a in by_object.get(table.ident, ()) if table else ():
                if a.privilege in events:
                    runs.append(
                        (a, Hop("trigger", f"{table.ident if table else relid} ({a.privilege})", routine.ident))
                    )
        for relid, num in routine.references:
            base = rels.get(relid)
            if base is None or not self.can(routine.owner, base, "SELECT"):
                continue
            column = next((c.name for c in base.columns if c.num == num), None) if num else None
            target = base.ident if column is None else f"{base.ident}.{display_name(column)}"
            for a, hop in runs:
                if any(h.name == base.ident for h in a.path):
                    continue
                detail = f"{target} as {self.name(routine.owner)}"
                step = Hop(hop.kind, hop.name, f"{hop.detail} → {detail}" if hop.detail else detail)
                kind = RELKINDS.get(base.subkind, base.subkind)
                yield Access(base.ident, kind, column, a.role, "SELECT", (*a.path, step))


def build(roles: Mapping[int, Role], memberships: Sequence[Membership], facts: Facts, options: bool) -> Model:
    return Model(roles, memberships, facts, options)
