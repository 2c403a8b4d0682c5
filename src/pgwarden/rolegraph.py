"""Who can become whom: the role graph of a report and the paths from each role to anything powerful."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgwarden.policy import Policy
    from pgwarden.snapshot import Snapshot

#: Predefined roles that reach outside the database's privilege system (files, programs, every row, signals).
POWERFUL_PREDEFINED = (
    "pg_execute_server_program",
    "pg_write_server_files",
    "pg_read_server_files",
    "pg_write_all_data",
    "pg_read_all_data",
    "pg_signal_backend",
)


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # owner | readwrite | readonly | access | group | member | deploy | superuser | predefined | other
    login: bool
    powerful: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "login": self.login, "powerful": self.powerful}


@dataclass(frozen=True)
class Edge:
    """`member` is a member of `role`; inherit: gets its privileges; set: may SET ROLE; admin: may grant it
    (to itself too, so it can always become it)."""

    member: str
    role: str
    inherit: bool
    set: bool
    admin: bool
    dangerous: bool = False

    @property
    def usable(self) -> bool:
        return self.inherit or self.set or self.admin

    @property
    def label(self) -> str:
        return " ".join(w for w, on in (("INHERIT", self.inherit), ("SET", self.set), ("ADMIN", self.admin)) if on)

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "role": self.role,
            "inherit": self.inherit,
            "set": self.set,
            "admin": self.admin,
            "dangerous": self.dangerous,
        }


@dataclass(frozen=True)
class RolePath:
    """`start` can become `target` through `via` (start first, target last)."""

    via: tuple[str, ...]
    dangerous: bool
    why: str

    @property
    def start(self) -> str:
        return self.via[0]

    @property
    def target(self) -> str:
        return self.via[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.target,
            "via": list(self.via),
            "dangerous": self.dangerous,
            "why": self.why,
        }


@dataclass(frozen=True)
class RoleGraph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    paths: tuple[RolePath, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "paths": [p.to_dict() for p in self.paths],
        }


def _edges(snap: Snapshot) -> list[Edge]:
    """Direct memberships with their options; before 16, INHERIT is the member's attribute and SET always holds."""
    out: dict[tuple[str, str], Edge] = {}
    for m in snap.memberships:
        member, role = snap.role_name(m.member), snap.role_name(m.role)
        if member is None or role is None:
            continue
        inherit = m.inherit if m.inherit is not None else snap.roles[m.member].inherit
        edge = Edge(member, role, bool(inherit), True if m.set is None else m.set, m.admin)
        was = out.get((member, role))  # several grantors: the options add up
        if was is not None:
            edge = Edge(member, role, was.inherit or edge.inherit, was.set or edge.set, was.admin or edge.admin)
        out[(member, role)] = edge
    return list(out.values())


def build_graph(policy: Policy, snap: Snapshot, starts: Iterable[str]) -> RoleGraph:
    """The roles reachable from `starts` (and the policy's roles), their memberships, and the shortest
    path from each start to the owner, a superuser or a powerful predefined role. A path is dangerous
    unless it is the policy's own design (a deploy login that may SET ROLE to the owner)."""
    edges = _edges(snap)
    up: dict[str, list[Edge]] = {}
    for e in edges:
        up.setdefault(e.member, []).append(e)
    kinds = {policy.owner.name: "owner", **{d: "deploy" for d in policy.owner.deploy_logins}}
    kinds |= {a.name: _access_kind(policy, a.name) for a in policy.access}
    kinds |= {m.name: "member" for m in policy.members}
    by_name = snap.role_by_name

    def powerful(name: str) -> bool:
        role = by_name.get(name)
        return name == policy.owner.name or name in POWERFUL_PREDEFINED or bool(role and role.superuser)

    start_list = list(dict.fromkeys([*kinds, *starts]))
    paths: list[RolePath] = []
    seen: set[str] = set(start_list)
    for start in start_list:
        if start not in by_name:
            continue
        for path in _reach(start, up):
            seen.update(path)
            target = path[-1]
            if not powerful(target) or target == start:
                continue
            by_design = kinds.get(start) == "deploy" and target == policy.owner.name and len(path) == 2
            owner_up = start == policy.owner.name
            paths.append(RolePath(tuple(path), not by_design, _why(path, target, policy, snap, by_design, owner_up)))
    danger_edges = {(p.via[i], p.via[i + 1]) for p in paths if p.dangerous for i in range(len(p.via) - 1)}
    nodes = []
    for name in sorted(seen, key=lambda n: (n not in kinds, n)):
        role = by_name.get(name)
        if role is None:
            continue
        kind = kinds.get(name) or (
            "superuser" if role.superuser else "predefined" if name.startswith("pg_") else "other"
        )
        nodes.append(Node(name, kind, role.login, powerful(name)))
    shown = {n.name for n in nodes}
    graph_edges = tuple(
        Edge(e.member, e.role, e.inherit, e.set, e.admin, (e.member, e.role) in danger_edges)
        for e in sorted(edges, key=lambda e: (e.member, e.role))
        if e.member in shown and e.role in shown
    )
    return RoleGraph(tuple(nodes), graph_edges, tuple(paths))


def _reach(start: str, up: Mapping[str, Sequence[Edge]]) -> list[list[str]]:
    """Breadth-first over usable memberships: the shortest path to every role `start` can become."""
    found: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for e in up.get(current, ()):
            if e.usable and e.role not in found:
                found[e.role] = [*found[current], e.role]
                queue.append(e.role)
    return [p for name, p in found.items() if name != start]


def _why(path: Sequence[str], target: str, policy: Policy, snap: Snapshot, by_design: bool, owner_up: bool) -> str:
    role = snap.role_by_name.get(target)
    if by_design:
        return "deploy login: SET ROLE to the owner to run migrations (the policy's design)"
    if role is not None and role.superuser:
        what = "a superuser: every check is bypassed"
    elif target == policy.owner.name:
        what = "the owner: may alter, drop and grant every object"
    else:
        what = f"{target}: reaches outside the database's privileges"
    return f"{' -> '.join(path)} becomes {what}" + (" (the owner itself)" if owner_up else "")


def _access_kind(policy: Policy, role: str) -> str:
    """group for a role the policy's members belong to (people get its grants through it), else
    readwrite or readonly for a role with only that profile (version 1's levels), access for any other mix."""
    if any(ms.role == role for m in policy.members for ms in m.member_of):
        return "group"
    level = policy.level_of(role)
    return level if level in ("readwrite", "readonly") else "access"


def membership_edges(snap: Snapshot) -> list[Edge]:
    """Every direct membership of the cluster as an Edge (its options added up over grantors)."""
    return _edges(snap)
