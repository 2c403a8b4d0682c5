"""Privilege profiles: what each access level gets on each object kind, defined once.

plan grants them, probe derives what each level must be allowed to do from them, report compares
what is held against them. Each profile is checked against the registry of kinds at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgwarden.kinds import KINDS, PROFILE_FIELDS

if TYPE_CHECKING:
    from pgwarden.policy import Policy


@dataclass(frozen=True)
class Profile:
    """A named privilege set per object kind."""

    name: str
    grants: Mapping[str, frozenset[str]]  # kind -> privileges

    def __post_init__(self) -> None:
        for kind_name, privileges in self.grants.items():
            KINDS[kind_name].check_privileges(privileges)

    def on(self, kind_name: str) -> frozenset[str]:
        """The privileges the profile gives on objects of `kind_name` (nothing when it names none)."""
        return self.grants.get(kind_name, frozenset())

    def allows(self, kind_name: str, privilege: str) -> bool:
        return privilege in self.on(kind_name)


#: Built-in profiles. Both get EXECUTE on routines: views and queries call the application's
#: functions, and a SECURITY INVOKER function can do no more than its caller; SECURITY DEFINER
#: routines that a readonly role may run are reported by check (function.definer-readonly).
READWRITE = Profile(
    "readwrite",
    {
        "table": frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
        "sequence": frozenset({"USAGE", "SELECT"}),
        "routine": frozenset({"EXECUTE"}),
        "schema": frozenset({"USAGE"}),
        "database": frozenset({"CONNECT"}),
    },
)
READONLY = Profile(
    "readonly",
    {
        "table": frozenset({"SELECT"}),
        "sequence": frozenset({"SELECT"}),
        "routine": frozenset({"EXECUTE"}),
        "schema": frozenset({"USAGE"}),
        "database": frozenset({"CONNECT"}),
    },
)

#: Only adds rows: an audit log or an event queue the application writes and never reads back.
APPEND = Profile(
    "append",
    {
        "table": frozenset({"INSERT"}),
        "sequence": frozenset({"USAGE"}),
        "schema": frozenset({"USAGE"}),
        "database": frozenset({"CONNECT"}),
    },
)

#: Nothing on the objects: USAGE on the schema (and CONNECT). An ETL login that will create its
#: tables through the owner, a role that only looks up a schema's types, or one holding exactly that.
USAGE = Profile("usage", {"schema": frozenset({"USAGE"}), "database": frozenset({"CONNECT"})})

#: CONNECT on the database and nothing else (a grant of it needs no scope): a role that logs in
#: to reach what PUBLIC may use, or to SET ROLE.
CONNECT = Profile("connect", {"database": frozenset({"CONNECT"})})

BUILTIN: Mapping[str, Profile] = {p.name: p for p in (READWRITE, READONLY, APPEND, USAGE, CONNECT)}

#: level -> kind -> privileges (the shape plan and report have always read).
PROFILES: Mapping[str, Mapping[str, frozenset[str]]] = {name: p.grants for name, p in BUILTIN.items()}


def profile(name: str) -> Profile:
    return BUILTIN[name]


def defined(policy: Policy) -> Mapping[str, Profile]:
    """The built-in profiles and the policy's own ([profiles.NAME]); every profile also gives
    USAGE on the schemas it covers and CONNECT on the database."""
    out = dict(BUILTIN)
    for name, spec in policy.profiles.items():
        grants: dict[str, frozenset[str]] = {k: frozenset(getattr(spec, k)) for k in PROFILE_FIELDS if getattr(spec, k)}
        grants |= {"schema": frozenset({"USAGE"}), "database": frozenset({"CONNECT"})}
        out[name] = Profile(name, grants)
    return out
