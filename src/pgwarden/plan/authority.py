"""What the connected admin may do, from its attributes and memberships; planners update it in order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pgwarden.caps import Capabilities
from pgwarden.snapshot import Snapshot


@dataclass
class Authority:
    """What the connected admin may do, from its attributes and memberships."""

    name: str
    superuser: bool
    createrole: bool
    createdb: bool
    caps: Capabilities
    privs_of: set[str] = field(default_factory=set)
    member_of: set[str] = field(default_factory=set)
    can_set: set[str] = field(default_factory=set)
    admin_of: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, snap: Snapshot) -> Authority:
        me = snap.server
        auth = cls(me.current_role, me.is_superuser, me.can_createrole, me.can_createdb, snap.caps)
        names = {oid: r.name for oid, r in snap.roles.items()}
        edges: dict[int, list[tuple[int, bool, bool]]] = defaultdict(list)
        for m in snap.memberships:
            member = snap.roles.get(m.member)
            if snap.caps.membership_options:
                inherit = bool(m.inherit)
                can_set = bool(m.set)
            else:
                inherit = bool(member and member.inherit)
                can_set = True
            edges[m.member].append((m.role, inherit, can_set))
            if m.member == me.current_role_oid and m.admin:
                auth.admin_of.add(names.get(m.role, str(m.role)))

        def closure(pick: str) -> set[str]:
            seen = {me.current_role_oid}
            todo = [me.current_role_oid]
            while todo:
                current = todo.pop()
                for role, inherit, can_set in edges.get(current, ()):
                    ok = {"member": True, "inherit": inherit, "set": can_set}[pick]
                    if ok and role not in seen:
                        seen.add(role)
                        todo.append(role)
            return {names.get(o, str(o)) for o in seen}

        auth.member_of = closure("member")
        auth.privs_of = closure("inherit")
        auth.can_set = closure("set")
        return auth

    def gain(self, role: str) -> None:
        """A planned GRANT role TO admin WITH INHERIT, SET."""
        self.member_of.add(role)
        self.privs_of.add(role)
        self.can_set.add(role)

    def acts_as(self, role: str) -> bool:
        return self.superuser or role in self.privs_of

    def may_set(self, role: str) -> bool:
        return self.superuser or role in self.can_set

    def may_alter_role(self, role: str, exists: bool) -> bool:
        if self.superuser:
            return True
        if not self.createrole:
            return False
        return not exists or not self.caps.membership_options or role in self.admin_of
