"""What every planner shares: the context (policy, snapshot, admin authority as planned so far) and the
builders of ACL and ownership statements. Planners return their steps; plan() puts them in order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from psycopg import sql

from pgwarden import acl
from pgwarden.acl import AclState, Change, ChangeAction, Grantee
from pgwarden.kinds import ordered
from pgwarden.plan.authority import Authority
from pgwarden.plan.model import Action, Need, Phase, Step, Subject
from pgwarden.policy import Policy
from pgwarden.scopes import Scopes
from pgwarden.snapshot import Acl, RefreshRoutine, Snapshot


@dataclass
class PlanContext:
    """One planning run: inputs, the admin's authority as planned so far, notes (planners yield their steps)."""

    policy: Policy
    snap: Snapshot
    auth: Authority
    owner: str
    ignore: frozenset[str]
    verifiers: Mapping[str, str] = field(default_factory=dict)  # password variable -> SCRAM verifier
    #: additive mode: ownership does not move, so no grant is planned that depends on a move
    additive: bool = False
    scopes: Scopes | None = None  # the policy's grants by role (set by `of`)
    notes: list[str] = field(default_factory=list)
    quoted: dict[int, str] = field(default_factory=dict)  # object oid -> its name as SQL text
    #: (catalog ACL, previous owner) -> the ACL by role names: at 100k tables a plan names ~550
    #: ACLs (object groups, default privileges) and they are ~10 distinct ones
    named: dict[tuple[Acl, int | None], AclState] = field(default_factory=dict, repr=False)

    @classmethod
    def of(
        cls, policy: Policy, snap: Snapshot, verifiers: Mapping[str, str] | None = None, *, additive: bool = False
    ) -> PlanContext:
        # the issuers of leased logins hold CONNECT (and ADMIN on the group) by design: left alone
        roles = frozenset(policy.ignore.roles) | {lease.issuer for lease in policy.leased if lease.issuer}
        auth = Authority.of(snap)
        return cls(policy, snap, auth, policy.owner.name, roles, dict(verifiers or {}), additive, Scopes.of(policy))

    def acl(self, entries: Acl, previous_owner: int | None = None) -> acl.AclState:
        """A catalog ACL by role names; a `previous_owner`'s entries move to the policy's owner
        (what ALTER ... OWNER TO does to them)."""
        key = (entries, previous_owner)
        named = self.named.get(key)
        if named is None:
            named = self.named[key] = self._acl(entries, previous_owner)
        return named

    def _acl(self, entries: Acl, previous_owner: int | None) -> AclState:
        rename = None
        if previous_owner is not None:
            old = self.snap.role_name(previous_owner)
            if old is not None and old != self.owner:
                rename = {old: self.owner}
        return acl.from_catalog(entries, self.snap.role_name, rename)

    @property
    def access_names(self) -> set[str]:
        return {a.name for a in self.policy.access}

    @property
    def row_roles(self) -> set[str]:
        """The roles that work with rows: access roles, groups and their members (people)."""
        return set(self.policy.row_roles)

    @property
    def grants(self) -> Scopes:
        assert self.scopes is not None
        return self.scopes

    @cached_property
    def refresh_leftovers(self) -> Mapping[tuple[str, str], RefreshRoutine]:
        """(schema, `name(args)`) -> a refresh routine pgwarden made (plan/refresh.py) for a refresh the
        policy no longer declares: it is dropped, and no grant is planned on it (the profiles' EXECUTE on
        the schema's routines would let their roles refresh the views as the owner)."""
        from pgwarden.refresh import ARGS, is_routine_name

        out = {}
        for r in self.snap.refresh_routines:
            name = f"{r.name}({r.args})"
            if r.args == ARGS and is_routine_name(r.name) and self.grants.refresh_routine_of(r.schema, name) is None:
                out[(r.schema, name)] = r
        return out

    @cached_property
    def leftover_schemas(self) -> frozenset[str]:
        """The schemas with a refresh leftover: their routines are planned one by one, never in bulk."""
        return frozenset(schema for schema, _ in self.refresh_leftovers)


def privs_sql(privs: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL(p) for p in ordered(privs))


def grantee_sql(g: Grantee) -> sql.Composable:
    return sql.SQL("PUBLIC") if g is None else sql.Identifier(g)


def default_privileges_prefix(owner: str, schema: str | None) -> sql.Composed:
    """ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA schema]: put before an acl_statement."""
    prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}").format(sql.Identifier(owner))
    return prefix if schema is None else sql.SQL("{} IN SCHEMA {}").format(prefix, sql.Identifier(schema))


def acl_statement(change: Change, target: sql.Composable) -> sql.Composed:
    """GRANT / REVOKE / REVOKE GRANT OPTION FOR on `target` ("TABLE x", "SCHEMA s", ...)."""
    who = grantee_sql(change.grantee)
    if change.action == ChangeAction.GRANT:
        return sql.SQL("GRANT {} ON {} TO {}").format(privs_sql(change.privs), target, who)
    if change.action == ChangeAction.REVOKE:
        privs = sql.SQL("ALL") if change.everything else privs_sql(change.privs)
        return sql.SQL("REVOKE {} ON {} FROM {} CASCADE").format(privs, target, who)
    return sql.SQL("REVOKE GRANT OPTION FOR {} ON {} FROM {} CASCADE").format(privs_sql(change.privs), target, who)


_STEP_ACTION = {
    ChangeAction.GRANT: Action.GRANT,
    ChangeAction.REVOKE: Action.REVOKE,
    ChangeAction.REVOKE_GRANT_OPTION: Action.REVOKE_GRANT_OPTION,
}


def acl_step(
    change: Change,
    target: sql.Composable,
    label: str,
    reason: str,
    allowed: bool,
    needs: Need,
    *,
    count: int = 1,
    subject: Subject | None = None,
) -> Step:
    return Step(
        Phase.DATABASE,
        _STEP_ACTION[change.action],
        label,
        reason,
        acl_statement(change, target),
        role=change.grantee,
        destructive=change.action != ChangeAction.GRANT,
        needs=None if allowed else needs,
        allowed=allowed,
        count=count,
        change=change.action.value,
        subject=subject,
    )


def owner_step(
    label: str,
    target: sql.Composable,
    reason: str,
    owner: str,
    allowed: bool,
    needs: Need,
    *,
    role: str | None = None,
    subject: Subject | None = None,
) -> Step:
    """ALTER <target> OWNER TO <owner>: destructive (it moves what exists), with what it needs."""
    return Step(
        Phase.DATABASE,
        Action.ALTER_OWNER,
        label,
        reason,
        sql.SQL("ALTER {} OWNER TO {}").format(target, sql.Identifier(owner)),
        role=role,
        destructive=True,
        needs=None if allowed else needs,
        allowed=allowed,
        subject=subject,
    )
