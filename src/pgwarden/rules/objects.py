"""Hazard checks about objects: who owns them, and default privileges of roles that are not the owner."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.kinds import BY_DEFACL_CODE, defacl_word, describe, kind
from pgwarden.plan.model import Subject, owner_subject
from pgwarden.policy import Policy
from pgwarden.rows import OwnedRow
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import access_roles, adopt_fix, finding, q
from pgwarden.snapshot import DefaultAcl, ObjectGroup, Role, Snapshot


@reports(
    Rule(
        "access.owns-objects",
        "high",
        "Access role owns objects in the database",
        "An owner can alter, drop and grant its objects whatever the policy says.",
        "ALTER ... OWNER TO the owner (`pgwarden apply` does it in the managed schemas; elsewhere `pgwarden adopt "
        "--from ROLE --yes` moves them one by one).",
    ),
)
def check_access_owns(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = dict((oid, name) for name, oid in access_roles(policy, snap))
    for row in hz.owned:
        name = access.get(int(row.role))
        if name is None:
            continue
        yield finding(
            "access.owns-objects",
            row.object,
            name,
            f"access role {name} owns {row.object}: it can alter, drop and grant it",
            adopt_fix(name),
            subject=_owned_subject(row),
        )


def _owned_subject(row: OwnedRow) -> Subject | None:
    """A hazard_owned row's object in the plan's words (it is the same problem as its ALTER ... OWNER step)."""
    return owner_subject(row.catalog.removeprefix("pg_catalog."), row.objid) if row.objid is not None else None


@dataclass(frozen=True)
class _Owners:
    """Who may own what in the managed schemas, by role oid."""

    owner: Role
    access: frozenset[int]
    deploy: frozenset[int]
    ignored: frozenset[int]

    @classmethod
    def of(cls, policy: Policy, snap: Snapshot, owner: Role) -> _Owners:
        def oids(names: Iterable[str]) -> frozenset[int]:
            return frozenset(snap.role_by_name[n].oid for n in names if n in snap.role_by_name)

        access = frozenset(oid for _, oid in access_roles(policy, snap))
        return cls(owner, access, oids(policy.owner.deploy_logins), oids(policy.ignore.roles))

    def finding(
        self,
        snap: Snapshot,
        kind: str,
        schema: str,
        name: str | None,
        by: int,
        subject: Subject | None,
        count: int = 1,
    ) -> Finding | None:
        """The finding for an object (or `count` of them) of `kind` owned by `by`; None when that is
        fine (the owner, an ignored role) or another rule's (access roles: access.owns-objects).
        Its fix moves the object; check replaces it by the plan's own step when there is one."""
        owner = self.owner.name
        if by == self.owner.oid or by in self.access or by in self.ignored:
            return None
        who = snap.role_name(by) or str(by)
        fix: sql.Composable | str = adopt_fix(who)
        if kind == "schema":
            obj = f"schema {schema}"
            fix = sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(owner))
        elif name is not None:
            # the words pg_describe_object uses, so that hazard_owned rows can be matched
            obj = f"{kind} {q(schema, name) if '(' not in name else q(schema) + '.' + name}"
        else:
            obj = f"{count} {kind}(s) in schema {schema}"
        if by in self.deploy:
            return _escaped(obj, who, owner, fix, subject)
        message = f"{obj} is owned by {who}, not by {owner}"
        return finding("ownership.not-owner", obj, who, message, fix, subject=subject)


def _escaped(obj: str, who: str, owner: str, fix: sql.Composable | str, subject: Subject | None) -> Finding:
    return finding(
        "ownership.escaped-owner",
        obj,
        who,
        f"{obj} is owned by the deploy login {who}, not by {owner}: the migration did not SET ROLE to the owner",
        fix,
        subject=subject,
    )


@reports(
    Rule(
        "ownership.not-owner",
        "high",
        "Object in a managed schema not owned by the owner",
        "The classic 'migration ran as the wrong login': the owner cannot change the object and the "
        "access roles often get no grant on it.",
        "ALTER ... OWNER TO the owner (`pgwarden apply` does it).",
    ),
    Rule(
        "ownership.escaped-owner",
        "high",
        "Object owned by a deploy login",
        "A deploy login created objects without SET ROLE to the owner: they escaped the owner and "
        "its default privileges.",
        "ALTER ... OWNER TO the owner; run migrations with `SET ROLE owner` (PGOPTIONS=-c role=owner).",
    ),
)
def check_ownership(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    if owner is None:
        return
    owners = _Owners.of(policy, snap, owner)
    seen: set[str] = set()
    for f, named in _managed_ownership(policy, snap, owners):
        if named:  # a counted group names no object a hazard row could repeat
            seen.add(f.object)
        yield f
    # Objects a deploy login owns elsewhere (a schema it created, objects outside the managed schemas).
    managed_oids = {s.oid for s in snap.schemas if s.name in policy.database.schemas}
    for row in hz.owned:
        role = int(row.role)
        managed = row.namespace is not None and int(row.namespace) in managed_oids
        covered = row.catalog in ("pg_class", "pg_proc", "pg_namespace", "pg_type") and managed
        if role not in owners.deploy or covered or row.object in seen:
            continue
        who = snap.role_name(role) or str(role)
        yield _escaped(row.object, who, owner.name, adopt_fix(who), _owned_subject(row))


def _managed_ownership(policy: Policy, snap: Snapshot, owners: _Owners) -> Iterator[tuple[Finding, bool]]:
    """Managed schemas and their objects not owned by the owner: (finding, whether it names one object).
    A serial's sequence is left out: it follows its table, whose finding moves both."""
    schemas = {s.oid: s for s in snap.schemas}
    yield from _schema_ownership(policy, snap, owners)
    for g in snap.objects:
        if not (g.extension or g.linked or g.owner == owners.owner.oid or g.schema not in schemas):
            yield from _group_ownership(snap, owners, g, schemas[g.schema].name)
    for t in snap.types:
        if t.schema in schemas:
            subject = owner_subject("pg_type", t.oid)
            if f := owners.finding(snap, describe("type", t.subkind), schemas[t.schema].name, t.name, t.owner, subject):
                yield f, True


def _schema_ownership(policy: Policy, snap: Snapshot, owners: _Owners) -> Iterator[tuple[Finding, bool]]:
    for s in snap.schemas:
        if s.name in policy.database.schemas and not s.extension and snap.roles.get(s.owner) is not None:
            if snap.roles[s.owner].name == "pg_database_owner":
                continue  # 15+: public belongs to whoever owns the database
            if f := owners.finding(snap, "schema", s.name, None, s.owner, owner_subject("pg_namespace", s.oid)):
                yield f, True


def _group_ownership(snap: Snapshot, owners: _Owners, g: ObjectGroup, schema: str) -> Iterator[tuple[Finding, bool]]:
    """One group of objects of a managed schema that another role owns: one finding per object, or one
    for the group when the snapshot only counted them."""
    if g.objects is None:
        if f := owners.finding(snap, g.kind, schema, None, g.owner, None, g.count):
            yield f, False
        return
    k = kind(g.kind)
    for o in g.objects:
        name = f"{q(o.name)}({o.args or ''})" if k.signed else o.name
        subject = owner_subject(k.catalog, o.oid)
        if f := owners.finding(snap, describe(g.kind, o.subkind), schema, name, g.owner, subject):
            yield f, True


@reports(
    Rule(
        "defaults.wrong-role",
        "medium",
        "Default privileges for a role that does not create objects",
        "ALTER DEFAULT PRIVILEGES only applies to objects created by the role it names: entries for "
        "another role (the application, a deploy login) are never used for the owner's objects, and "
        "can give privileges on objects that role creates.",
        "ALTER DEFAULT PRIVILEGES FOR ROLE <that role> REVOKE ... (or DROP OWNED BY it).",
    ),
)
def check_default_acls(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    ignored = {snap.role_by_name[r].oid for r in policy.ignore.roles if r in snap.role_by_name}
    schemas = {s.oid: s.name for s in snap.schemas}
    for d in snap.default_acls:
        if (owner is not None and d.role == owner.oid) or d.role in ignored:
            continue
        who = snap.role_name(d.role) or str(d.role)
        where = f" in schema {schemas.get(d.schema, d.schema)}" if d.schema else ""
        word = defacl_word(d.objtype)
        grantees = sorted({snap.role_name(g.grantee) or "PUBLIC" for g in d.acl})
        yield finding(
            "defaults.wrong-role",
            f"default privileges for role {who} on {word.lower()}{where}",
            who,
            f"default privileges are defined for {who}, which is not the owner: they never apply "
            f"to the owner's objects (grantees: {', '.join(grantees) or 'none'})",
            "\n".join(s.as_string(None) for s in _default_acl_reset(snap, d, who, schemas.get(d.schema))),
        )


#: What PostgreSQL gives PUBLIC on new objects of a default-ACL type when no entry says otherwise.
_PUBLIC_DEFAULT = {"f": "EXECUTE", "T": "USAGE"}


def _default_acl_reset(snap: Snapshot, d: DefaultAcl, who: str, schema: str | None) -> list[sql.Composed]:
    """Statements that delete a default-privileges entry: PostgreSQL drops it once it equals the
    built-in default, which is nothing for a per-schema entry and, for a global one, the role's own
    privileges (plus PUBLIC's EXECUTE on routines and USAGE on types)."""
    word = sql.SQL(defacl_word(d.objtype))
    prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}").format(sql.Identifier(who))
    if schema is not None:
        prefix = sql.SQL("{} IN SCHEMA {}").format(prefix, sql.Identifier(schema))
    names = {snap.role_name(g.grantee) for g in d.acl}
    if schema is not None:
        revoke_from = names
    else:
        revoke_from = names - {who} - ({None} if d.objtype in _PUBLIC_DEFAULT else set())
    out = []
    if revoke_from:
        targets = sql.SQL(", ").join(
            sql.SQL("PUBLIC") if n is None else sql.Identifier(n) for n in sorted(revoke_from, key=str)
        )
        out.append(sql.SQL("{} REVOKE ALL ON {} FROM {}").format(prefix, word, targets))
    if schema is None:
        own = {g.privilege for g in d.acl if g.grantee == d.role}
        k = BY_DEFACL_CODE.get(d.objtype)
        if k is not None and own != set(k.owner_privileges(snap.caps.major)):
            out.append(sql.SQL("{} GRANT ALL ON {} TO {}").format(prefix, word, sql.Identifier(who)))
        public = _PUBLIC_DEFAULT.get(d.objtype)
        if public and not any(g.grantee == 0 and g.privilege == public for g in d.acl):
            out.append(sql.SQL("{} GRANT {} ON {} TO PUBLIC").format(prefix, sql.SQL(public), word))
    return out
