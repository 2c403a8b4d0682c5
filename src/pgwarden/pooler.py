"""PgBouncer's auth_user ([pgbouncer]: docs/pgbouncer.md): the lookup routine its auth_query calls, as
the database has it, and the refusal of a superuser auth_user."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pgwarden.errors import PolicyError
from pgwarden.fetch import fetch

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy import Policy
    from pgwarden.snapshot import OutsideGrant, Snapshot

#: The routine's name and shape are PgBouncer's documented ones (auth_query's example).
FUNCTION = "user_lookup"
ARGUMENTS = "i_username text, OUT uname text, OUT phash text"
SEARCH_PATH = "search_path=pg_catalog, pg_temp"

#: Its body: the verifier of a login that is not a superuser and whose VALID UNTIL has not passed;
#: nothing (no row's values) for any other name, so PgBouncer refuses it.
SOURCE = """
BEGIN
  SELECT s.usename::text, s.passwd::text INTO uname, phash
  FROM pg_catalog.pg_shadow s
  WHERE s.usename = i_username AND NOT s.usesuper
    AND (s.valuntil IS NULL OR s.valuntil > pg_catalog.now());
  RETURN;
END
"""


@dataclass(frozen=True, slots=True)
class PoolerState:
    """queries/pooler.sql: the lookup routine and its schema, and what the auth_user reads itself."""

    schema_exists: bool
    schema_owner_is_superuser: bool | None
    schema_grants: list[str]  # "grantee:PRIVILEGE", the owner's left out
    function_exists: bool
    source: str | None
    language: str | None
    security_definer: bool | None
    config: list[str] | None
    result: str | None
    arguments: str | None
    owner_is_superuser: bool | None
    function_grants: list[str]
    overloads: int
    auth_superuser: bool | None  # None: the auth_user does not exist (yet)
    auth_reads_secrets: bool | None  # SELECT on pg_authid.rolpassword or pg_shadow.passwd, by any path
    auth_reads_through: list[str]  # roles it is a member of that give it that
    auth_member_of: list[str]  # its direct memberships


def read_pooler(conn: psycopg.Connection[Any], policy: Policy) -> PoolerState | None:
    """The state of the policy's [pgbouncer] routine in the database `conn` is connected to (one query)."""
    spec = policy.pgbouncer
    if spec is None:
        return None
    params = {"schema": spec.lookup_schema, "function": FUNCTION, "auth_user": spec.auth_user}
    return fetch(conn, "pooler", PoolerState, params)[0]


def with_pooler(conn: psycopg.Connection[Any], policy: Policy, snap: Snapshot) -> Snapshot:
    """`snap` with the routine's state, and without the routine's own grants among the outside grants
    (plan/outside.py would revoke the auth_user's EXECUTE; rules/cluster.py would report it)."""
    outside = tuple(g for g in snap.outside if not is_lookup_grant(policy, snap, g))
    return replace(snap, pooler=read_pooler(conn, policy), outside=outside)


def auth_query(policy: Policy) -> str:
    """What pgbouncer.ini's auth_query says."""
    schema = policy.pgbouncer.lookup_schema if policy.pgbouncer else "pgbouncer"
    return sql.SQL("SELECT uname, phash FROM {}($1)").format(sql.Identifier(schema, FUNCTION)).as_string(None)


def is_lookup_grant(policy: Policy, snap: Snapshot, grant: OutsideGrant) -> bool:
    """Whether an outside grant is the routine's own (USAGE on its schema, EXECUTE on it, to the
    auth_user): what [pgbouncer] wants, not what the other planners take away."""
    spec = policy.pgbouncer
    if spec is None or snap.role_name(grant.grantee) != spec.auth_user:
        return False
    # the server's quote_ident: quoted or not, as the name needs
    schemas = {spec.lookup_schema, sql.Identifier(spec.lookup_schema).as_string(None)}
    if grant.kind == "schema":
        return grant.ident in schemas and grant.privilege == "USAGE"
    routines = {f"{s}.{FUNCTION}(text)" for s in schemas}
    return grant.kind == "routine" and grant.ident in routines and grant.privilege == "EXECUTE"


def refuse_superuser(policy: Policy, snap: Snapshot) -> None:
    """apply's refusal, before anything runs: PgBouncer must not log in as a superuser to look up secrets."""
    spec = policy.pgbouncer
    role = snap.role_by_name.get(spec.auth_user) if spec else None
    if spec is not None and role is not None and role.superuser:
        ident = sql.Identifier(spec.auth_user).as_string(None)
        raise PolicyError(
            f"[pgbouncer] auth_user {spec.auth_user} is a superuser: PgBouncer would keep a superuser's "
            "password and session to look up every login's secret; nothing was changed",
            hint=f"make it an ordinary login (ALTER ROLE {ident} NOSUPERUSER, as a superuser), or name another "
            "login of [[roles]] as auth_user",
        )
