"""exception.path: an excepted table or column that the role it is excepted from still reaches, by a
view, a materialized view, a rule, a parent table, a SECURITY DEFINER routine, a trigger, a
membership, PUBLIC or a predefined role (pgwarden.access)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.model import acl_subject
from pgwarden.policy import Policy
from pgwarden.policy.model import GrantSpec
from pgwarden.profiles import defined
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.rules.memberships import revoke_sql
from pgwarden.snapshot import Snapshot

if TYPE_CHECKING:  # the access model is imported only for a policy with exceptions (check_exception_paths)
    from pgwarden.access.exceptions import Around
    from pgwarden.access.facts import Facts
    from pgwarden.access.paths import Hop


@reports(
    Rule(
        "exception.path",
        "high",
        "Excepted table or column reachable by the role it is excepted from",
        "A grant's except_tables, except_columns and except_labels hold only if nothing else gives the "
        "role the data: a view or materialized view over the table (it reads with its owner's rights), a "
        "rule, a parent or partitioned table (its queries read the children's rows), a SECURITY DEFINER "
        "routine or the trigger that runs one, a membership, PUBLIC or a predefined role.",
        "The fix is the one statement that removes the path (REVOKE on the view or routine, or of the "
        "membership) when the policy does not give that grant itself; otherwise the message says what "
        "to change (except the view too, make the routine SECURITY INVOKER).",
        doc=(
            "The paths come from the effective-access model (`pgwarden review` lists them all); `check` reads "
            "the facts for the excepted tables only, in one statement, and none when the policy excepts "
            "nothing."
        ),
    ),
)
def check_exception_paths(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """For each grant's excepted tables and columns: every path by which its role (or PUBLIC) still
    reads or writes them, one finding per path, with a statement that removes the path when one does."""
    if hz.access is None:
        return
    # the access model only for a policy with exceptions (hz.access is read only then): check without
    # them does not import it
    from pgwarden.access.exceptions import paths_around
    from pgwarden.access.model import Model

    model = Model(snap.roles, snap.memberships, hz.access, snap.caps.membership_options)
    for around in paths_around(policy, model.accesses()):
        yield _finding(policy, snap, hz.access, around)


def _finding(policy: Policy, snap: Snapshot, facts: Facts, around: Around) -> Finding:
    grant = around.grant
    message = (
        f"{grant.role} can {', '.join(around.privileges)} {around.target}, which its grant "
        f"({grant.profile}) excepts: {around.chain()}"
    )
    fix, subject, advice = _remedy(policy, snap, facts, (grant, around.start), around.path)
    if fix is None:
        message += f". {advice}"
    return finding("exception.path", around.target, grant.role, message, fix, subject=subject)


def _holder(role: str, path: tuple[Hop, ...]) -> str:
    """The role that holds the first grant on the path (PUBLIC when the path starts with it)."""
    from pgwarden.access.paths import ROLE_KINDS  # imported with the model (check_exception_paths)

    last = role
    for hop in path:
        if hop.kind in ROLE_KINDS:
            last = hop.name
        else:
            return last
    return last


def _remedy(
    policy: Policy, snap: Snapshot, facts: Facts, whose: tuple[GrantSpec, str], path: tuple[Hop, ...]
) -> tuple[str | None, tuple[str | int, ...] | None, str]:
    """(the statement that removes the path, its subject, what to do when no statement does).
    `whose`: the grant and who the path starts from (its role, or PUBLIC)."""
    from pgwarden.access.paths import ROLE_KINDS  # imported with the model (check_exception_paths)

    grant, start = whose
    declared = {(m.name, s.role) for m in policy.members for s in m.member_of}
    member = start
    for hop in path:
        if hop.kind not in ROLE_KINDS:
            break
        if (member, hop.name) not in declared and member in snap.role_by_name and hop.name in snap.role_by_name:
            oid, target = snap.role_by_name[member].oid, snap.role_by_name[hop.name].oid
            return revoke_sql(snap, oid, target), ("membership", target, oid), ""
        member = hop.name
    first = next((h for h in path if h.kind not in ROLE_KINDS), None)
    holder = _holder(start, path)
    from pgwarden.access.model import TABLE_PRIVILEGES

    known = first is not None and first.detail in TABLE_PRIVILEGES + ("EXECUTE",)
    column = facts.column_of(first.name) if first is not None and first.kind == "column" else None
    if first is not None and known and column is not None:
        rel, col = column
        who = sql.SQL("PUBLIC") if holder == "PUBLIC" else sql.Identifier(holder)
        statement = sql.SQL("REVOKE {} ({}) ON TABLE {} FROM {}").format(
            sql.SQL(first.detail), sql.Identifier(col.name), sql.Identifier(rel.schema, rel.name), who
        )
        return statement.as_string(None), None, ""
    if first is not None and known and first.kind == "grant":
        on = _on(facts, first.name)
        if on is not None and not _policy_gives(policy, holder, first.name, first.detail, facts):
            catalog, oid, what = on
            who = sql.SQL("PUBLIC") if holder == "PUBLIC" else sql.Identifier(holder)
            statement = sql.SQL("REVOKE {} ON {} FROM {}").format(sql.SQL(first.detail), what, who)
            return statement.as_string(None), acl_subject(catalog, oid, None if holder == "PUBLIC" else holder), ""
    return None, None, _advice(path, first)


def _on(facts: Facts, ident: str) -> tuple[str, int, sql.Composable] | None:
    for rel in facts.relations.values():
        if rel.ident == ident:
            return "pg_class", rel.oid, sql.SQL("TABLE {}").format(sql.Identifier(rel.schema, rel.name))
    for r in facts.routines:
        if r.ident == ident:
            what = sql.SQL("FUNCTION {}({})").format(sql.Identifier(r.schema, r.name), sql.SQL(r.args))
            return "pg_proc", r.oid, what
    return None


def _policy_gives(policy: Policy, holder: str, ident: str, privilege: str, facts: Facts) -> bool:
    """Whether the policy itself grants `privilege` on the object to `holder` (a REVOKE would be undone)."""
    profiles = defined(policy)
    for rel in facts.relations.values():
        if rel.ident == ident:
            kind = "sequence" if rel.subkind == "S" else "table"
            return any(
                g.role == holder and g.covers_table(rel.schema, rel.name) and privilege in profiles[g.profile].on(kind)
                for g in policy.grants()
                if g.profile in profiles
            )
    for r in facts.routines:
        if r.ident == ident:
            public = holder == "PUBLIC" and not policy.hardening.revoke_public_execute
            return public or any(
                g.role == holder and g.covers_schema(r.schema) and privilege in profiles[g.profile].on("routine")
                for g in policy.grants()
                if g.profile in profiles
            )
    return False


def _advice(path: tuple[Hop, ...], first: Hop | None) -> str:
    """What to change when no one statement removes the path."""
    from pgwarden.access.paths import ROLE_KINDS  # imported with the model (check_exception_paths)

    derived = next((h for h in path if h.kind not in ROLE_KINDS and h is not first), None)
    if first is not None and first.kind == "grant" and derived is not None and derived.kind != "routine":
        return f"The policy grants it on {first.name}: add {first.name} to the grant's except_tables"
    if derived is not None and derived.kind in ("routine", "trigger"):
        return (
            f"{derived.name} runs with its owner's rights: make it SECURITY INVOKER, or keep the role from "
            "running it (a schema the policy does not grant)"
        )
    if first is not None and first.kind in ("owner", "superuser"):
        return "Only the role's attributes or ownership give it: see the other findings about this role"
    return "Remove the path: change the policy or the object that exposes the table"
