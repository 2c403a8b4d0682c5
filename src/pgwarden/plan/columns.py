"""Planner for column privileges in the managed schemas: the policy grants on whole tables only, so
every column-level grant (an UPDATE (name) for a readonly role, a SELECT (secret) for PUBLIC) is
revoked; the roles the policy ignores keep theirs."""

from __future__ import annotations

from collections import defaultdict

from psycopg import sql

from pgwarden.acl import Grantee, show
from pgwarden.findings import display_name
from pgwarden.kinds import ordered
from pgwarden.plan.context import PlanContext, grantee_sql
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step, acl_subject
from pgwarden.profiles import profile

R = Requirement


def plan_columns(ctx: PlanContext) -> None:
    snap = ctx.snap
    schemas = {s.oid: s.name for s in snap.schemas if s.name in ctx.policy.database.schemas}
    # (relation, grantee, privilege) -> columns, in the order the snapshot lists them
    revokes: dict[tuple[int, Grantee, str], list[str]] = defaultdict(list)
    tables = {}
    for col in snap.columns:
        if col.schema not in schemas:
            continue
        tables[col.relation] = col
        for g in col.acl:
            grantee = snap.role_name(g.grantee)
            if grantee is not None and grantee in ctx.ignore:
                continue
            revokes[(col.relation, grantee, g.privilege)].append(col.column)
    for (relation, grantee, privilege), columns in revokes.items():
        t = tables[relation]
        _revoke(ctx, schemas[t.schema], t.table, t.owner, relation, grantee, privilege, columns)


def _revoke(
    ctx: PlanContext,
    schema: str,
    table: str,
    owner_oid: int,
    relation: int,
    grantee: Grantee,
    privilege: str,
    columns: list[str],
) -> None:
    owner = ctx.snap.role_name(owner_oid) or ""
    allowed = ctx.auth.acts_as(owner)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in dict.fromkeys(columns))
    statement = sql.SQL("REVOKE {} ({}) ON TABLE {} FROM {} CASCADE").format(
        sql.SQL(ordered([privilege])[0]), cols, sql.Identifier(schema, table), grantee_sql(grantee)
    )
    names = ", ".join(dict.fromkeys(columns))
    label = f"{privilege} ({names}) of table {display_name(schema, table)}"
    level = next((a.level for a in ctx.policy.access if a.name == grantee), None)
    if level is None:
        why = "not in the policy"
    elif profile(level).allows("table", privilege):
        why = f"already part of its table-level grant ({level})"
    else:
        why = f"more than its level ({level})"
    ctx.add(
        Step(
            Phase.DATABASE,
            Action.REVOKE,
            label,
            f"{show(grantee)} must hold no column privilege: the policy grants on whole tables only; "
            f"{privilege} on {names} is {why}",
            statement,
            role=grantee,
            destructive=True,
            needs=None if allowed else Need.of((R.PRIVILEGES_OF, owner), note="the owner of the table"),
            allowed=allowed,
            change="revoke",
            subject=acl_subject("pg_attribute", relation, grantee),
        )
    )
