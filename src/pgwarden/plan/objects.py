"""Planner for the objects of the managed schemas (tables, sequences, routines): ownership and grants,
on lists of names or in bulk (`ON ALL ... IN SCHEMA`), whichever costs the server less."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace

from psycopg import sql

from pgwarden import acl
from pgwarden.acl import PUBLIC, Change, ChangeAction, Grantee, Wanted, show
from pgwarden.findings import display_name
from pgwarden.kinds import PROFILE_KINDS, kind, label
from pgwarden.plan.context import PlanContext, acl_step, owner_step
from pgwarden.plan.model import Need, Requirement, Step, acl_subject, owner_subject
from pgwarden.policy import Policy
from pgwarden.scopes import PUBLIC_ROLE
from pgwarden.snapshot import NAME_THRESHOLD, ObjectGroup, ObjectKind, ObjectRef, Snapshot

R = Requirement

#: Objects named in one GRANT/REVOKE statement at most.
OBJECTS_PER_STATEMENT = 1000

#: A bulk `... ON ALL TABLES IN SCHEMA` scans all of pg_class; a list of names costs one catalog
#: lookup per object. Measured on 16: 110 ms for 1,000 tables among 200,000 relations in bulk,
#: 16 ms as a list. Bulk is used when the change touches at least 1/BULK_FACTOR of the relations.
BULK_FACTOR = 20

PendingKey = tuple[str, ObjectKind, Change]


def wanted_for(
    ctx: PlanContext, kind_name: ObjectKind, schema: str, name: str | None = None, table: str | None = None
) -> Wanted:
    """What the owner and the access roles must hold on an object of a kind in a managed schema
    (`name` None: on every object of a schema the policy treats as a whole)."""
    owner = ctx.owner
    expected: dict[Grantee, frozenset[str]] = {owner: frozenset(kind(kind_name).owner_privileges(ctx.snap.caps.major))}
    tolerated: dict[Grantee, frozenset[str]] = {}
    refresh_routine = kind_name == "routine" and ctx.grants.refresh_routine_of(schema, name) is not None
    if kind_name == "routine" and not ctx.policy.hardening.revoke_public_execute and not refresh_routine:
        # PUBLIC runs them: what the grants give is kept where held, never granted (it adds nothing)
        tolerated[PUBLIC] = frozenset({"EXECUTE"})
        for a in ctx.policy.access:
            tolerated[a.name] = ctx.grants.objects(a.name, kind_name, schema, name, table)
    else:
        for a in ctx.policy.access:
            expected[a.name] = ctx.grants.objects(a.name, kind_name, schema, name, table)
        expected[PUBLIC] = ctx.grants.objects(PUBLIC_ROLE, kind_name, schema, name, table)
    kept = kind(kind_name).kept_from_public(ctx.policy.hardening.revoke_public_execute)
    if kept and PUBLIC not in tolerated and not refresh_routine:  # what PUBLIC may keep (the registry's)
        tolerated[PUBLIC] = kept | expected.pop(PUBLIC, frozenset())
    if kind_name == "table" and ctx.grants.refresh and not ctx.snap.caps.has_maintain:
        # before 17 a refresh is the refresh routine's (plan/refresh.py): there is no MAINTAIN to grant
        expected = {who: privs - {"MAINTAIN"} for who, privs in expected.items()}
    options = ctx.grants.options
    grantable = {a.name: options.objects(a.name, kind_name, schema, name, table) for a in ctx.policy.access}
    return Wanted(expected, tolerated, owner=owner, grantor=owner, ignore=ctx.ignore, grantable=grantable)


def describe(kind_name: ObjectKind, schema: str, objects: Sequence[ObjectRef] | None, count: int) -> str:
    """A step's object label: one object by kind and name, else a count."""
    if objects is not None and len(objects) == 1:
        o = objects[0]
        ident = display_name(schema, o.name) + (f"({o.args})" if kind(kind_name).signed else "")
        return f"{label(kind_name, o.subkind)} {ident}"
    return f"{count} {kind(kind_name).plural} in schema {schema}"


def object_sql(kind_name: ObjectKind, schema: str, obj: ObjectRef) -> sql.Composable:
    name = sql.Identifier(schema, obj.name)
    if kind(kind_name).signed:
        # Identity arguments come from pg_get_function_identity_arguments(): type names quoted
        # by the server itself, never user input.
        return sql.SQL("{}({})").format(name, sql.SQL(obj.args or ""))
    return name


def _object_list(ctx: PlanContext, kind_name: ObjectKind, schema: str, objects: Sequence[ObjectRef]) -> sql.Composable:
    """The objects of one GRANT/REVOKE as one SQL fragment. Each name is quoted by psycopg
    (sql.Identifier) once per plan and the list joined as text: a statement on 1,000 tables is then
    one string to compose and send, not 2,000 objects, and an object granted to several roles is
    quoted once."""
    parts = []
    for o in objects:
        text = ctx.quoted.get(o.oid)
        if text is None:
            text = object_sql(kind_name, schema, o).as_string(None)
            ctx.quoted[o.oid] = text
        parts.append(text)
    return sql.SQL(", ".join(parts))


def _group_changes(ctx: PlanContext, group: ObjectGroup, schema: str, obj: ObjectRef | None = None) -> list[Change]:
    """What must change on the objects of one group (after a planned ownership change)."""
    name, table = kind(group.kind).scope_name(obj.name, obj.args) if obj is not None else (None, None)
    return acl.diff(ctx.acl(group.acl, group.owner), wanted_for(ctx, group.kind, schema, name, table))


def _pending(ctx: PlanContext) -> dict[PendingKey, list[ObjectGroup]]:
    """(schema, kind, change) -> the groups whose objects need that change. In a schema whose
    objects the policy treats apart (listed tables, exceptions), each object is its own group."""
    schema_names = {s.oid: s.name for s in ctx.snap.schemas}
    pending: dict[PendingKey, list[ObjectGroup]] = defaultdict(list)
    owner = ctx.snap.role_by_name.get(ctx.owner)
    for group in ctx.snap.objects:
        if group.extension or (ctx.additive and (owner is None or group.owner != owner.oid)):
            continue  # additive: the grants of an object whose ownership would move follow the move
        schema = schema_names.get(group.schema, str(group.schema))
        one_by_one = ctx.grants.detailed(schema) or group.bookkeeping  # bookkeeping: SELECT at most
        one_by_one = one_by_one or (group.kind == "routine" and schema in ctx.leftover_schemas)
        if one_by_one and group.objects is not None:
            for obj in group.objects:
                if group.kind == "routine" and (schema, f"{obj.name}({obj.args or ''})") in ctx.refresh_leftovers:
                    continue  # dropped (plan/refresh.py): no grant on it
                single = replace(group, count=1, objects=(obj,))
                for change in _group_changes(ctx, single, schema, obj):
                    pending[(schema, group.kind, change)].append(single)
            continue
        for change in _group_changes(ctx, group, schema):
            pending[(schema, group.kind, change)].append(group)
    return pending


def _scan_rows(snap: Snapshot, kind_name: ObjectKind) -> int:
    """Rows a bulk statement on `kind` scans (pg_class or pg_proc of the managed schemas, at least)."""
    catalog = kind(kind_name).catalog
    rows = sum(g.count for g in snap.objects if kind(g.kind).catalog == catalog)
    return rows + 3000 if catalog == "pg_proc" else rows  # pg_proc: the built-in functions too


def _bulk_is_cheaper(snap: Snapshot, kind_name: ObjectKind, total: int) -> bool:
    if not kind(kind_name).bulk:  # no GRANT ... ON ALL <kind> IN SCHEMA: always by name
        return False
    return total > NAME_THRESHOLD and total * BULK_FACTOR >= _scan_rows(snap, kind_name)


def groups_to_name(policy: Policy, snap: Snapshot, *, changing: bool = True) -> list[ObjectGroup]:
    """Groups whose objects a plan will change one by one but that the snapshot does not list:
    the session fetches their names (snapshot.with_names) before planning."""
    ctx = PlanContext.of(policy, snap)
    out: dict[tuple[object, ...], ObjectGroup] = {}
    schema_names = {s.oid: s.name for s in snap.schemas}
    for g in snap.objects:  # objects the policy treats one by one are always named, and a refresh leftover's
        name = schema_names.get(g.schema, "")
        if g.objects is None and (ctx.grants.detailed(name) or (g.kind == "routine" and name in ctx.leftover_schemas)):
            out[g.key] = g
    if not changing:
        return list(out.values())
    for (_schema, kind_name, _change), groups in _pending(ctx).items():
        if _bulk_is_cheaper(snap, kind_name, sum(g.count for g in groups)):
            continue
        out.update((g.key, g) for g in groups if g.objects is None)
    return list(out.values())


def plan_objects(ctx: PlanContext) -> Iterator[Step]:
    """Ownership first (grants are planned for after it), then each pending ACL change."""
    snap = ctx.snap
    schema_names = {s.oid: s.name for s in snap.schemas}
    blocked_owner: dict[tuple[object, ...], str] = {}  # group key -> owner the admin may not move it from
    for group in snap.objects:
        group_owner = snap.role_name(group.owner) or ""
        if group.extension or group_owner == ctx.owner:
            continue
        if not group.linked:  # a serial's sequence follows its table
            yield from _plan_owner_change(ctx, group, schema_names.get(group.schema, str(group.schema)), group_owner)
        if not _owner_change_allowed(ctx, group_owner):
            blocked_owner[group.key] = group_owner
    totals: dict[tuple[int, str], int] = defaultdict(int)  # (schema, kind) -> objects
    for g in snap.objects:
        totals[(g.schema, g.kind)] += g.count
    # bulk statements would reach extension members and objects the policy treats apart
    with_extension = {(g.schema, g.kind) for g in snap.objects if g.extension}
    with_extension |= {(s.oid, k) for s in snap.schemas if ctx.grants.detailed(s.name) for k in PROFILE_KINDS}
    with_extension |= {(g.schema, g.kind) for g in snap.objects if g.bookkeeping}  # ALL TABLES would reach them
    with_extension |= {(s.oid, "routine") for s in snap.schemas if s.name in ctx.leftover_schemas}  # and a leftover
    schema_oids = {s.name: s.oid for s in snap.schemas}
    for (schema, kind_name, change), pending in _pending(ctx).items():
        rest = [g for g in pending if not g.bookkeeping]
        for groups in ([rest] if rest else []) + [[g] for g in pending if g.bookkeeping]:  # a step per table
            where = (schema_oids[schema], kind_name)
            for part, listed in _split_stuck(groups, blocked_owner):
                stuck = sorted({blocked_owner[g.key] for g in part if g.key in blocked_owner})
                listed = listed or where in with_extension
                yield from _plan_acl_change(ctx, schema, kind_name, change, part, stuck, totals[where], listed)


def _split_stuck(
    groups: list[ObjectGroup], blocked_owner: dict[tuple[object, ...], str]
) -> list[tuple[list[ObjectGroup], bool]]:
    """Objects whose owner the admin cannot act as (a managed service's own role) get a step of their
    own, so that they hold back only their grants, never the others' (listed by name: a bulk statement
    would reach them). Unnamed groups stay together."""
    stuck = [g for g in groups if g.key in blocked_owner]
    if not stuck or len(stuck) == len(groups) or any(g.objects is None for g in groups):
        return [(groups, False)]
    return [([g for g in groups if g.key not in blocked_owner], True), (stuck, True)]


def _plan_acl_change(
    ctx: PlanContext,
    schema: str,
    kind_name: ObjectKind,
    change: Change,
    groups: list[ObjectGroup],
    stuck: list[str],
    in_schema: int,
    has_extension: bool,
) -> Iterator[Step]:
    """One change on every object of some groups: a bulk statement, or lists of at most
    OBJECTS_PER_STATEMENT names. If the objects' owner cannot be moved, neither can grants be made.
    Bulk statements would touch extension members, so a (schema, kind) with any is always listed."""
    snap = ctx.snap
    allowed = ctx.auth.acts_as(ctx.owner) and not stuck
    if stuck:
        needs = Need.of(*((R.MEMBERSHIP, s) for s in stuck), note="the objects' owner")
    else:
        needs = Need.of((R.MEMBERSHIP, ctx.owner))
    total = sum(g.count for g in groups)
    named = all(g.objects is not None for g in groups)
    k = kind(kind_name)
    if (not named or _bulk_is_cheaper(snap, kind_name, total)) and not has_extension and k.bulk:
        target = sql.SQL("ALL {} IN SCHEMA {}").format(sql.SQL(k.all_word or ""), sql.Identifier(schema))
        text = f"{total} {k.plural} in schema {schema}"
        reason = _object_reason(change, f"every {kind_name} of schema {schema} it changes")
        if total != in_schema:
            text += f" (of {in_schema}; the others are unaffected)"
        yield acl_step(change, target, text, reason, allowed, needs, count=total)
        return
    objects = sorted((o for g in groups for o in (g.objects or ())), key=lambda o: (o.name, o.oid))
    for start in range(0, len(objects), OBJECTS_PER_STATEMENT):
        chunk = objects[start : start + OBJECTS_PER_STATEMENT]
        target = sql.SQL("{} {}").format(sql.SQL(k.sql_word), _object_list(ctx, kind_name, schema, chunk))
        text = describe(kind_name, schema, chunk, len(chunk))
        what = text if len(chunk) == 1 else f"these {len(chunk)} {k.plural} of schema {schema}"
        # a bookkeeping table's grant is the hazard rule bookkeeping.writable's subject too: one finding
        books = len(chunk) == 1 and (any(g.bookkeeping for g in groups) or ctx.grants.refreshed(schema, chunk[0].name))
        subject = acl_subject("pg_class", chunk[0].oid, change.grantee) if books else None
        reason = _object_reason(change, what)
        yield acl_step(change, target, text, reason, allowed, needs, count=len(chunk), subject=subject)


def _object_reason(change: Change, what: str) -> str:
    """Why: naming exactly the objects the step's statement touches (`what`), never more."""
    who = show(change.grantee)
    privs = ", ".join(sorted(change.privs))
    if change.action == ChangeAction.GRANT:
        return f"the policy gives {who} {privs} on {what}"
    if change.action == ChangeAction.REVOKE_GRANT_OPTION:
        return f"{who} must not be able to grant {privs} on {what} to others"
    if change.grantee is None:
        return f"PUBLIC must hold nothing on {what} ({privs} is extra)"
    return f"{who} must hold only what the policy gives it on {what} ({privs} is extra)"


def _owner_change_allowed(ctx: PlanContext, current: str) -> bool:
    return ctx.auth.superuser or (ctx.auth.acts_as(current) and ctx.auth.may_set(ctx.owner))


def _plan_owner_change(ctx: PlanContext, group: ObjectGroup, schema: str, current: str) -> Iterator[Step]:
    owner = ctx.owner
    ok = _owner_change_allowed(ctx, current)
    k = kind(group.kind)
    for obj in group.objects or ():
        word = k.subkind(obj.subkind).sql_word if group.kind != "routine" else "ROUTINE"
        yield owner_step(
            describe(group.kind, schema, [obj], 1),
            sql.SQL("{} {}").format(sql.SQL(word), object_sql(group.kind, schema, obj)),
            f"every object in the managed schemas must be owned by {owner} (now {current})",
            owner,
            ok,
            Need.of((R.MEMBERSHIP, current), (R.MEMBERSHIP, owner)),
            role=current,
            subject=owner_subject(k.catalog, obj.oid),
        )
