"""Time-bound access in plans: memberships in force are wanted ([[temporary]], elevations), ended ones are drift."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

from psycopg import sql

from pgwarden.fingerprint import LEDGER_SCHEMA
from pgwarden.plan import Action, Need, Phase, Plan, Requirement, Step
from pgwarden.policy.temporary import TemporarySpec

if TYPE_CHECKING:
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot


def intended(session: Session, snap: Snapshot, the_plan: Plan, now: dt.datetime | None = None) -> Plan:
    """The plan with time-bound memberships: no revocation of one in force (an elevation of the
    ledger, a [[temporary]] entry of the policy), a grant for a [[temporary]] one in force that is
    missing, a revocation for one that ended and is still there."""
    now = now or dt.datetime.now(dt.UTC)
    temporary = session.policy.temporary
    from pgwarden.ledger import LedgerState, read_state

    if session.ledger is None:
        session.ledger = LedgerState()
        if snap.schema_by_name(LEDGER_SCHEMA) is not None and snap.database_exists:
            with session.connect_target() as conn:
                session.ledger = read_state(conn, snap)
    state: LedgerState = session.ledger
    keep = {(group, role) for role, group in state.elevated}
    keep |= {(t.group, t.role) for t in temporary if t.until > now}
    glass = session.policy.break_glass.roles
    if not keep and not temporary and not glass:
        return the_plan
    steps = [s for s in the_plan.steps if not _revokes(s, keep)]
    planned = {tuple(s.subject) for s in steps if s.subject is not None}
    extra = [step for t in temporary if (step := _step(snap, t, now, planned)) is not None]
    extra += [_lock(snap, name) for name in glass if _may_log_in(snap, name) and name not in state.opened]
    roles = [s for s in steps if s.phase == Phase.ROLES]
    rest = [s for s in steps if s.phase != Phase.ROLES]
    return replace(the_plan, steps=tuple(roles + extra + rest))


def _may_log_in(snap: Snapshot, name: str) -> bool:
    role = snap.role_by_name.get(name)
    return role is not None and role.login


def _lock(snap: Snapshot, name: str) -> Step:
    """A break-glass role that may log in outside a window: NOLOGIN again."""
    return Step(
        Phase.ROLES,
        Action.ALTER_ROLE,
        f"role {name}",
        f"{name} is a break-glass role and no window is open (`pgwarden break-glass open`): it stays NOLOGIN",
        sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)),
        needs=None if snap.server.is_superuser else Need.of(Requirement.CREATEROLE),
        allowed=snap.server.is_superuser or snap.server.can_createrole,
        subject=("role-attributes", name),
    )


def _revokes(step: Step, keep: set[tuple[str, str]]) -> bool:
    if step.action != Action.REVOKE_MEMBERSHIP or step.subject is None or len(step.subject) != 3:
        return False
    return (str(step.subject[1]), str(step.subject[2])) in keep


def _held(snap: Snapshot, group: str, role: str) -> bool:
    g, r = snap.role_by_name.get(group), snap.role_by_name.get(role)
    return g is not None and r is not None and any(m.role == g.oid and m.member == r.oid for m in snap.memberships)


def _step(snap: Snapshot, t: TemporarySpec, now: dt.datetime, planned: set[tuple[str | int, ...]]) -> Step | None:
    subject = ("membership", t.group, t.role)
    held = _held(snap, t.group, t.role)
    until = t.until.astimezone(dt.UTC).isoformat(timespec="seconds")
    ok = snap.server.is_superuser or snap.server.can_createrole
    need = None if snap.server.is_superuser else Need.of((Requirement.ADMIN_OPTION, t.group))
    if t.until > now and not held:
        statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(t.group), sql.Identifier(t.role))
        if snap.caps.membership_options:
            statement = sql.SQL("{} WITH INHERIT {}, SET {}").format(
                statement, sql.SQL(str(t.inherit).upper()), sql.SQL(str(t.set).upper())
            )
        reason = f"temporary: {t.role} is a member of {t.group} until {until} ({t.reason})"
        return Step(Phase.ROLES, Action.GRANT_MEMBERSHIP, f"role {t.role}", reason, statement, role=t.group,
                    needs=need, allowed=ok, subject=subject)  # fmt: skip
    if t.until <= now and held and subject not in planned:
        statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(t.group), sql.Identifier(t.role))
        reason = f"temporary: the membership of {t.role} in {t.group} ended at {until} ({t.reason})"
        return Step(Phase.ROLES, Action.REVOKE_MEMBERSHIP, f"role {t.role}", reason, statement, role=t.group,
                    needs=need, allowed=ok, subject=subject)  # fmt: skip
    return None
