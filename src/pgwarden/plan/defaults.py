"""Planner for the owner's default privileges: what its future objects give the access roles."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden import acl
from pgwarden.acl import PUBLIC, Change, ChangeAction, Grantee, Wanted, show
from pgwarden.kinds import PROFILE_FIELDS, kind
from pgwarden.plan.context import PlanContext, acl_statement, default_privileges_prefix
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.scopes import PUBLIC_ROLE
from pgwarden.snapshot import Acl

R = Requirement


def plan_default_privileges(ctx: PlanContext) -> Iterator[Step]:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    owner_role = snap.role_by_name.get(owner)
    schema_oids = {s.name: s.oid for s in snap.schemas}
    rows: dict[tuple[int, str], Acl] = {
        (d.schema, d.objtype): d.acl for d in snap.default_acls if owner_role and d.role == owner_role.oid
    }
    ok = auth.superuser or (owner in auth.member_of if not snap.caps.membership_options else auth.acts_as(owner))
    needs = Need.of((R.MEMBERSHIP, owner))
    kinds: list[str] = ["table", "sequence", "type"]
    if policy.hardening.revoke_public_execute:
        kinds.append("routine")
    for schema in policy.database.schemas:
        oid = schema_oids.get(schema)
        for kind_name in kinds:
            code = kind(kind_name).defacl_code or ""
            entries = rows.get((oid, code), frozenset()) if oid is not None else frozenset()
            expected: dict[Grantee, frozenset[str]] = {
                a.name: ctx.grants.defaults(a.name, kind_name, schema) for a in policy.access
            }
            tolerated: dict[Grantee, frozenset[str]] = {}
            # what PUBLIC may keep (types' USAGE; routines are here only with the hardening) is left as it is
            if kept := kind(kind_name).kept_from_public(policy.hardening.revoke_public_execute):
                tolerated[PUBLIC] = kept
            else:
                expected[PUBLIC] = ctx.grants.defaults(PUBLIC_ROLE, kind_name, schema)
            grantable = {a.name: ctx.grants.options.defaults(a.name, kind_name, schema) for a in policy.access}
            wanted = Wanted(expected, tolerated, ignore=ctx.ignore, grantable=grantable)
            for change in acl.diff(ctx.acl(entries), wanted):
                yield _defacl_step(ctx, change, kind_name, schema, ok, needs)
    yield from _plan_global_defaults(ctx, rows, ok, needs)


def _plan_global_defaults(ctx: PlanContext, rows: dict[tuple[int, str], Acl], ok: bool, needs: Need) -> Iterator[Step]:
    """Global entries replace the built-in default (F1.5): they give the owner its own privileges,
    the roles what their grants' `global_defaults` say, and, with the hardening, PUBLIC no EXECUTE."""
    snap, policy, owner = ctx.snap, ctx.policy, ctx.owner
    for kind_name in PROFILE_FIELDS:
        k = kind(kind_name)
        owner_privs = frozenset(k.owner_privileges(snap.caps.major))
        code = k.defacl_code or ""
        if (0, code) in rows:
            actual = ctx.acl(rows[(0, code)])
        else:  # the built-in default: the owner's privileges, and PUBLIC's EXECUTE on routines, USAGE on types
            actual = acl.held({owner: owner_privs, **({PUBLIC: k.public} if k.public else {})})
        tolerated: dict[Grantee, frozenset[str]] = {}
        if kept := k.kept_from_public(policy.hardening.revoke_public_execute):  # routines' EXECUTE, types' USAGE
            tolerated[PUBLIC] = kept
        everywhere: dict[Grantee, frozenset[str]] = {owner: owner_privs}
        for a in policy.access:  # a grant's global_defaults
            everywhere[a.name] = ctx.grants.global_defaults(a.name, kind_name)
        if PUBLIC not in tolerated:
            everywhere[PUBLIC] = ctx.grants.global_defaults(PUBLIC_ROLE, kind_name)
        grantable = {a.name: ctx.grants.options.global_defaults(a.name, kind_name) for a in policy.access}
        wanted = Wanted(everywhere, tolerated, owner=owner, ignore=ctx.ignore, grantable=grantable)
        for change in acl.diff(actual, wanted):
            yield _defacl_step(ctx, change, kind_name, None, ok, needs)


def _defacl_step(ctx: PlanContext, change: Change, kind_name: str, schema: str | None, ok: bool, needs: Need) -> Step:
    owner = ctx.owner
    prefix = default_privileges_prefix(owner, schema)
    body = acl_statement(change, sql.SQL(kind(kind_name).all_word or ""))
    if change.action == ChangeAction.GRANT:
        reason = (
            f"{kind_name}s {owner} creates later in schema {schema} must be usable by {show(change.grantee)} "
            "with no further run"
            if schema
            else f"the owner keeps its own privileges on {kind_name}s it creates"
            if change.grantee == owner
            else f"{kind_name}s {owner} creates later in any schema must be usable by {show(change.grantee)}"
        )
    elif change.action == ChangeAction.REVOKE:
        if change.grantee is None and kind_name == "routine" and schema is None:
            reason = "hardening: functions the owner creates later must not be executable by PUBLIC"
        else:
            where = f"in schema {schema}" if schema else "in every schema"
            reason = (
                f"{kind_name}s {owner} creates later {where} must not give {show(change.grantee)} more than the policy"
            )
    else:
        reason = f"{show(change.grantee)} must not be able to grant privileges on future {kind_name}s"
    label = f"default privileges of {owner} on {kind_name}s" + (f" in schema {schema}" if schema else "")
    return Step(
        Phase.DATABASE,
        Action.DEFAULT_PRIVILEGES,
        label,
        reason,
        sql.SQL("{} {}").format(prefix, body),
        role=change.grantee,
        destructive=change.action != ChangeAction.GRANT and change.grantee is not None,
        needs=None if ok else needs,
        allowed=ok,
        change=change.action.value,
    )
