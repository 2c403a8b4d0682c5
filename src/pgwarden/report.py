"""`build_report(session, secrets) -> Report`: who holds what, where it differs from the policy.

Library use (the demo calls it):

    with Session.open(dsn, policy) as session:
        report = build_report(session, policy.secrets())
    pgwarden.render.render_report(report, "html")   # or text, json, markdown, dot, mermaid; a str

The model and its reading live here; pgwarden.render prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pgwarden.access.review import labelled_summary
from pgwarden.check import findings_for
from pgwarden.command_rows import HeldCountRow, ScopeHeldRow
from pgwarden.errors import ConnectError
from pgwarden.fetch import fetch
from pgwarden.findings import SEVERITIES, Finding
from pgwarden.hazards import read_hazards
from pgwarden.kinds import PROFILE_KINDS
from pgwarden.kinds import kind as kind_of
from pgwarden.plan.provider import with_external
from pgwarden.probe.rights import Rights, held_on, member_rights
from pgwarden.refresh import executable
from pgwarden.rolegraph import RoleGraph, build_graph
from pgwarden.scopes import Scopes

if TYPE_CHECKING:
    from pgwarden.policy import Policy
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot

KINDS = PROFILE_KINDS


@dataclass(frozen=True)
class Cell:
    """How many of the `total` objects of (schema, kind) `role` holds `privilege` on, vs. the policy."""

    role: str
    level: str  # owner | deploy | the role's profiles | member of GROUP | other (outside the policy) | public
    schema: str
    kind: str
    privilege: str
    held: int
    total: int
    expected: int

    @property
    def deviation(self) -> bool:
        return self.held != self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "schema": self.schema,
            "kind": self.kind,
            "privilege": self.privilege,
            "held": self.held,
            "total": self.total,
            "expected": self.expected,
            "deviation": self.deviation,
        }


Want = Literal["yes", "no", "either"]


@dataclass(frozen=True)
class ScopeCell:
    """Whether `role` holds `privilege` (CONNECT, TEMPORARY, CREATE, USAGE) on the database or a schema."""

    role: str
    level: str
    kind: Literal["database", "schema"]
    name: str
    privilege: str
    held: bool
    want: Want  # what the policy says: must hold, must not, or either (tolerated)

    @property
    def deviation(self) -> bool:
        return (self.want == "yes" and not self.held) or (self.want == "no" and self.held)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "kind": self.kind,
            "name": self.name,
            "privilege": self.privilege,
            "held": self.held,
            "expected": self.want,
            "deviation": self.deviation,
        }


@dataclass(frozen=True)
class Report:
    database: str
    server_version: str
    roles: tuple[tuple[str, str], ...]  # (role, level) in display order; PUBLIC last
    schemas: tuple[str, ...]
    cells: tuple[Cell, ...]
    owners: tuple[dict[str, Any], ...]
    default_privileges: tuple[dict[str, Any], ...]
    memberships: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...]
    scope: tuple[ScopeCell, ...] = ()
    graph: RoleGraph | None = None
    superusers: tuple[str, ...] = ()
    grants: tuple[dict[str, Any], ...] = ()  # the policy's grants in this database: profile x scope
    members: tuple[dict[str, Any], ...] = ()  # the policy's people, under their groups
    labelled: tuple[dict[str, Any], ...] = ()  # the policy's labelled columns and who reaches them
    provider: dict[str, Any] | None = None  # the managed service the server looks like (Plan.to_dict's)

    @property
    def deviations(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.deviation)

    @property
    def scope_deviations(self) -> tuple[ScopeCell, ...]:
        return tuple(c for c in self.scope if c.deviation)

    @property
    def summary(self) -> dict[str, Any]:
        """The counts every format prints (one source: text, JSON, Markdown, HTML and `-o` agree).
        `deviations` is every cell that differs from the policy: object cells plus database/schema cells."""
        counted = [f.severity for f in self.findings]
        severities = {sev: counted.count(sev) for sev in SEVERITIES if sev in counted}
        paths = self.graph.paths if self.graph else ()
        return {
            "deviations": len(self.deviations) + len(self.scope_deviations),
            "object_deviations": len(self.deviations),
            "scope_deviations": len(self.scope_deviations),
            "findings": len(self.findings),
            "findings_by_severity": severities,
            "dangerous_paths": sum(1 for p in paths if p.dangerous),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "roles": [{"role": r, "level": lvl} for r, lvl in self.roles],
            "schemas": list(self.schemas),
            "privileges": [c.to_dict() for c in self.cells],
            "deviations": len(self.deviations),
            "scope_privileges": [c.to_dict() for c in self.scope],
            "scope_deviations": len(self.scope_deviations),
            "superusers": list(self.superusers),
            "owners": list(self.owners),
            "default_privileges": list(self.default_privileges),
            "memberships": list(self.memberships),
            "graph": self.graph.to_dict() if self.graph else {"nodes": [], "edges": [], "paths": []},
            "findings": [f.to_dict() for f in self.findings],
            "grants": list(self.grants),
            "members": list(self.members),
            "labelled": list(self.labelled),
            "summary": self.summary,
        } | ({"provider": self.provider} if self.provider is not None else {})


def _expected(
    policy: Policy,
    snap: Snapshot,
    rights: Mapping[str, Rights],
    who: tuple[str, str],
    where: tuple[int, str],
    kind: str,
    privilege: str,
    total: int,
) -> int:
    """How many of the `total` objects of `kind` in schema `where` (oid, name) the role `who` (name,
    level) must hold `privilege` on: its grants' scopes, one object at a time where the schema has
    listed tables or exceptions (whose objects the snapshot always names)."""
    role, level = who
    if level in ("owner", "deploy"):  # a deploy login is a member of the owner by design: it holds the same
        return total if privilege in snap.caps.owner_privileges(kind) else 0
    if level == "public":
        allowed = privilege in kind_of(kind).kept_from_public(policy.hardening.revoke_public_execute)
        return total if allowed else 0
    mine = rights.get(role)
    if mine is None:  # roles outside the policy
        return 0

    schema_oid, schema = where
    groups = [g for g in snap.objects if g.schema == schema_oid and g.kind == kind]
    named = kind_of(kind).scope_name  # a sequence is named with its table (args)
    if kind == "routine" and privilege == "EXECUTE" and mine.scopes.refresh:  # refresh routines: their role's
        return executable(mine.scopes, mine.holders, schema, groups, privilege in held_on(mine, kind, schema), total)
    if kind == "routine" or not mine.scopes.detailed(schema) or any(g.objects is None for g in groups):
        if privilege not in held_on(mine, kind, schema):
            return 0
        # migration bookkeeping tables (always named): at most SELECT, whatever the schema's profile
        books = [o for g in groups if g.bookkeeping for o in g.objects or ()]  # and their sequences (args: the table)
        return total - sum(1 for o in books if privilege not in held_on(mine, kind, schema, *named(o.name, o.args)))
    return sum(
        1 for g in groups for o in g.objects or () if privilege in held_on(mine, kind, schema, *named(o.name, o.args))
    )


def _rights(policy: Policy, snap: Snapshot) -> dict[str, Rights]:
    """What each access role and each member must hold directly (a member: its inherited groups')."""

    scopes = Scopes.of(policy)
    version = 160000 if snap.caps.membership_options else 150000
    out = {a.name: Rights.of(policy, a.name, scopes=scopes) for a in policy.access}
    out |= {m.name: member_rights(policy, m, version, scopes) for m in policy.members}
    return out


def build_report(session: Session, secrets: Mapping[str, str] | None = None) -> Report:
    """Read the target database through `session` (one snapshot, the hazard queries, two privilege
    queries) and summarise it; `findings` are those of `run_check` with the same `secrets` (the
    policy's passwords: with them a changed password is drift). Rows: the policy's roles, PUBLIC,
    and every other role that owns or holds something in the database (superusers are listed apart)."""

    policy = session.policy
    if not session.target_exists():
        raise ConnectError(f"database {policy.database.name} does not exist", hint="run `pgwarden apply` first")
    with session.inspection_connection() as conn:
        snap = session.snapshot(conn)
        hz = read_hazards(conn, policy, snap)
        schema_oids = {s.oid: s.name for s in snap.schemas if s.name in policy.database.schemas}
        roles = _candidates(policy, snap, schema_oids)
        oids = {snap.role_by_name[r].oid: (r, lvl) for r, lvl in roles}
        params = {"schemas": list(schema_oids), "roles": list(oids)}
        rows = fetch(
            conn, "report_privileges", HeldCountRow, {**params, "table_privs": list(snap.caps.table_owner_privileges)}
        )
        scope_rows = fetch(conn, "report_scope_privileges", ScopeHeldRow, params)
        labelled = labelled_summary(conn, policy, snap)  # leads the report; nothing read without labels
    the_plan = session.plan(snap, secrets)
    findings = findings_for(with_external(policy, snap), snap, hz, the_plan)
    rights = _rights(policy, snap)
    cells = _object_cells(policy, snap, rights, rows, oids, schema_oids)
    scope = _scope_cells(policy, rights, scope_rows, oids)
    # a role outside the policy is a row only when it holds something (in the matrix or on the database)
    holding = {c.role for c in cells if c.held} | {c.role for c in scope if c.held and c.want == "no"}
    holding |= {o for o in (snap.role_name(g.owner) for g in snap.objects if g.schema in schema_oids) if o}
    kept = [(r, lvl) for r, lvl in roles if lvl != "other" or r in holding]
    order = {name: i for i, (name, _) in enumerate([*kept, ("PUBLIC", "public")])}
    cells.sort(key=lambda c: (order.get(c.role, -1), c.schema, KINDS.index(c.kind), c.privilege))
    scope.sort(key=lambda c: (order.get(c.role, -1), c.kind != "database", c.name, c.privilege))
    starts = [r for r, lvl in kept if lvl == "other"] + _members_of_policy(policy, snap)
    return Report(
        policy.database.name,
        snap.server.version,
        tuple([*kept, ("PUBLIC", "public")]),
        tuple(s for s in policy.database.schemas if s in schema_oids.values()),
        tuple(c for c in cells if c.role in order),
        _owners(snap, schema_oids),
        _defaults(snap),
        _memberships(policy, snap, hz.member_of),
        tuple(findings),
        tuple(c for c in scope if c.role in order),
        build_graph(policy, snap, starts),
        tuple(sorted(r.name for r in snap.roles.values() if r.superuser)),
        _grants(policy),
        tuple(
            {"member": m.name, "groups": [{"role": g.role, "inherit": g.inherit, "set": g.set} for g in m.member_of]}
            for m in policy.members
        ),
        labelled,
        the_plan.provider_dict(),
    )


def _grants(policy: Policy) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "role": g.role,
            "profile": g.profile,
            "schemas": list(g.schemas),
            "tables": list(g.tables),
            "except_tables": list(g.except_tables),
            "except_columns": {t: list(c) for t, c in g.except_columns.items()},
        }
        for g in policy.grants()
    )


def _who(row: HeldCountRow | ScopeHeldRow, oids: Mapping[int, tuple[str, str]]) -> tuple[str, str]:
    return ("PUBLIC", "public") if row.role == 0 else oids[int(row.role)]


def _object_cells(
    policy: Policy,
    snap: Snapshot,
    rights: Mapping[str, Rights],
    rows: list[HeldCountRow],
    oids: Mapping[int, tuple[str, str]],
    schema_oids: Mapping[int, str],
) -> list[Cell]:
    cells = []
    for r in rows:
        role, level = _who(r, oids)
        total = int(r.total)
        where = (int(r.schema), schema_oids[r.schema])
        expected = _expected(policy, snap, rights, (role, level), where, r.kind, r.privilege, total)
        cells.append(Cell(role, level, schema_oids[r.schema], r.kind, r.privilege, int(r.held), total, expected))
    return cells


def _scope_cells(
    policy: Policy, rights: Mapping[str, Rights], rows: list[ScopeHeldRow], oids: Mapping[int, tuple[str, str]]
) -> list[ScopeCell]:
    out = []
    for r in rows:
        role, level = _who(r, oids)
        want = _want(policy, rights.get(role), level, r.kind, r.name, r.privilege)
        out.append(ScopeCell(role, level, r.kind, r.name, r.privilege, bool(r.held), want))
    return out


def _want(policy: Policy, rights: Rights | None, level: str, kind: str, name: str, privilege: str) -> Want:
    """What the policy says of a database or schema privilege (the plan's grants and tolerances)."""
    if level in ("owner", "deploy"):
        return "yes"
    public_db = not policy.hardening.revoke_public_connect and privilege in ("CONNECT", "TEMPORARY")
    if rights is not None:
        held = rights.database() if kind == "database" else rights.union(lambda r: rights.scopes.schema(r, name))
        if privilege in held:
            return "yes"
        return "either" if (kind == "database" and public_db) else "no"
    if kind == "database":
        return "either" if public_db else "no"
    return "either" if privilege == "USAGE" else "no"  # PUBLIC may keep USAGE on a schema


def _candidates(policy: Policy, snap: Snapshot, schema_oids: Mapping[int, str]) -> list[tuple[str, str]]:
    """The policy's roles, then (sorted) every other non-superuser role that owns or is granted something
    in the database or its managed schemas, and the members of those, by any path."""
    levels = {policy.owner.name: "owner", **{d: "deploy" for d in policy.owner.deploy_logins}}
    levels |= {a.name: policy.level_of(a.name) or "no grant" for a in policy.access}
    levels |= {m.name: "member of " + ", ".join(g.role for g in m.member_of) for m in policy.members}
    direct: set[int] = set()
    acls = [g.acl for g in snap.objects if g.schema in schema_oids] + [
        s.acl for s in snap.schemas if s.oid in schema_oids
    ]
    if snap.database is not None:
        acls.append(snap.database.acl)
        direct.add(snap.database.owner)
    direct |= {g.owner for g in snap.objects if g.schema in schema_oids}
    direct |= {s.owner for s in snap.schemas if s.oid in schema_oids}
    direct |= {grant.grantee for acl in acls for grant in (acl or ())}
    members: dict[int, set[int]] = {}
    for m in snap.memberships:
        members.setdefault(m.role, set()).add(m.member)
    found, queue = set(direct), list(direct) + [snap.role_by_name[n].oid for n in levels if n in snap.role_by_name]
    while queue:
        for member in members.get(queue.pop(), ()):
            if member not in found:
                found.add(member)
                queue.append(member)
    others = sorted(
        r.name
        for oid in found
        if (r := snap.roles.get(oid)) is not None
        and not r.superuser
        and not r.name.startswith("pg_")
        and r.name not in levels
    )
    return [(r, lvl) for r, lvl in levels.items() if r in snap.role_by_name] + [(r, "other") for r in others]


def _members_of_policy(policy: Policy, snap: Snapshot) -> list[str]:
    """Roles outside the policy that are members of one of its roles (a person granted the owner, ...)."""
    names = set(policy.role_names)
    return sorted(
        {m for x in snap.memberships if (m := snap.role_name(x.member)) and snap.role_name(x.role) in names} - names
    )


def _owners(snap: Snapshot, schema_oids: dict[int, str]) -> tuple[dict[str, Any], ...]:
    counts: dict[tuple[str, str, str], int] = {}
    for g in snap.objects:
        if g.schema in schema_oids:
            key = (schema_oids[g.schema], g.kind, snap.role_name(g.owner) or "?")
            counts[key] = counts.get(key, 0) + g.count
    return tuple({"schema": s, "kind": k, "owner": o, "count": n} for (s, k, o), n in sorted(counts.items()))


_OBJTYPE = {"r": "tables", "S": "sequences", "f": "routines", "T": "types", "n": "schemas", "L": "large objects"}


def _defaults(snap: Snapshot) -> tuple[dict[str, Any], ...]:
    schemas = {s.oid: s.name for s in snap.schemas}
    out = []
    for d in snap.default_acls:
        grants: dict[str, list[str]] = {}
        for g in sorted(d.acl, key=lambda g: (g.grantee, g.privilege)):
            grants.setdefault(snap.role_name(g.grantee) or "PUBLIC", []).append(
                g.privilege + ("*" if g.grantable else "")
            )
        for_role = snap.role_name(d.role)
        only_own = set(grants) <= {for_role}
        out.append(
            {
                "for_role": for_role,
                "schema": schemas.get(d.schema) if d.schema else None,
                "objects": _OBJTYPE.get(d.objtype, d.objtype),
                "grants": grants,
                # PostgreSQL writes this row when a default privilege is revoked from PUBLIC (the
                # hardening's EXECUTE): the built-in default made explicit, minus PUBLIC
                "note": (
                    f"only {for_role}'s own privileges: the row PostgreSQL keeps once a default privilege "
                    "is revoked from PUBLIC, as the hardening does; nobody else gets anything"
                )
                if only_own
                else None,
            }
        )
    return tuple(out)


def _memberships(policy: Policy, snap: Snapshot, closure: dict[int, frozenset[int]]) -> tuple[dict[str, Any], ...]:
    names = set(policy.role_names)
    out = []
    for m in snap.memberships:
        member, role = snap.role_name(m.member), snap.role_name(m.role)
        if member in names or role in names:
            out.append(
                {"member": member, "role": role, "admin": m.admin, "inherit": m.inherit, "set": m.set, "direct": True}
            )
    direct = {(x["member"], x["role"]) for x in out}
    for member_oid, targets in closure.items():
        for t in targets:
            pair = (snap.role_name(member_oid), snap.role_name(t))
            if pair not in direct:
                out.append(
                    {"member": pair[0], "role": pair[1], "admin": False, "inherit": None, "set": None, "direct": False}
                )
    return tuple(sorted(out, key=lambda x: (str(x["member"]), str(x["role"]))))
