"""The ACL a compliant table, sequence and routine of each managed schema holds, as the server stores it:
sent with the objects query (queries/objects_expected.sql) so that the server counts the objects that
match instead of returning them. Pure: from the planner's own `wanted_for`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pgwarden.acl import grantee_order
from pgwarden.kinds import PRIVILEGE_LETTERS, PROFILE_KINDS, ordered
from pgwarden.plan.context import PlanContext
from pgwarden.plan.objects import wanted_for
from pgwarden.policy import Policy
from pgwarden.snapshot import ObjectKind, Snapshot

KINDS: tuple[ObjectKind, ...] = PROFILE_KINDS  # the kinds the objects query groups


def _quoted(role: str) -> str:
    """A role name as aclitem input reads it, whatever it contains."""
    return '"' + role.replace('"', '""') + '"'


def aclitem(grantee: str | None, privileges: Iterable[str], grantor: str) -> str:
    """One aclitem as text (`"app"=arwd/"owner"`; PUBLIC has no name)."""
    letters = "".join(PRIVILEGE_LETTERS[p] for p in ordered(privileges))
    return f"{'' if grantee is None else _quoted(grantee)}={letters}/{_quoted(grantor)}"


def expected_acl(ctx: PlanContext, kind_name: ObjectKind, schema: str) -> list[str] | None:
    """What an object of `kind_name` in `schema` holds once `apply` made it compliant, in the order
    the server keeps it: the owner's entry first (acldefault), then the grants in the order apply
    makes them (PUBLIC first, then roles by name: acl.grantee_order). None when no object can hold
    it: a role that does not exist yet. Only an optimisation: an object whose ACL holds the same
    entries in another order is not counted, and reaches the planner the way every object did."""
    wanted = wanted_for(ctx, kind_name, schema)
    if wanted.owner is None or wanted.owner not in ctx.snap.role_by_name:
        return None
    owner = wanted.owner
    items = [aclitem(owner, wanted.expected.get(owner, frozenset()), owner)]
    for grantee in sorted((g for g in wanted.expected if g != owner), key=grantee_order):
        privileges = wanted.expected[grantee]
        if not privileges:
            continue
        if grantee is not None and grantee not in ctx.snap.role_by_name:
            return None
        items.append(aclitem(grantee, privileges, owner))
    return items


def expectations(policy: Policy, snap: Snapshot) -> list[dict[str, Any]]:
    """Per managed schema whose objects the policy treats as a whole (not detailed), the expected ACL
    of each kind: the `expected` parameter of objects_expected.sql. Empty: nothing to compare with
    (the owner does not exist yet)."""
    if snap.owner_oid == 0:
        return []
    ctx = PlanContext.of(policy, snap)
    out: list[dict[str, Any]] = []
    for schema in snap.schemas:
        if schema.name not in policy.database.schemas or ctx.grants.detailed(schema.name):
            continue
        entry: dict[str, Any] = {"schema": schema.oid}
        for kind_name in KINDS:
            acl = expected_acl(ctx, kind_name, schema.name)
            if acl is not None:
                entry[kind_name] = acl
        if len(entry) > 1:
            out.append(entry)
    return out
