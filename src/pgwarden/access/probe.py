"""`probe` tries the paths around the policy's exceptions as the role they are excepted from: a read
through the view, the parent, the membership or PUBLIC (always rolled back), or the server's answer
for a routine or trigger (running someone's routine to prove a point is not a probe's business)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pgwarden.access.exceptions import Around, paths_around
from pgwarden.access.facts import Facts, read_exception_facts
from pgwarden.access.model import Model
from pgwarden.access.paths import DERIVED_KINDS, ROLE_KINDS
from pgwarden.caps import Capabilities
from pgwarden.fetch import fetch
from pgwarden.probe.model import Attempt, Outcome
from pgwarden.snapshot import Membership, Role

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy import Policy

ACTION = "read-excepted"


def _statement(facts: Facts, around: Around) -> tuple[str, sql.Composed] | None:
    """("attempt", the read that walks the path) or ("inquiry", the privilege question that proves it)."""
    first = next((h for h in around.path if h.kind not in ROLE_KINDS), None)
    if first is None or first.kind == "superuser":
        return None
    derived = next((h for h in around.path if h.kind in DERIVED_KINDS), None)
    column = facts.column_of(first.name) if first.kind == "column" else None
    name = column[0].ident if column is not None else first.name
    rels = {r.ident: r for r in facts.relations.values()}
    if derived is not None and derived.kind == "trigger":
        fired, _, event = derived.name.rpartition(" (")
        rel = rels.get(fired)
        if rel is None:
            return None
        ask = sql.SQL("SELECT pg_catalog.has_table_privilege(current_user, {}::oid, {})")
        return "inquiry", ask.format(sql.Literal(rel.oid), sql.Literal(event.rstrip(")")))
    routine = next((r for r in facts.routines if r.ident == name), None)
    if routine is not None:
        ask = sql.SQL("SELECT pg_catalog.has_function_privilege(current_user, {}::oid, 'EXECUTE')")
        return "inquiry", ask.format(sql.Literal(routine.oid))
    rel = rels.get(name)
    if rel is None:
        return None
    table = sql.Identifier(rel.schema, rel.name)
    if derived is None and around.column is not None:
        return "attempt", sql.SQL("SELECT {} FROM {} LIMIT 0").format(sql.Identifier(around.column), table)
    return "attempt", sql.SQL("SELECT * FROM {} LIMIT 0").format(table)


def exception_attempts(conn: psycopg.Connection[Any], policy: Policy, levels: Mapping[str, str]) -> list[Attempt]:
    """Each path around an exception tried as the grant's role (SET ROLE from `conn`'s admin, every
    attempt rolled back); allowed is a failure. Three statements besides the attempts; none when the
    policy excepts nothing."""
    import psycopg

    facts = read_exception_facts(conn, policy)
    if facts is None:
        return []
    roles = {r.oid: r for r in fetch(conn, "roles", Role)}
    memberships = tuple(fetch(conn, "memberships", Membership))
    caps = Capabilities(conn.info.server_version)
    model = Model(roles, memberships, facts, caps.membership_options)
    out: list[Attempt] = []
    for around in paths_around(policy, model.accesses()):
        role, how = around.grant.role, _statement(facts, around)
        if how is None or role not in levels:
            continue
        method, statement = how
        where = f"{around.target} by {around.chain()}"
        level = levels[role]
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                row = conn.execute(statement).fetchone()
            allowed = True if method == "attempt" else bool(row and row[0])
            outcome: Outcome = "allowed" if allowed else "denied"
            out.append(
                Attempt(role, level, ACTION, where, False, outcome, "inquiry" if method == "inquiry" else "attempt")
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            out.append(
                Attempt(
                    role, level, ACTION, where, False, "denied", sqlstate=exc.sqlstate, message=str(exc).splitlines()[0]
                )
            )
        except psycopg.Error as exc:
            out.append(
                Attempt(
                    role, level, ACTION, where, False, "error", sqlstate=exc.sqlstate, message=str(exc).splitlines()[0]
                )
            )
    return out
