"""Planner for the types and domains of the managed schemas: the owner owns them too."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import display_name
from pgwarden.kinds import kind
from pgwarden.plan.context import PlanContext, owner_step
from pgwarden.plan.model import Need, Requirement, Step, owner_subject

R = Requirement


def plan_types(ctx: PlanContext) -> Iterator[Step]:
    """ALTER TYPE / DOMAIN ... OWNER TO the owner for every type of a managed schema it does not own
    (the snapshot lists only those). Their USAGE is PUBLIC's by default and left as it is."""
    snap, auth, owner = ctx.snap, ctx.auth, ctx.owner
    schemas = {s.oid: s.name for s in snap.schemas}
    k = kind("type")
    for t in snap.types:
        current = snap.role_name(t.owner) or ""
        if current == owner or t.schema not in schemas:
            continue
        sub = k.subkind(t.subkind)
        ok = auth.superuser or (auth.acts_as(current) and auth.may_set(owner))
        yield owner_step(
            f"{sub.label} {display_name(schemas[t.schema], t.name)}",
            sql.SQL("{} {}").format(sql.SQL(sub.sql_word), sql.Identifier(schemas[t.schema], t.name)),
            f"every object in the managed schemas must be owned by {owner} (now {current})",
            owner,
            ok,
            Need.of((R.MEMBERSHIP, current), (R.MEMBERSHIP, owner)),
            role=current,
            subject=owner_subject("pg_type", t.oid),
        )
