"""Materialized views an access role may refresh (a database's `refresh`): MAINTAIN on PostgreSQL 17+;
on 14-16, where only the owner may refresh, an owner-owned SECURITY DEFINER routine per role and schema
that refreshes the declared views only, and that only that role may run (docs/policy.md#refresh)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from pgwarden.policy import Policy, split_qualified
from pgwarden.policy.refresh import ROUTINE_PREFIX

if TYPE_CHECKING:
    from pgwarden.scopes import Scopes
    from pgwarden.snapshot import ObjectGroup

#: The routine's arguments as pg_get_function_identity_arguments prints them.
ARGS = "matview regclass, concurrent boolean"
#: Its fixed search_path (pg_proc.proconfig): nothing of the caller's is looked up.
SEARCH_PATH = "search_path=pg_catalog, pg_temp"


@dataclass(frozen=True)
class Refresh:
    """The views of one schema one role may refresh, and the routine that does it on 14-16."""

    role: str
    schema: str
    views: tuple[str, ...]  # names in `schema`

    @property
    def routine(self) -> str:
        return routine_name(self.role)

    @property
    def label(self) -> str:
        return f"function {self.schema}.{self.routine}({ARGS})"


def routine_name(role: str) -> str:
    return ROUTINE_PREFIX + role


def is_routine_name(name: str) -> bool:
    """Whether `name` is a refresh routine's, of some role (queries/refresh_routines.sql reads them)."""
    return name.startswith(ROUTINE_PREFIX) and len(name) > len(ROUTINE_PREFIX)


def declared(policy: Policy) -> tuple[Refresh, ...]:
    """The policy's refreshes, one per (role, schema), views in the order the file gives them."""
    by: dict[tuple[str, str], dict[str, None]] = {}
    for entry in policy.database.refresh:
        for view in entry.views:
            schema, name = split_qualified(view)
            by.setdefault((entry.role, schema), {})[name] = None
    return tuple(Refresh(role, schema, tuple(views)) for (role, schema), views in by.items())


def views_by_role(policy: Policy) -> dict[str, frozenset[str]]:
    """role -> the `schema.view` names it may refresh."""
    out: dict[str, set[str]] = {}
    for entry in policy.database.refresh:
        out.setdefault(entry.role, set()).update(entry.views)
    return {role: frozenset(views) for role, views in out.items()}


_BODY = sql.SQL("""
DECLARE
  target record;
BEGIN
  -- the argument is checked against the declared views here, on the server: nothing else is refreshed
  SELECT n.nspname::text AS nsp, c.relname::text AS rel INTO target
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = matview AND c.relkind = 'm';
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM (VALUES {allowed}) AS allowed(nsp, rel)
                              WHERE allowed.nsp = target.nsp AND allowed.rel = target.rel) THEN
    RAISE EXCEPTION 'pgwarden: % may not refresh %', {role}, matview
      USING ERRCODE = 'insufficient_privilege', HINT = {hint};
  END IF;
  IF concurrent THEN
    EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I', target.nsp, target.rel);
  ELSE
    EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW %I.%I', target.nsp, target.rel);
  END IF;
END
""")


def source(refresh: Refresh) -> str:
    """The routine's body, composed by psycopg (every name a literal), so that what the server stores
    (pg_proc.prosrc) is exactly this text and check compares it."""
    allowed = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(refresh.schema), sql.Literal(v)) for v in refresh.views
    )
    hint = f"the policy lets {refresh.role} refresh only: " + ", ".join(f"{refresh.schema}.{v}" for v in refresh.views)
    return _BODY.format(allowed=allowed, role=sql.Literal(refresh.role), hint=sql.Literal(hint)).as_string(None)


def function(refresh: Refresh) -> sql.Composed:
    return sql.SQL("{}(matview regclass, concurrent boolean)").format(sql.Identifier(refresh.schema, refresh.routine))


def create_sql(refresh: Refresh) -> sql.Composed:
    """CREATE OR REPLACE (then owned by the owner, who owns the views, hence may refresh them)."""
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {}(matview regclass, concurrent boolean DEFAULT false) RETURNS void "
        "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}"
    ).format(sql.Identifier(refresh.schema, refresh.routine), sql.Literal(source(refresh)))


def owner_sql(refresh: Refresh, owner: str) -> sql.Composed:
    """The routine runs with its owner's rights: the policy's owner, who owns the views."""
    return sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(function(refresh), sql.Identifier(owner))


def revoke_sql(refresh: Refresh, others: tuple[str, ...]) -> sql.Composed:
    """EXECUTE taken from PUBLIC and from the roles the owner's default privileges give it to."""
    who = sql.SQL(", ").join([sql.SQL("PUBLIC"), *(sql.Identifier(r) for r in others if r != refresh.role)])
    return sql.SQL("REVOKE ALL ON FUNCTION {} FROM {}").format(function(refresh), who)


def grant_sql(refresh: Refresh) -> sql.Composed:
    return sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(function(refresh), sql.Identifier(refresh.role))


def executable(
    scopes: Scopes, holders: Iterable[str], schema: str, groups: Iterable[ObjectGroup], held: bool, total: int
) -> int:
    """Of the `total` routines of `schema` (`groups`), how many `holders` must be able to run, given
    whether their profiles give EXECUTE on the schema's routines (`held`): a refresh routine is its role's alone."""
    mine = set(holders)
    count = total if held else 0
    for group in groups:
        for o in group.objects or ():
            owner = scopes.refresh_routine_of(schema, f"{o.name}({o.args or ''})")
            if owner is not None and (owner in mine) != held:
                count += 1 if owner in mine else -1
    return count
