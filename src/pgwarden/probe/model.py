"""Probe's results: each attempt, the matrix of (role, action) cells, the whole result as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pgwarden.probe.actions import ACTIONS

Outcome = Literal["allowed", "denied", "error", "skipped"]
#: The level words of version 1; version 2 roles show `policy.level_of` ("readwrite+append"), members
#: "member of GROUP", and a member after SET ROLE "set role GROUP".
Level = Literal["owner", "readwrite", "readonly"]


@dataclass(frozen=True)
class Attempt:
    """One try: who, what, on which object, what the policy expects, what the server said."""

    role: str
    level: str
    action: str
    object: str
    expected: bool
    outcome: Outcome
    method: Literal["attempt", "inquiry"] = "attempt"
    sqlstate: str | None = None
    message: str | None = None
    count: int = 1  # inquiries that agree with the policy are summed up in one record
    acting_as: str | None = None  # the group a member has SET ROLE to (None: acting as itself)

    @property
    def who(self) -> str:
        """The role as people read it: `alice`, or `alice (SET ROLE analysts)`."""
        return self.role if self.acting_as is None else f"{self.role} (SET ROLE {self.acting_as})"

    @property
    def ok(self) -> bool:
        if self.outcome in ("error", "skipped"):
            return False
        return (self.outcome == "allowed") == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "action": self.action,
            "object": self.object,
            "expected": "allowed" if self.expected else "denied",
            "outcome": self.outcome,
            "ok": self.ok,
            "method": self.method,
            "sqlstate": self.sqlstate,
            "message": self.message,
            "count": self.count,
            "acting_as": self.acting_as,
        }


@dataclass(frozen=True)
class Cell:
    """The matrix cell for (role, action): allowed, denied or mixed over its objects."""

    role: str
    level: str
    action: str
    outcome: str
    expected: str
    ok: bool
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "action": self.action,
            "outcome": self.outcome,
            "expected": self.expected,
            "ok": self.ok,
            "count": self.count,
        }


@dataclass(frozen=True)
class ProbeResult:
    database: str
    server_version: str
    mode: Literal["set-role", "login"]
    attempts: tuple[Attempt, ...]
    notes: tuple[str, ...] = ()

    @property
    def failures(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.attempts if not a.ok)

    @property
    def ok(self) -> bool:
        return not self.failures

    def roles(self) -> list[tuple[str, str]]:
        """(role, level) of each identity probed; a member after SET ROLE has a level of its own."""
        return list(dict.fromkeys((a.role, a.level) for a in self.attempts))

    def actions(self) -> tuple[str, ...]:
        """The table's actions, then any other this result has (set-role), in display order."""
        return tuple(dict.fromkeys((*ACTIONS, *(a.action for a in self.attempts))))

    def matrix(self) -> list[Cell]:
        cells: list[Cell] = []
        by_identity: dict[tuple[str, str, str], list[Attempt]] = {}
        for a in self.attempts:
            by_identity.setdefault((a.role, a.level, a.action), []).append(a)
        for role, level in self.roles():
            for action in self.actions():
                rows = by_identity.get((role, level, action), [])
                if not rows:
                    continue
                outcomes = {a.outcome for a in rows}
                outcome = outcomes.pop() if len(outcomes) == 1 else ("error" if "error" in outcomes else "mixed")
                exp = {a.expected for a in rows}
                cells.append(
                    Cell(
                        role,
                        level,
                        action,
                        outcome,
                        ("allowed" if exp.pop() else "denied") if len(exp) == 1 else "mixed",
                        all(a.ok for a in rows),
                        sum(a.count for a in rows),
                    )
                )
        return cells

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "mode": self.mode,
            "ok": self.ok,
            "summary": {
                "attempts": len(self.attempts),
                "objects": sum(a.count for a in self.attempts),
                "failures": len(self.failures),
            },
            "matrix": [c.to_dict() for c in self.matrix()],
            "attempts": [a.to_dict() for a in self.attempts],
            "notes": list(self.notes),
        }
