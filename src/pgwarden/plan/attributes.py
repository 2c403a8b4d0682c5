"""Planner for the declared role attributes: CONNECTION LIMIT, VALID UNTIL and the role's comment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.policy.model import RoleAttributes
from pgwarden.snapshot import Role

R = Requirement
ALTER_NEED = Need.of(R.CREATEROLE, note="with ADMIN OPTION on the role on 16+")

#: What VALID UNTIL reads as "never expires" (NULL and 'infinity' are the same to the server).
NEVER = (None, "infinity")


def _instant(value: str) -> datetime:
    """A policy's valid_until: a date is midnight; without an offset it is local time."""
    if "T" in value or " " in value:
        return datetime.fromisoformat(value)
    return datetime.combine(date.fromisoformat(value), datetime.min.time())


def same_valid_until(declared: str, role: Role | None) -> bool:
    """Whether the role expires when the policy says (a role to create never expires). A value without
    an offset is read in the session's TimeZone, as the server reads VALID UNTIL '...'; one with an
    offset is compared as an instant."""
    stored = role.valid_until if role is not None else None
    if declared in NEVER or stored in NEVER:
        return declared in NEVER and stored in NEVER
    if role is None or stored is None or stored == "-infinity":
        return False
    wanted = _instant(declared)
    if wanted.tzinfo is not None:
        return role.valid_until_epoch is not None and abs(wanted.timestamp() - role.valid_until_epoch) < 1e-3
    return datetime.fromisoformat(stored) == wanted


def limits_sql(spec: RoleAttributes, role: Role | None) -> list[tuple[str, sql.Composable]]:
    """(what, SQL) of each declared limit the role lacks: CONNECTION LIMIT, VALID UNTIL."""
    out: list[tuple[str, sql.Composable]] = []
    limit, until = spec.connection_limit, spec.valid_until
    current = role.connlimit if role is not None else -1
    if limit is not None and current != limit:
        was = "" if role is None else f" (it has {'no limit' if current < 0 else current})"
        out.append((f"CONNECTION LIMIT {limit}{was}", sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(limit))))
    if until is not None and not same_valid_until(until, role):
        stored = role.valid_until if role is not None else None
        was = "" if role is None else f" (it {'never expires' if stored in NEVER else f'expires {stored}'})"
        out.append((f"VALID UNTIL {until}{was}", sql.SQL("VALID UNTIL {}").format(sql.Literal(until))))
    return out


def plan_role_attributes(ctx: PlanContext) -> Iterator[Step]:
    """Each role of the policy gets the connection limit, expiry and comment it declares (a key left
    out is left alone)."""
    for name, spec in ctx.policy.attribute_specs():
        role = ctx.snap.role_by_name.get(name)
        ok = ctx.auth.may_alter_role(name, role is not None) and not (role is not None and role.superuser)
        needs = None if ok else (Need.superuser() if role is not None and role.superuser else ALTER_NEED)
        limits = limits_sql(spec, role)
        if limits:
            yield Step(
                Phase.ROLES,
                Action.ROLE_ATTRIBUTE,
                f"role {name}",
                f"the policy says role {name} has " + ", ".join(w for w, _ in limits),
                sql.SQL("ALTER ROLE {} WITH {}").format(sql.Identifier(name), sql.SQL(" ").join(s for _, s in limits)),
                role=name,
                needs=needs,
                allowed=ok,
            )
        comment = spec.comment
        if comment is not None and ((role.comment if role is not None else None) or "") != comment:
            text = sql.Literal(comment) if comment else sql.SQL("NULL")
            yield Step(
                Phase.ROLES,
                Action.ROLE_COMMENT,
                f"role {name}",
                f"the policy gives role {name} "
                + (f"the comment {comment!r}" if comment else "no comment")
                + (f" (it has {role.comment!r})" if role is not None and role.comment else ""),
                sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name), text),
                role=name,
                needs=needs,
                allowed=ok,
            )
