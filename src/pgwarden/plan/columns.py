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
    """Managed schemas: every column grant goes. System catalogs: what the policy's roles were granted
    beyond what initdb gave (SELECT (rolpassword) ON pg_authid, say); PUBLIC's there is left alone."""
    snap = ctx.snap
    schemas = {s.oid: s.name for s in snap.schemas}
    schemas |= {c.schema: c.schema_name for c in snap.columns if c.system}  # pg_catalog, information_schema
    managed = {s.oid for s in snap.schemas if s.name in ctx.policy.database.schemas}
    policy_roles = set(ctx.policy.role_names)
    # (relation, grantee, privilege) -> columns, in the order the snapshot lists them
    revokes: dict[tuple[int, Grantee, str], list[str]] = defaultdict(list)
    tables = {}
    for col in snap.columns:
        if col.schema not in managed and not col.system:
            continue
        tables[col.relation] = col
        initial = {(g.grantee, g.privilege) for g in col.initial}
        for g in col.acl:
            grantee = snap.role_name(g.grantee)
            if grantee is not None and grantee in ctx.ignore:
                continue
            if col.system and (grantee not in policy_roles or (g.grantee, g.privilege) in initial):
                continue
            revokes[(col.relation, grantee, g.privilege)].append(col.column)
    for (relation, grantee, privilege), columns in revokes.items():
        t = tables[relation]
        _revoke(ctx, schemas[t.schema], t.table, t.owner, relation, grantee, privilege, columns, t.system)


def _revoke(
    ctx: PlanContext,
    schema: str,
    table: str,
    owner_oid: int,
    relation: int,
    grantee: Grantee,
    privilege: str,
    columns: list[str],
    system: bool,
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
    if system:
        why = "beyond what the server gives on its own catalogs"
    elif level is None:
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
