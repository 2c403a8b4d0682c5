"""Planner for the guard: an event trigger that refuses, at DDL time, objects in the managed schemas
(and the schemas themselves) that the owner would not own (a migration run by a member of the owner
without SET ROLE, by postgres, by the app; ALTER ... OWNER TO another role). Judged by what it does,
installed, repaired and removed like any object pgwarden manages (docs/guard.md)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Statement, Step
from pgwarden.plan.outside import dangerous_settings
from pgwarden.snapshot import GuardState

SCHEMA = "pgwarden"
FUNCTION = "guard"
TRIGGER = "pgwarden_guard"
SUBJECT = ("guard", TRIGGER)
SEARCH_PATH = "search_path=pg_catalog, pg_temp"

#: Catalogs whose objects have an owner, and its column: the owner of what a DDL command made.
_OWNER_COLUMNS = (
    ("pg_namespace", "nspowner"),
    ("pg_class", "relowner"),
    ("pg_proc", "proowner"),
    ("pg_type", "typowner"),
    ("pg_collation", "collowner"),
    ("pg_conversion", "conowner"),
    ("pg_operator", "oprowner"),
    ("pg_opclass", "opcowner"),
    ("pg_opfamily", "opfowner"),
    ("pg_ts_config", "cfgowner"),
    ("pg_ts_dict", "dictowner"),
    ("pg_statistic_ext", "stxowner"),
)


_BODY = sql.SQL("""
DECLARE
  obj record;
  made_by text;
BEGIN
  FOR obj IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
    -- a managed schema itself (ALTER SCHEMA ... OWNER TO, CREATE SCHEMA ... AUTHORIZATION) or an object in one
    CONTINUE WHEN obj.in_extension OR (COALESCE(obj.schema_name, CASE WHEN obj.classid =
      'pg_catalog.pg_namespace'::pg_catalog.regclass THEN (SELECT nspname::text FROM pg_catalog.pg_namespace
      WHERE oid = obj.objid) END) = ANY ({schemas})) IS NOT TRUE;
    made_by := CASE obj.classid
{lookups}
    END;
    -- pg_database_owner (15+: public's owner) is whoever owns the database: the owner
    CONTINUE WHEN made_by IS NULL OR made_by = ANY ({allowed}) OR (made_by = 'pg_database_owner'
      AND obj.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass);
    RAISE EXCEPTION 'pgwarden guard: % % would be owned by %, not by the owner %',
      obj.object_type, obj.object_identity, made_by, {owner}
      USING ERRCODE = 'insufficient_privilege', HINT = {hint};
  END LOOP;
END
""")
_LOOKUP = sql.SQL(
    "      WHEN {catalog}::pg_catalog.regclass THEN "
    "(SELECT pg_catalog.pg_get_userbyid({column}) FROM {table} WHERE oid = obj.objid)"
)


def _array(values: list[str]) -> sql.Composed:
    return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(sql.Literal(v) for v in values))


def function_source(schemas: list[str], allowed: list[str], owner: str) -> str:
    """The guard function's body, composed by psycopg (every name a literal or an identifier), so
    the body the server stores (pg_proc.prosrc) is exactly this text, and check compares it."""
    lookups = sql.SQL("\n").join(
        _LOOKUP.format(
            catalog=sql.Literal(f"pg_catalog.{catalog}"),
            column=sql.Identifier(column),
            table=sql.Identifier("pg_catalog", catalog),
        )
        for catalog, column in _OWNER_COLUMNS
    )
    hint = f"run migrations as {owner}: SET ROLE {owner}, or pgwarden run --as owner"
    return _BODY.format(
        schemas=_array(schemas),
        lookups=lookups,
        allowed=_array(allowed),
        owner=sql.Literal(owner),
        hint=sql.Literal(hint),
    ).as_string(None)


def _installed(state: GuardState | None, source: str) -> bool:
    """Whether the guard does what pgwarden installs, whatever its name: fires on every DDL command
    (no tag filter) in every session (ENABLE ALWAYS: also under session_replication_role = replica),
    runs exactly this body as a superuser with a fixed search_path, and nobody else may run it, use
    its schema or own either (an owner may replace or drop what it owns)."""
    if state is None or state.source is None:
        return False
    return (
        state.trigger_enabled == "A"
        and state.trigger_event == "ddl_command_end"
        and state.trigger_tags is None
        and bool(state.trigger_calls_function)
        and state.source == source
        and state.language == "plpgsql"
        and bool(state.security_definer)
        and state.config == (SEARCH_PATH,)
        and bool(state.owner_is_superuser)
        and bool(state.function_private)
        and bool(state.schema_owner_is_superuser)
        and bool(state.schema_private)
    )


def plan_guard(ctx: PlanContext) -> Iterator[Step]:
    """Install (or repair) the guard when the policy enables it; remove it when it does not."""
    if ctx.snap.database is None:
        return
    state = ctx.snap.guard
    policy = ctx.policy
    if policy.guard.enabled:
        schemas = list(policy.database.schemas)
        allowed = [ctx.owner, *policy.ignore.roles]
        source = function_source(schemas, allowed, ctx.owner)
        if not _installed(state, source):
            why = "installed" if state is None or state.source is None else "repaired (it was changed or disabled)"
            for label, change, statement in _install(source, state):
                yield from _add(
                    ctx,
                    label,
                    change,
                    statement,
                    f"the guard must be {why}: it refuses objects the owner would not own",
                )
        yield from _plan_switches(ctx)
        return
    if state is not None and (state.source is not None or state.trigger_enabled is not None):
        for label, change, statement in _remove(state):
            yield from _add(ctx, label, change, statement, "the policy does not enable the guard: pgwarden removes it")


_SCHEMA_LABEL, _FUNCTION_LABEL, _TRIGGER_LABEL = (
    f"schema {SCHEMA}",
    f"function {SCHEMA}.{FUNCTION}()",
    f"event trigger {TRIGGER}",
)


def _install(source: str, state: GuardState | None) -> list[tuple[str, str, Statement]]:
    """(object label, what the statement does to it, statement): trigger and function dropped, then
    schema, function and trigger made anew, whatever was changed (a fresh function has no grant but
    PUBLIC's, which is revoked; the admin, a superuser, owns the schema and the function)."""
    schema, function, trigger = sql.Identifier(SCHEMA), sql.Identifier(SCHEMA, FUNCTION), sql.Identifier(TRIGGER)
    create_function = sql.SQL(
        "CREATE OR REPLACE FUNCTION {}() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog, pg_temp AS {}"
    ).format(function, sql.Literal(source))
    grantees = ["PUBLIC", *(g for g in (state.schema_grantees if state else ()) if g != "PUBLIC")]
    revoke_schema = sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(
        schema, sql.SQL(", ").join(sql.SQL(g) if g == "PUBLIC" else sql.Identifier(g) for g in grantees)
    )
    return [
        (_TRIGGER_LABEL, "drop", sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(trigger)),
        (_FUNCTION_LABEL, "drop", sql.SQL("DROP FUNCTION IF EXISTS {}()").format(function)),
        (_SCHEMA_LABEL, "create", sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema)),
        (_SCHEMA_LABEL, "alter-owner", sql.SQL("ALTER SCHEMA {} OWNER TO CURRENT_USER").format(schema)),
        (_SCHEMA_LABEL, "revoke", revoke_schema),
        (_FUNCTION_LABEL, "create", create_function),
        (_FUNCTION_LABEL, "revoke", sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(function)),
        (
            _TRIGGER_LABEL,
            "create",
            sql.SQL("CREATE EVENT TRIGGER {} ON ddl_command_end EXECUTE FUNCTION {}()").format(trigger, function),
        ),
        (_TRIGGER_LABEL, "enable", sql.SQL("ALTER EVENT TRIGGER {} ENABLE ALWAYS").format(trigger)),
    ]


#: event_triggers (17+, superuser-only) switches every event trigger off in the sessions it is set for.
_SWITCH = "event_triggers"


def _plan_switches(ctx: PlanContext) -> Iterator[Step]:
    """A stored `event_triggers = off` (ALTER ROLE [ALL] [IN DATABASE] / ALTER DATABASE ... SET, which
    a superuser made) switches the guard off for those sessions: it is reset, whatever the level."""
    snap, db = ctx.snap, ctx.policy.database.name
    # those plan/outside.py resets already (a policy role's, the database's): one step per problem
    elsewhere = {(role, database) for role, database, param in dangerous_settings(ctx) if param == _SWITCH}
    for s in snap.role_settings:
        for setting in s.settings:
            name, _, value = setting.partition("=")
            if name.strip().lower() != _SWITCH or value.strip().lower() in ("on", "true", "yes", "1"):
                continue
            role = snap.role_name(s.role) if s.role else None
            if (role, s.database) in elsewhere:
                continue
            if s.role == 0:
                head = (
                    sql.SQL("ALTER DATABASE {}").format(sql.Identifier(db)) if s.database else sql.SQL("ALTER ROLE ALL")
                )
                who = "every role" + (f" in database {db}" if s.database else "")
            else:
                head = sql.SQL("ALTER ROLE {}").format(sql.Identifier(role or str(s.role)))
                if s.database:
                    head = sql.SQL("{} IN DATABASE {}").format(head, sql.Identifier(db))
                who = f"role {role}" + (f" in database {db}" if s.database else "")
            yield from _add(
                ctx,
                f"setting {_SWITCH} of {who}",
                "reset",
                sql.SQL("{} RESET {}").format(head, sql.Identifier(_SWITCH)),
                f"{_SWITCH} = {value} for {who} switches the guard off in those sessions",
            )


def _remove(state: GuardState) -> list[tuple[str, str, Statement]]:
    out: list[tuple[str, str, Statement]] = [
        (_TRIGGER_LABEL, "drop", sql.SQL("DROP EVENT TRIGGER IF EXISTS {}").format(sql.Identifier(TRIGGER))),
        (_FUNCTION_LABEL, "drop", sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(SCHEMA, FUNCTION))),
    ]
    if state.schema_exists and state.other_objects == 0:
        out.append((_SCHEMA_LABEL, "drop", sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(SCHEMA))))
    return out


def _add(ctx: PlanContext, label: str, change: str, statement: Statement, reason: str) -> Iterator[Step]:
    ok = ctx.auth.superuser  # only a superuser may create an event trigger
    yield Step(
        Phase.DATABASE,
        Action.GUARD,
        label,
        reason,
        statement,
        needs=None if ok else Need.superuser(),
        allowed=ok,
        subject=SUBJECT,
        change=change,
    )
