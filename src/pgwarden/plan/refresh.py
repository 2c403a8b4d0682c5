"""Planner for the refresh routines (PostgreSQL 14-16): each role that may refresh materialized views gets,
in each schema of those views, an owner-owned SECURITY DEFINER routine that refreshes them and nothing
else; made, or made again when changed (17+ grants MAINTAIN instead: plan/objects.py, through scopes)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Step
from pgwarden.plan.model import Requirement as R
from pgwarden.policy import Policy
from pgwarden.policy.refresh import ROUTINE_PREFIX
from pgwarden.refresh import (
    ARGS,
    SEARCH_PATH,
    Refresh,
    create_sql,
    declared,
    grant_sql,
    owner_sql,
    revoke_sql,
    source,
)
from pgwarden.snapshot import RefreshRoutine, Snapshot


def subject(refresh: Refresh) -> tuple[str, str, str]:
    """What rule refresh.missing and these steps are about: one finding per routine."""
    return ("refresh", refresh.schema, refresh.routine)


def installed(snap: Snapshot, refresh: Refresh) -> RefreshRoutine | None:
    return next(
        (
            r
            for r in snap.refresh_routines
            if r.schema == refresh.schema and r.name == refresh.routine and r.args == ARGS
        ),
        None,
    )


def problems(snap: Snapshot, owner: str, refresh: Refresh) -> list[str]:
    """What is wrong with the refresh routine of `refresh` as the database has it (nothing: it is as
    pgwarden makes it). Its EXECUTE grants are the object planner's (scopes: the role's alone)."""
    routine = installed(snap, refresh)
    if routine is None:
        return ["it does not exist"]
    out = []
    if routine.source != source(refresh) or routine.language != "plpgsql":
        out.append("its body is not the one the policy's views make")
    if not routine.security_definer:
        out.append("it is not SECURITY DEFINER (it would refresh with the caller's rights)")
    if list(routine.config) != [SEARCH_PATH]:
        out.append("its search_path is not fixed to pg_catalog, pg_temp")
    if snap.role_name(routine.owner) != owner:
        out.append(f"it is owned by {snap.role_name(routine.owner)}, not by the owner {owner}")
    others = [e for e in routine.executors if e != refresh.role]
    if others:
        out.append(f"{', '.join(others)} may run it too")
    if refresh.role not in routine.executors:
        out.append(f"{refresh.role} may not run it")
    return out


def plan_refresh(ctx: PlanContext) -> Iterator[Step]:
    """On 14-16, each declared refresh routine made (again) where it is missing or its body, SECURITY
    DEFINER or search_path differ; EXECUTE is then taken from PUBLIC and from the roles the owner's
    default privileges give it to, and granted to the role."""
    snap = ctx.snap
    if snap.database is None:
        return
    yield from _drop_leftovers(ctx)
    if snap.caps.has_maintain:
        return
    others = default_grantees(ctx.policy, snap)
    for refresh in declared(ctx.policy):
        routine = installed(snap, refresh)
        wrong = [p for p in problems(snap, ctx.owner, refresh) if " may run it too" not in p and "may not run" not in p]
        if not wrong or (routine is not None and snap.role_name(routine.owner) != ctx.owner and len(wrong) == 1):
            continue  # as it should be; or only its owner differs, which the object planner moves
        why = (
            f"the policy lets {refresh.role} refresh {', '.join(f'{refresh.schema}.{v}' for v in refresh.views)}; "
            f"before PostgreSQL 17 only the owner may, so this owner-owned routine does it for {refresh.role} "
            f"(now {'; '.join(wrong)})"
        )
        statements = [("create", create_sql(refresh))]
        # new: made by the admin, given to the owner; the EXECUTE that CREATE gives PUBLIC by default goes
        # at once (revoke-default: it takes nothing that existed away, so additive mode runs it too)
        if routine is None:
            statements += [
                ("alter-owner", owner_sql(refresh, ctx.owner)),
                ("revoke-default", revoke_sql(refresh, others)),
            ]
            statements += [("grant", grant_sql(refresh))]  # existing grants are the object planner's
        for change, statement in statements:
            yield Step(
                Phase.DATABASE,
                Action.REFRESH_ROUTINE,
                refresh.label,
                why,
                statement,
                role=refresh.role,
                needs=None if ctx.auth.acts_as(ctx.owner) else Need.of((R.MEMBERSHIP, ctx.owner)),
                allowed=ctx.auth.acts_as(ctx.owner),
                subject=subject(refresh),
                change=change,
            )


def _drop_leftovers(ctx: PlanContext) -> Iterator[Step]:
    """Each refresh routine pgwarden made for a refresh the policy no longer declares, dropped (every
    version: on 17+ too, where one made before an upgrade outlives its purpose). Left, the profiles'
    EXECUTE on the schema's routines would let every access role refresh its views as the owner."""
    for (schema, name), routine in sorted(ctx.refresh_leftovers.items()):
        owner = ctx.snap.role_name(routine.owner) or str(routine.owner)
        runs = ", ".join(routine.executors) or "nobody but its owner"
        statement = sql.SQL("DROP FUNCTION {}({})").format(sql.Identifier(schema, routine.name), sql.SQL(ARGS))
        yield Step(
            Phase.DATABASE,
            Action.REFRESH_ROUTINE,
            f"function {schema}.{name}",
            f"pgwarden made this SECURITY DEFINER routine so that {routine.name.removeprefix(ROUTINE_PREFIX)} "
            f"could refresh materialized views; the policy no longer declares that refresh, and whoever may run "
            f"it (now: {runs}) refreshes them as {owner}",
            statement,
            destructive=True,
            needs=None if ctx.auth.acts_as(owner) else Need.of((R.MEMBERSHIP, owner)),
            allowed=ctx.auth.acts_as(owner),
            subject=("refresh", schema, routine.name),
            change="drop",
        )


def default_grantees(policy: Policy, snap: Snapshot) -> tuple[str, ...]:
    """Roles that may hold EXECUTE on a routine the owner creates: those the owner's default privileges
    on functions give it to, and the policy's access roles."""
    owner = snap.role_by_name.get(policy.owner.name)
    names: dict[str, None] = {}
    for d in snap.default_acls:
        if owner is not None and d.role == owner.oid and d.objtype == "f":
            for entry in d.acl:
                if entry.grantee not in (0, owner.oid) and (name := snap.role_name(entry.grantee)):
                    names[name] = None
    names.update((a.name, None) for a in policy.access)
    return tuple(names)
