"""Paths as values: a hop, a path (a tuple of hops) and one way a role reaches a privilege."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Hops that expose another object's rows (the ones an exception can be walked around by).
DERIVED_KINDS = frozenset({"view", "matview", "rule", "parent", "routine", "trigger"})
#: Hops through roles.
ROLE_KINDS = frozenset({"member", "set", "admin", "public"})


@dataclass(frozen=True, slots=True, order=True)
class Hop:
    """One step: `kind` (a membership: member, set, admin; public, superuser, owner, grant, column,
    predefined; or one of DERIVED_KINDS), what it reaches (a role, or an object as SQL text) and a detail
    (the privilege for grants, the object exposed for derived hops, the owner whose rights run)."""

    kind: str
    name: str
    detail: str = ""

    def text(self) -> str:
        if self.kind in ("member", "public"):
            return self.name
        if self.kind == "set":
            return f"{self.name} (SET ROLE)"
        if self.kind == "admin":
            return f"{self.name} (ADMIN OPTION: grants itself)"
        if self.kind == "superuser":
            return f"superuser {self.name}"
        if self.kind == "owner":
            return f"owner of {self.name}"
        if self.kind in ("grant", "column", "predefined"):
            return f"{self.detail} on {self.name}" + (" (predefined role)" if self.kind == "predefined" else "")
        return f"{self.kind} {self.name} → {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


Path = tuple[Hop, ...]


@dataclass(frozen=True, slots=True)
class Access:
    """`role` can use `privilege` on `object` (its `column`; None: the whole object) by `path`.
    `role` is PUBLIC for what every role can do."""

    object: str
    kind: str  # table, view, materialized view, foreign table, partitioned table, sequence, routine
    column: str | None
    role: str
    privilege: str
    path: Path

    def chain(self) -> str:
        """alice → analysts → SELECT on app.customers"""
        return " → ".join([self.role, *(h.text() for h in self.path)])

    @property
    def derived(self) -> bool:
        return any(h.kind in DERIVED_KINDS for h in self.path)

    def key(self) -> tuple[str, str, str, str, tuple[tuple[str, str, str], ...]]:
        """What identifies it across runs (`review --since`), and sorts it."""
        hops = tuple((h.kind, h.name, h.detail) for h in self.path)
        return (self.object, self.column or "", self.role, self.privilege, hops)

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "kind": self.kind,
            "column": self.column,
            "role": self.role,
            "privilege": self.privilege,
            "chain": self.chain(),
            "path": [h.to_json() for h in self.path],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Access:
        path = tuple(Hop(h["kind"], h["name"], h.get("detail", "")) for h in d["path"])
        return cls(d["object"], d["kind"], d.get("column"), d["role"], d["privilege"], path)
