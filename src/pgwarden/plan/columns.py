"""Planner for column privileges. In the managed schemas a role holds column privileges only where
a grant of the policy excludes columns (`except_columns`): then the grant's SELECT, INSERT, UPDATE
and REFERENCES are given column by column on the other columns, new columns included; every other
column grant (an UPDATE (name) for a readonly role, a SELECT (secret) for PUBLIC) is revoked. The
roles the policy ignores keep theirs. On the system catalogs, what the policy's roles hold beyond
what initdb gave is revoked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from psycopg import sql

from pgwarden import acl
from pgwarden.acl import ChangeAction, Grantee, show
from pgwarden.findings import display_name
from pgwarden.kinds import ordered
from pgwarden.plan.context import PlanContext, grantee_sql
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step, acl_subject
from pgwarden.plan.objects import wanted_for
from pgwarden.scopes import PUBLIC_ROLE
from pgwarden.snapshot import ColumnAcl

R = Requirement

ColumnKey = tuple[int, Grantee, str]  # (relation, grantee, privilege)


def plan_columns(ctx: PlanContext) -> Iterator[Step]:
    """Column grants as the policy's exceptions want them, nothing else (see the module's text)."""
    snap = ctx.snap
    schemas = {s.oid: s.name for s in snap.schemas}
    schemas |= {c.schema: c.schema_name for c in snap.columns if c.system}  # pg_catalog, information_schema
    held, wanted, tables = _columns(ctx, schemas)
    dropped = _dropped_by_table_revokes(ctx, set(tables))
    for key in dict.fromkeys([*held, *wanted]):
        relation, grantee, privilege = key
        t = tables[relation]
        extra = [c for c in held.get(key, []) if c not in wanted.get(key, [])]
        if key in dropped or (relation, grantee, "ALL") in dropped:
            held.pop(key, None)  # plan_objects' table-level REVOKE takes them: grant them again after it
        missing = [c for c in wanted.get(key, []) if c not in held.get(key, [])]
        where = (schemas[t.schema], t.table, t.owner, relation, grantee, privilege)
        if extra:
            yield from _revoke(ctx, *where, extra, t.system)
        if missing:
            yield from _grant(ctx, *where, missing)


_Columns = dict[ColumnKey, list[str]]


def _columns(ctx: PlanContext, schemas: dict[int, str]) -> tuple[_Columns, _Columns, dict[int, ColumnAcl]]:
    """The column privileges held and wanted (each key's columns in the order the snapshot lists them),
    and the tables they are on: the managed schemas' and the system catalogs'."""
    snap = ctx.snap
    managed = {s.oid for s in snap.schemas if s.name in ctx.policy.database.schemas}
    policy_roles = set(ctx.policy.role_names)
    held: _Columns = defaultdict(list)
    wanted: _Columns = defaultdict(list)
    tables: dict[int, ColumnAcl] = {}
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
            held[(col.relation, grantee, g.privilege)].append(col.column)
        if not col.system:
            for role in (*ctx.grants.holders, PUBLIC_ROLE):
                who: Grantee = None if role == PUBLIC_ROLE else role
                for privilege in ctx.grants.on_column(role, schemas[col.schema], col.table, col.column):
                    wanted[(col.relation, who, privilege)].append(col.column)
    return held, wanted, tables


def _dropped_by_table_revokes(ctx: PlanContext, relations: set[int]) -> set[ColumnKey]:
    """(relation, grantee, privilege) whose column privileges plan_objects' table-level REVOKE takes
    away with it (PostgreSQL revokes a table privilege on every column too; REVOKE ALL takes all).
    Tables with column grants are in schemas the policy treats apart, so their groups are named."""
    schemas = {s.oid: s.name for s in ctx.snap.schemas}
    out: set[ColumnKey] = set()
    if ctx.additive:
        return out  # additive mode revokes nothing
    for group in ctx.snap.objects:
        if group.kind != "table" or group.objects is None or group.extension:
            continue
        for obj in group.objects:
            if obj.oid not in relations:
                continue
            wanted = wanted_for(ctx, "table", schemas.get(group.schema, ""), obj.name)
            for change in acl.diff(ctx.acl(group.acl, group.owner), wanted):
                if change.action == ChangeAction.REVOKE:
                    privs = {"ALL"} if change.everything else change.privs
                    out.update((obj.oid, change.grantee, p) for p in privs)
    return out


def _grant(
    ctx: PlanContext,
    schema: str,
    table: str,
    owner_oid: int,
    relation: int,
    grantee: Grantee,
    privilege: str,
    columns: list[str],
) -> Iterator[Step]:
    owner = ctx.snap.role_name(owner_oid) or ""
    allowed = ctx.auth.acts_as(owner)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    names = ", ".join(columns)
    yield Step(
        Phase.DATABASE,
        Action.GRANT,
        f"{privilege} ({names}) of table {display_name(schema, table)}",
        f"{show(grantee)} must have {privilege} on every column of {display_name(schema, table)} "
        "that the policy does not except",
        sql.SQL("GRANT {} ({}) ON TABLE {} TO {}").format(
            sql.SQL(privilege), cols, sql.Identifier(schema, table), grantee_sql(grantee)
        ),
        role=grantee,
        needs=None if allowed else Need.of((R.PRIVILEGES_OF, owner), note="the owner of the table"),
        allowed=allowed,
        change="grant",
        subject=acl_subject("pg_attribute", relation, grantee),
    )


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
) -> Iterator[Step]:
    owner = ctx.snap.role_name(owner_oid) or ""
    allowed = ctx.auth.acts_as(owner)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in dict.fromkeys(columns))
    statement = sql.SQL("REVOKE {} ({}) ON TABLE {} FROM {} CASCADE").format(
        sql.SQL(ordered([privilege])[0]), cols, sql.Identifier(schema, table), grantee_sql(grantee)
    )
    names = ", ".join(dict.fromkeys(columns))
    label = f"{privilege} ({names}) of table {display_name(schema, table)}"
    level = ctx.policy.level_of(grantee) if grantee is not None else None
    if system:
        why = "beyond what the server gives on its own catalogs"
    elif level is None:
        why = "not in the policy"
    elif privilege in ctx.grants.objects(grantee or "", "table", schema, table):
        why = f"already part of its table-level grant ({level})"
    elif ctx.grants.columns(grantee or "", schema, table) is not None:
        why = "on a column the policy excepts"
    else:
        why = f"more than its level ({level})"
    yield Step(
        Phase.DATABASE,
        Action.REVOKE,
        label,
        f"{show(grantee)} must hold no column privilege beyond the policy's column exceptions; "
        f"{privilege} on {names} is {why}",
        statement,
        role=grantee,
        destructive=True,
        needs=None if allowed else Need.of((R.PRIVILEGES_OF, owner), note="the owner of the table"),
        allowed=allowed,
        change="revoke",
        subject=acl_subject("pg_attribute", relation, grantee),
    )
