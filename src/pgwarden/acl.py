"""Grants as hashable values, drift as set difference: the ACL algebra every planner uses. Pure."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

#: A grantee by name; None is PUBLIC.
Grantee = str | None

PUBLIC: Grantee = None


def show(grantee: Grantee) -> str:
    return "PUBLIC" if grantee is None else grantee


def grantee_order(grantee: Grantee) -> tuple[bool, str]:
    """PUBLIC first, then roles by name: the order changes are planned in."""
    return (grantee is not None, grantee or "")


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One privilege held: `grantor` gave `privilege` to `grantee`, `grantable` with grant option."""

    grantee: Grantee
    privilege: str
    grantor: str | None = None
    grantable: bool = False


AclState = frozenset[Grant]


def state(grants: Iterable[Grant]) -> AclState:
    return frozenset(grants)


class CatalogGrant(Protocol):
    """An exploded aclitem as the snapshot reads it (role oids; 0 is PUBLIC)."""

    @property
    def grantor(self) -> int: ...
    @property
    def grantee(self) -> int: ...
    @property
    def privilege(self) -> str: ...
    @property
    def grantable(self) -> bool: ...


def from_catalog(
    grants: Iterable[CatalogGrant], name_of: Callable[[int], str | None], rename: Mapping[str, str] | None = None
) -> AclState:
    """Name the roles of catalog ACL entries; `rename` maps a previous owner to the new one (an
    ownership change moves the old owner's entries, grantor and grantee, to the new owner)."""
    moved = rename or {}

    def name(oid: int) -> str | None:
        n = name_of(oid)
        return moved.get(n, n) if n is not None else None

    return frozenset(Grant(name(g.grantee), g.privilege, name(g.grantor), g.grantable) for g in grants)


def held(privileges: Mapping[Grantee, Iterable[str]], grantor: str | None = None) -> AclState:
    """An ACL state from {grantee: privileges} (what acldefault() or a new object has)."""
    return frozenset(Grant(g, p, grantor) for g, privs in privileges.items() for p in privs)


class ChangeAction(enum.StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"
    REVOKE_GRANT_OPTION = "revoke-grant-option"


@dataclass(frozen=True, slots=True)
class Change:
    """What one grantee must gain or lose on one ACL."""

    action: ChangeAction
    grantee: Grantee
    privs: frozenset[str]
    everything: bool = False  # a revoke that leaves the grantee nothing (REVOKE ALL)


@dataclass(frozen=True)
class Wanted:
    """The desired ACL: what each grantee must hold, what it may keep, whose grants count.

    `expected`: grantee -> privileges it must hold (granted by `grantor`, when given).
    `tolerated`: grantee -> privileges it may hold beyond that (not revoked, not granted).
    `owner`: the object's owner: its privileges count whoever granted them, and it keeps its
    grant options. `grantor`: the role whose grants satisfy `expected` (None: any grantor).
    `grantable`: grantee -> privileges whose grant option it may keep (never granted).
    """

    expected: Mapping[Grantee, frozenset[str]]
    tolerated: Mapping[Grantee, frozenset[str]] = field(default_factory=dict)
    owner: str | None = None
    grantor: str | None = None
    ignore: frozenset[str] = frozenset()
    #: grantee -> privileges it may keep WITH GRANT OPTION where it holds them (a grant's
    #: `grant_option`): never granted, not revoked
    grantable: Mapping[str, frozenset[str]] = field(default_factory=dict)  # PUBLIC holds no grant option

    def tolerated_for(self, grantee: Grantee) -> frozenset[str]:
        return self.tolerated.get(grantee, frozenset())


def diff(actual: AclState, wanted: Wanted) -> list[Change]:
    """The changes that turn `actual` into `wanted`, per grantee (PUBLIC first): grant what is
    missing, revoke what is extra, revoke grant options nobody but the owner may hold."""
    have: dict[Grantee, set[str]] = {}
    by_grantor: dict[Grantee, set[str]] = {}
    grantable: dict[Grantee, set[str]] = {}
    for g in actual:
        have.setdefault(g.grantee, set()).add(g.privilege)
        if wanted.grantor is None or g.grantee == wanted.owner or g.grantor == wanted.grantor:
            by_grantor.setdefault(g.grantee, set()).add(g.privilege)
        if g.grantable:
            grantable.setdefault(g.grantee, set()).add(g.privilege)
    changes: list[Change] = []
    for grantee in sorted(set(have) | set(wanted.expected), key=grantee_order):
        if grantee is not None and grantee in wanted.ignore:
            continue
        want = wanted.expected.get(grantee, frozenset())
        holds = have.get(grantee, set())
        missing = want - by_grantor.get(grantee, set())
        extra = holds - want - wanted.tolerated_for(grantee)
        if missing:
            changes.append(Change(ChangeAction.GRANT, grantee, frozenset(missing)))
        if extra:
            # REVOKE ALL only when the grantee keeps nothing: not when a grant above gives it something
            everything = not (holds - extra) and not want
            changes.append(Change(ChangeAction.REVOKE, grantee, frozenset(extra), everything=everything))
        if grantee != wanted.owner:
            options = grantable.get(grantee, set()) - extra - wanted.grantable.get(grantee or "", frozenset())
            if options:
                changes.append(Change(ChangeAction.REVOKE_GRANT_OPTION, grantee, frozenset(options)))
    return changes
