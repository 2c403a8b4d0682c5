"""The plan as data: phases, typed actions and needs, steps and the plan itself."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from pgwarden.plan.provider import Impossible
    from pgwarden.plan.retire import Retirement
    from pgwarden.providers import Detection

#: What a step or a finding is about, so that a drift step and a hazard about the same thing become
#: one finding: ("owner", catalog, oid), ("role-attributes", role), ("role-password", role),
#: ("membership", role, member), ("acl", catalog, oid, grantee or "PUBLIC").
Subject = tuple[str | int, ...]


def owner_subject(catalog: str, oid: int) -> Subject:
    return ("owner", catalog, oid)


def acl_subject(catalog: str, oid: int, grantee: str | None) -> Subject:
    return ("acl", catalog, oid, grantee if grantee is not None else "PUBLIC")


#: What a step executes: a composed statement (psycopg's execute() takes these, not any Composable).
Statement = sql.SQL | sql.Composed


class Phase(enum.IntEnum):
    """Roles and CREATE DATABASE run first (the latter outside a transaction); then everything
    inside the database in one transaction. RETIRE: dropping retired roles, in every database of
    the cluster (pgwarden.retirement runs it between CREATE DATABASE and the database part)."""

    ROLES = 1
    CREATE_DATABASE = 2
    DATABASE = 3
    RETIRE = 4


class Action(enum.StrEnum):
    """What a step does; the value is the step's JSON `action` and its drift rule `drift.<value>`."""

    CREATE_ROLE = "create-role"
    ALTER_ROLE = "alter-role"
    SET_PASSWORD = "set-password"
    REVOKE_MEMBERSHIP = "revoke-membership"
    GRANT_MEMBERSHIP = "grant-membership"
    CREATE_DATABASE = "create-database"
    CREATE_SCHEMA = "create-schema"
    ALTER_OWNER = "alter-owner"
    GRANT = "grant"
    REVOKE = "revoke"
    REVOKE_GRANT_OPTION = "revoke-grant-option"
    DEFAULT_PRIVILEGES = "default-privileges"
    ROLE_SETTING = "role-setting"
    GUARD = "guard"
    REFRESH_ROUTINE = "refresh-routine"  # 14-16: the routine a role refreshes its materialized views with
    # version 2's declared role state (plan/attributes.py, plan/members.py)
    ROLE_ATTRIBUTE = "role-attribute"  # CONNECTION LIMIT, VALID UNTIL
    ROLE_COMMENT = "role-comment"
    MEMBERSHIP_OPTIONS = "membership-options"  # INHERIT / SET / ADMIN OPTION of a member's membership
    POOLER = "pooler"  # [pgbouncer]'s lookup routine (plan/pooler.py)
    RETIRE_ROLE = "retire-role"  # its `change` says which part: nologin, terminate, reassign, drop-owned, ...


#: Actions on the objects inside the database: what a migration command can get wrong (`run`).
OBJECT_ACTIONS = frozenset(
    {Action.ALTER_OWNER, Action.GRANT, Action.REVOKE, Action.REVOKE_GRANT_OPTION, Action.DEFAULT_PRIVILEGES}
)


class Requirement(enum.StrEnum):
    """One thing short of superuser that lets the admin run a step."""

    CREATEROLE = "CREATEROLE"
    CREATEDB = "CREATEDB"
    ADMIN_OPTION = "ADMIN OPTION"  # on `role`
    MEMBERSHIP = "membership"  # in `role`
    PRIVILEGES_OF = "privileges"  # of `role`, with a note saying who that is


@dataclass(frozen=True)
class Need:
    """What a step needs that the admin lacks: superuser, or every one of `requires`
    (`roles[i]` is the role requirement i is about; `note` says why, for people)."""

    requires: tuple[Requirement, ...] = ()
    roles: tuple[str | None, ...] = ()
    note: str | None = None

    @classmethod
    def superuser(cls) -> Need:
        return cls()

    @classmethod
    def of(cls, *parts: Requirement | tuple[Requirement, str], note: str | None = None) -> Need:
        """Need.of(Requirement.CREATEROLE, (Requirement.MEMBERSHIP, "owner"), note=...)."""
        reqs = tuple(p[0] if isinstance(p, tuple) else p for p in parts)
        roles = tuple(p[1] if isinstance(p, tuple) else None for p in parts)
        return cls(reqs, roles, note)

    def __str__(self) -> str:
        if not self.requires:
            return "superuser"
        groups: dict[Requirement, list[str]] = {}
        for req, role in zip(self.requires, self.roles, strict=True):
            groups.setdefault(req, []).append(role or "")
        words = []
        for req, roles in groups.items():
            names = " and ".join(r for r in roles if r)
            if req == Requirement.MEMBERSHIP:
                words.append(f"membership in {names}")
            elif req == Requirement.ADMIN_OPTION:
                words.append(f"ADMIN OPTION on {names}")
            elif req == Requirement.PRIVILEGES_OF:
                words.append(f"the privileges of {names}")
            else:
                words.append(req.value)
        text = " and ".join(words) + (f" ({self.note})" if self.note else "")
        return ("superuser or " if len(words) == 1 else "superuser, or ") + text

    def __contains__(self, text: str) -> bool:
        return text in str(self)


@dataclass(frozen=True)
class Step:
    """One statement with its reason, what it needs and whether the connected admin has it."""

    phase: Phase
    action: Action
    object: str
    reason: str
    sql: Statement
    role: str | None = None
    display_sql: Statement | None = None
    destructive: bool = False
    needs: Need | None = None
    allowed: bool = True
    count: int = 1
    change: str = ""  # for ACL steps: grant, revoke or revoke-grant-option (default privileges have all three)
    #: what the step is about, in the words hazard findings use for the same thing (see Subject), so
    #: that check reports one finding per problem
    subject: Subject | None = None

    @property
    def key(self) -> str:
        """Stable within a plan: what `run` and `check` match findings to steps by (never SQL text).
        No two steps of a plan share action, change, object and role."""
        return "|".join([self.action.value, self.change, self.object, self.role or ""])

    def render(self) -> str:
        """SQL text for people: secrets are replaced by psql variables."""
        return (self.display_sql or self.sql).as_string(None)

    def render_short(self, limit: int = 400) -> str:
        """render(), cut for a screen: a grant on 1,000 tables is one long statement."""
        text = self.render()
        if len(text) <= limit:
            return text
        return text[:limit].rstrip() + f" ... ({self.count} objects; the whole statement with --format sql)"

    @property
    def takes_away(self) -> bool:
        """Whether the step revokes, drops or moves something that exists (additive mode withholds it)."""
        return (
            self.destructive
            or self.change in ("revoke", "revoke-grant-option", "drop")
            or (self.action == Action.SET_PASSWORD and self.change != "first-password")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.name.lower(),
            "action": str(self.action),
            "object": self.object,
            "role": self.role,
            "reason": self.reason,
            "sql": self.render(),
            "destructive": self.destructive,
            "needs": None if self.needs is None else str(self.needs),
            "allowed": self.allowed,
            "count": self.count,
        }


@dataclass(frozen=True)
class Plan:
    database: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    server_version: str = ""
    lock_timeout: str = "5s"  # the policy's [apply] lock_timeout, for scripts printed from the plan
    mode: str = "authoritative"
    #: additive mode: what authoritative mode would also do (revoke, drop, move what exists); never run
    withheld: tuple[Step, ...] = ()
    #: retired roles that still exist: what dropping each one takes, in every database (plan.retire)
    retirements: tuple[Retirement, ...] = ()
    #: the managed service the server looks like (providers.py); None when planned without one
    provider: Detection | None = None
    #: steps the admin cannot run on that service, with why and what to do instead
    impossible: tuple[Impossible, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.steps and not self.retirements

    @property
    def unprivileged(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.allowed)

    def phase(self, phase: Phase) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.phase == phase)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "database": self.database,
            "server_version": self.server_version,
            "changes": len(self.steps),
            "destructive": sum(1 for s in self.steps if s.destructive),
            "unprivileged": len(self.unprivileged),
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }
        if self.mode == "additive":  # an authoritative plan keeps the shape it always had
            data["mode"] = self.mode
            data["withheld"] = [s.to_dict() for s in self.withheld]
        if self.retirements:  # present only while a retired role exists
            data["retired"] = [r.to_dict() for r in self.retirements]
        provider = self.provider_dict()
        if provider is not None:  # on a managed service only: community PostgreSQL keeps the shape it had
            data["provider"] = provider
        return data

    def provider_dict(self) -> dict[str, Any] | None:
        """The provider as JSON (plan, check and report share it), with the steps its admin cannot run."""
        if self.provider is None or not self.provider.managed:
            return None
        return {**self.provider.to_dict(), "impossible": [i.to_dict() for i in self.impossible]}
