"""plan(policy, snapshot) -> Plan: the ordered steps that make the database match the policy. Pure.

The planners run in a fixed order, and the order matters: roles first (a CREATEROLE admin gains
ADMIN OPTION on the roles it creates, 16+), then memberships (a non-superuser admin is granted the
owner, which every later planner relies on to act as it), then the database, its schemas, their
objects and types, the owner's default privileges, the deploy logins' settings and the guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pgwarden.errors import PolicyError
from pgwarden.kinds import PRIVILEGE_SINCE, kind
from pgwarden.plan import provider as providers
from pgwarden.plan.attributes import plan_role_attributes
from pgwarden.plan.authority import Authority
from pgwarden.plan.columns import plan_columns
from pgwarden.plan.context import PlanContext
from pgwarden.plan.database import plan_database, plan_schemas
from pgwarden.plan.defaults import plan_default_privileges
from pgwarden.plan.guard import plan_guard
from pgwarden.plan.members import plan_memberships
from pgwarden.plan.model import OBJECT_ACTIONS, Action, Need, Phase, Plan, Requirement, Statement, Step
from pgwarden.plan.objects import BULK_FACTOR, OBJECTS_PER_STATEMENT, groups_to_name, plan_objects
from pgwarden.plan.outside import plan_outside, plan_owner_memberships
from pgwarden.plan.outsiders import plan_outsider_memberships
from pgwarden.plan.pooler import plan_pooler
from pgwarden.plan.refresh import plan_refresh
from pgwarden.plan.roles import plan_roles
from pgwarden.plan.settings import plan_declared_settings, plan_role_settings
from pgwarden.plan.types import plan_types
from pgwarden.policy import Mode, Policy
from pgwarden.profiles import PROFILES, defined
from pgwarden.snapshot import Snapshot

__all__ = [
    "BULK_FACTOR",
    "OBJECTS_PER_STATEMENT",
    "OBJECT_ACTIONS",
    "PROFILES",
    "Action",
    "Authority",
    "Need",
    "Phase",
    "Plan",
    "Requirement",
    "Statement",
    "Step",
    "groups_to_name",
    "missing_database_note",
    "plan",
]


def plan(
    policy: Policy,
    snap: Snapshot,
    secrets: Mapping[str, str] | None = None,
    verifiers: Mapping[str, str] | None = None,
    *,
    mode: Mode | None = None,
) -> Plan:
    """Compute what must change for the database to match the policy. No I/O.

    `secrets` maps password environment variable names to their values (read by the caller): they
    are compared with the stored verifiers. `verifiers` maps the same names to the SCRAM verifiers
    to store (Session.verifiers computes them with libpq); given both, the plan is deterministic.
    `mode` overrides the policy's. In additive mode the plan grants and creates what is missing and
    never revokes, drops or moves what exists; what authoritative mode would do beyond that is
    listed as `withheld` (and never run)."""
    if not snap.caps.supported:
        raise PolicyError(
            f"PostgreSQL {snap.server.version} is not supported",
            hint="pgwarden supports PostgreSQL 14 to 18",
        )
    bootstrap = snap.roles.get(10)
    if bootstrap and policy.owner.name == bootstrap.name:
        raise PolicyError(
            f"the owner cannot be the bootstrap superuser {bootstrap.name!r}",
            hint="choose a dedicated owner role; `pgwarden adopt` moves objects to it",
        )
    _check_profiles(policy, snap)
    mode = mode or policy.mode
    found = providers.of_snapshot(snap, policy)
    policy = providers.with_external(policy, snap)  # the provider's own roles: left alone, as [ignore]d
    full = _plan(PlanContext.of(policy, snap, verifiers), secrets)
    if mode != "additive":
        return replace(full, provider=found, impossible=providers.impossible(found, full.steps))
    part = _plan(PlanContext.of(policy, snap, verifiers, additive=True), secrets)
    steps = tuple(s for s in part.steps if not s.takes_away)
    keys = {s.key for s in steps}
    withheld = tuple(s for s in full.steps if s.key not in keys)
    return replace(
        part, steps=steps, mode=mode, withheld=withheld, provider=found, impossible=providers.impossible(found, steps)
    )


def _check_profiles(policy: Policy, snap: Snapshot) -> None:
    """A profile in use that names a privilege this server does not have (MAINTAIN before 17)."""
    profiles = defined(policy)
    for name in dict.fromkeys(g.profile for g in policy.grants()):
        for kind_name, privileges in profiles[name].grants.items():
            known = set(kind(kind_name).privileges_on(snap.caps.major))
            missing = sorted(set(privileges) - known)
            if missing:
                raise PolicyError(
                    f"profile {name} gives {', '.join(missing)} on {kind(kind_name).plural}, which PostgreSQL "
                    f"{snap.caps.major} does not have",
                    hint=f"remove it from [profiles.{name}], or use it on PostgreSQL "
                    f"{max(PRIVILEGE_SINCE.get(p, 0) for p in missing)} or later",
                )


def _plan(ctx: PlanContext, secrets: Mapping[str, str] | None) -> Plan:
    policy, snap = ctx.policy, ctx.snap
    # in this order: each planner may widen what the admin can do for the next (ctx.auth)
    steps = [
        *plan_roles(ctx, secrets or {}),
        *plan_role_attributes(ctx),
        *plan_declared_settings(ctx, in_database=False),
        *plan_memberships(ctx),
        *plan_owner_memberships(ctx),
        *plan_outsider_memberships(ctx),
        *plan_database(ctx),
        *plan_schemas(ctx),
        *plan_objects(ctx),
        *plan_columns(ctx),
        *plan_types(ctx),
        *plan_default_privileges(ctx),
        *plan_role_settings(ctx),
        *plan_declared_settings(ctx, in_database=True),
        *plan_outside(ctx),
        *plan_guard(ctx),
        *plan_pooler(ctx),
        *plan_refresh(ctx),
    ]
    # The admin's own membership in the owner is a means, not drift: alone, it is no change at all
    # (otherwise a non-superuser admin or an auditor role could never see a clean plan).
    admin_step = [s for s in steps if s.action == Action.GRANT_MEMBERSHIP and s.role == ctx.auth.name]
    if admin_step and len(steps) == len(admin_step):
        steps.clear()
    if not snap.database_exists:
        ctx.notes.append(missing_database_note(policy.database.name))
    return Plan(policy.database.name, tuple(steps), tuple(ctx.notes), snap.server.version, policy.apply.lock_timeout)


def missing_database_note(name: str) -> str:
    """The note a plan carries while its database does not exist (apply drops it once created)."""
    return f"database {name} does not exist yet: its steps were planned from template1, which CREATE DATABASE copies"
