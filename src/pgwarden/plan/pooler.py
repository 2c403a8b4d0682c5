"""Planner for [pgbouncer]: the lookup routine PgBouncer's auth_query calls (docs/pgbouncer.md), owned by
a superuser (only one can read pg_authid on 14-18), with a fixed search_path, executable by the
auth_user only, in a schema only the auth_user may use. Installed, repaired and judged like the guard."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Statement, Step
from pgwarden.pooler import ARGUMENTS, FUNCTION, SEARCH_PATH, SOURCE, PoolerState

SUBJECT_KIND = "pooler"


def _installed(state: PoolerState, auth_user: str) -> bool:
    """Whether the routine is exactly pgwarden's: the one routine of that name, this body and
    signature, SECURITY DEFINER with the fixed search_path, owned by a superuser, EXECUTE for the
    auth_user only; its schema owned by a superuser, USAGE for the auth_user only."""
    return (
        state.function_exists
        and state.overloads == 1
        and state.source == SOURCE
        and state.language == "plpgsql"
        and bool(state.security_definer)
        and tuple(state.config or ()) == (SEARCH_PATH,)
        and state.arguments == ARGUMENTS
        and state.result == "record"
        and bool(state.owner_is_superuser)
        and state.function_grants == [f"{auth_user}:EXECUTE"]
        and bool(state.schema_owner_is_superuser)
        and state.schema_grants == [f"{auth_user}:USAGE"]
    )


def plan_pooler(ctx: PlanContext) -> Iterator[Step]:
    """Install or repair the routine in this database (nothing for a superuser auth_user: apply refuses
    it, check reports it)."""
    spec, state = ctx.policy.pgbouncer, ctx.snap.pooler
    if spec is None or ctx.snap.database is None or state is None or state.auth_superuser:
        return
    if _installed(state, spec.auth_user):
        return
    schema, user = sql.Identifier(spec.lookup_schema), sql.Identifier(spec.auth_user)
    function = sql.Identifier(spec.lookup_schema, FUNCTION)
    why = "installed" if not state.function_exists else "repaired (it was changed)"
    others = sorted({g.split(":")[0] for g in state.schema_grants} | {"PUBLIC"})
    grantees = sql.SQL(", ").join(sql.SQL(g) if g == "PUBLIC" else sql.Identifier(g) for g in others)
    create = sql.SQL(
        "CREATE FUNCTION {}(i_username text, OUT uname text, OUT phash text) RETURNS record LANGUAGE plpgsql "
        "STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}"
    ).format(function, sql.Literal(SOURCE))
    steps: list[tuple[str, Statement]] = [
        ("drop", sql.SQL("DROP FUNCTION IF EXISTS {}(text)").format(function)),
        ("create-schema", sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema)),
        ("alter-owner", sql.SQL("ALTER SCHEMA {} OWNER TO CURRENT_USER").format(schema)),
        ("revoke", sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, grantees)),
        ("grant", sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, user)),
        ("create", create),
        ("revoke", sql.SQL("REVOKE ALL ON FUNCTION {}(text) FROM PUBLIC").format(function)),
        ("grant", sql.SQL("GRANT EXECUTE ON FUNCTION {}(text) TO {}").format(function, user)),
    ]
    ok = ctx.auth.superuser
    reason = (
        f"PgBouncer's lookup routine for auth_user {spec.auth_user} must be {why}: owned by a superuser (only "
        "one may read pg_authid), with a fixed search_path, callable by the auth_user only"
    )
    for change, statement in steps:
        yield Step(
            Phase.DATABASE,
            Action.POOLER,
            f"function {spec.lookup_schema}.{FUNCTION}(text)",
            reason,
            statement,
            role=spec.auth_user,
            needs=None if ok else Need.superuser(),
            allowed=ok,
            subject=(SUBJECT_KIND, spec.lookup_schema),
            change=change,
        )
