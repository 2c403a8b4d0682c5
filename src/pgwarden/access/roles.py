"""Who can act as whom: every chain of memberships from a role to the roles whose privileges it uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pgwarden.access.paths import Hop, Path
from pgwarden.snapshot import Membership, Role

#: Chains longer than this, or more of them per role, are not followed (real role graphs are shallow).
MAX_DEPTH = 8
MAX_CHAINS = 256


@dataclass(frozen=True, slots=True)
class Chain:
    """`start` uses the privileges of `holder` by `hops`, in a session whose identity is `acting`
    (itself, or the role it SET ROLE to or granted itself)."""

    start: int
    holder: int
    acting: int
    hops: Path


def _edges(
    roles: Mapping[int, Role], memberships: Sequence[Membership], options: bool
) -> dict[int, list[tuple[int, str]]]:
    """member -> (role, hop kind). On 16+ each membership has INHERIT and SET options; before, a
    member inherits when its role has INHERIT and may always SET ROLE."""
    out: dict[int, list[tuple[int, str]]] = {}
    for m in memberships:
        if m.role not in roles:
            continue
        if options:
            kind = "member" if m.inherit else "set" if m.set else "admin" if m.admin else ""
        else:
            member = roles.get(m.member)
            kind = "member" if member is None or member.inherit else "set"
        if kind:
            out.setdefault(m.member, []).append((m.role, kind))
    return out


def chains(roles: Mapping[int, Role], memberships: Sequence[Membership], options: bool) -> dict[int, list[Chain]]:
    """Every role's chains (its own, empty one first). A SET ROLE (or a self-granted role) changes
    the session's identity: after an inherited hop none may follow, since SET ROLE needs a chain of
    SET memberships from the session user."""
    edges = _edges(roles, memberships, options)
    out: dict[int, list[Chain]] = {}
    for start in roles:
        found = [Chain(start, start, start, ())]
        stack: list[tuple[int, int, Path, bool, frozenset[int]]] = [(start, start, (), True, frozenset({start}))]
        while stack and len(found) < MAX_CHAINS:
            role, acting, hops, can_set, seen = stack.pop()
            if len(hops) >= MAX_DEPTH:
                continue
            for target, kind in edges.get(role, ()):
                if target in seen or (kind != "member" and not can_set):
                    continue
                hop = Hop(kind, roles[target].name)
                now = target if kind != "member" else acting
                found.append(Chain(start, target, now, (*hops, hop)))
                stack.append((target, now, (*hops, hop), can_set and kind != "member", seen | {target}))
        out[start] = found
    return out


def inherited(all_chains: Mapping[int, list[Chain]]) -> dict[int, frozenset[int]]:
    """role -> the roles whose privileges it has without changing identity (itself included)."""
    return {r: frozenset(c.holder for c in cs if c.acting == r) for r, cs in all_chains.items()}
