"""plan(policy, snapshot) -> Plan: the ordered steps that make the database match the policy. Pure."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql

from pgwarden import scram
from pgwarden.caps import Capabilities
from pgwarden.errors import PolicyError
from pgwarden.policy import AccessLevel, Policy
from pgwarden.snapshot import NAME_THRESHOLD, Acl, ObjectGroup, ObjectKind, ObjectRef, Snapshot

#: Objects named in one GRANT/REVOKE statement at most.
OBJECTS_PER_STATEMENT = 1000


#: What a step executes: a composed statement (psycopg's execute() takes these, not any Composable).
Statement = sql.SQL | sql.Composed


class Phase(enum.IntEnum):
    """Roles and CREATE DATABASE run first (the latter outside a transaction); then everything
    inside the database in one transaction."""

    ROLES = 1
    CREATE_DATABASE = 2
    DATABASE = 3


@dataclass(frozen=True)
class Step:
    """One statement with its reason, what it needs and whether the connected admin has it."""

    phase: Phase
    action: str
    object: str
    reason: str
    sql: Statement
    role: str | None = None
    display_sql: Statement | None = None
    destructive: bool = False
    needs: str | None = None
    allowed: bool = True
    count: int = 1

    def render(self) -> str:
        """SQL text for people: secrets are replaced by psql variables."""
        return (self.display_sql or self.sql).as_string(None)

    def render_short(self, limit: int = 400) -> str:
        """render(), cut for a screen: a grant on 1,000 tables is one long statement."""
        text = self.render()
        if len(text) <= limit:
            return text
        return text[:limit].rstrip() + f" ... ({self.count} objects; the whole statement with --format sql)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.name.lower(),
            "action": self.action,
            "object": self.object,
            "role": self.role,
            "reason": self.reason,
            "sql": self.render(),
            "destructive": self.destructive,
            "needs": self.needs,
            "allowed": self.allowed,
            "count": self.count,
        }


@dataclass(frozen=True)
class Plan:
    database: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    server_version: str = ""
    lock_timeout: str = "5s"  # the policy's [apply] lock_timeout, for scripts printed from the plan

    @property
    def empty(self) -> bool:
        return not self.steps

    @property
    def unprivileged(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.allowed)

    def phase(self, phase: Phase) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.phase == phase)

    def to_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "changes": len(self.steps),
            "destructive": sum(1 for s in self.steps if s.destructive),
            "unprivileged": len(self.unprivileged),
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }


# Privilege profiles: what each access level gets, per object kind. Data, not branches.
PROFILES: Mapping[AccessLevel, Mapping[str, frozenset[str]]] = {
    "readwrite": {
        "table": frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
        "sequence": frozenset({"USAGE", "SELECT"}),
        "routine": frozenset({"EXECUTE"}),
        "schema": frozenset({"USAGE"}),
        "database": frozenset({"CONNECT"}),
    },
    "readonly": {
        "table": frozenset({"SELECT"}),
        "sequence": frozenset({"SELECT"}),
        "routine": frozenset({"EXECUTE"}),
        "schema": frozenset({"USAGE"}),
        "database": frozenset({"CONNECT"}),
    },
}

_KIND_WORD = {"table": "TABLE", "sequence": "SEQUENCE", "routine": "ROUTINE"}
_KIND_ALL = {"table": "TABLES", "sequence": "SEQUENCES", "routine": "ROUTINES"}
_KIND_DEFACL = {"table": "r", "sequence": "S", "routine": "f"}
_RELKIND_WORD = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
    "S": "SEQUENCE",
}
_RELKIND_NAME = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
    "f_": "function",
    "p_": "procedure",
    "a_": "aggregate",
    "w_": "window function",
}
_PRIV_ORDER = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "MAINTAIN",
    "USAGE",
    "EXECUTE",
    "CREATE",
    "CONNECT",
    "TEMPORARY",
)

PUBLIC: None = None  # grantee key for the PUBLIC pseudo-role
Grantee = str | None


def _privs(privs: Iterable[str]) -> sql.Composable:
    ordered = sorted(privs, key=lambda p: _PRIV_ORDER.index(p) if p in _PRIV_ORDER else 99)
    return sql.SQL(", ").join(sql.SQL(p) for p in ordered)


def _grantee(g: Grantee) -> sql.Composable:
    return sql.SQL("PUBLIC") if g is None else sql.Identifier(g)


def _show(g: Grantee) -> str:
    return "PUBLIC" if g is None else g


def _qual(schema: str, name: str) -> str:
    """schema.name for labels, quoted only where SQL would need it (as findings and probe write it)."""
    from pgwarden.findings import display_name

    return display_name(schema, name)


# --- what the connected admin can do -------------------------------------------------------------


@dataclass
class Authority:
    """What the connected admin may do, from its attributes and memberships."""

    name: str
    superuser: bool
    createrole: bool
    createdb: bool
    caps: Capabilities
    privs_of: set[str] = field(default_factory=set)
    member_of: set[str] = field(default_factory=set)
    can_set: set[str] = field(default_factory=set)
    admin_of: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, snap: Snapshot) -> Authority:
        me = snap.server
        auth = cls(me.current_role, me.is_superuser, me.can_createrole, me.can_createdb, snap.caps)
        names = {oid: r.name for oid, r in snap.roles.items()}
        edges: dict[int, list[tuple[int, bool, bool]]] = defaultdict(list)
        for m in snap.memberships:
            member = snap.roles.get(m.member)
            if snap.caps.membership_options:
                inherit = bool(m.inherit)
                can_set = bool(m.set)
            else:
                inherit = bool(member and member.inherit)
                can_set = True
            edges[m.member].append((m.role, inherit, can_set))
            if m.member == me.current_role_oid and m.admin:
                auth.admin_of.add(names.get(m.role, str(m.role)))

        def closure(pick: str) -> set[str]:
            seen = {me.current_role_oid}
            todo = [me.current_role_oid]
            while todo:
                current = todo.pop()
                for role, inherit, can_set in edges.get(current, ()):
                    ok = {"member": True, "inherit": inherit, "set": can_set}[pick]
                    if ok and role not in seen:
                        seen.add(role)
                        todo.append(role)
            return {names.get(o, str(o)) for o in seen}

        auth.member_of = closure("member")
        auth.privs_of = closure("inherit")
        auth.can_set = closure("set")
        return auth

    def gain(self, role: str) -> None:
        """A planned GRANT role TO admin WITH INHERIT, SET."""
        self.member_of.add(role)
        self.privs_of.add(role)
        self.can_set.add(role)

    def acts_as(self, role: str) -> bool:
        return self.superuser or role in self.privs_of

    def may_set(self, role: str) -> bool:
        return self.superuser or role in self.can_set

    def may_alter_role(self, role: str, exists: bool) -> bool:
        if self.superuser:
            return True
        if not self.createrole:
            return False
        return not exists or not self.caps.membership_options or role in self.admin_of


def _need(ok: bool, text: str) -> tuple[bool, str | None]:
    return ok, (None if ok else text)


# --- ACL comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    action: Literal["grant", "revoke", "revoke-grant-option"]
    grantee: Grantee
    privs: frozenset[str]
    everything: bool = False  # revoke ALL (the grantee keeps nothing)


#: Stands for the owner's oid while the owner role is only planned (ownership moves to it).
PLANNED_OWNER_OID = -1


def _rename_to_owner(old: int, snap: Snapshot, owner: str) -> dict[int, int]:
    """ACL entries of the previous owner move to the new owner with ALTER ... OWNER TO."""
    role = snap.role_by_name.get(owner)
    return {old: role.oid if role else PLANNED_OWNER_OID}


def _by_grantee(
    acl: Acl, snap: Snapshot, rename: Mapping[int, int] | None = None, owner: str | None = None
) -> dict[Grantee, dict[str, set[str]]]:
    """{grantee: {"all": privs, "grantors": {"grantor_oid:priv"}, "grantable": privs}}.

    `rename` maps previous owners to the new one (PLANNED_OWNER_OID stands for `owner`)."""
    out: dict[Grantee, dict[str, set[str]]] = {}
    for g in acl:
        grantee = rename.get(g.grantee, g.grantee) if rename else g.grantee
        grantor = rename.get(g.grantor, g.grantor) if rename else g.grantor
        name = owner if grantee == PLANNED_OWNER_OID else snap.role_name(grantee)
        entry = out.setdefault(name, {"all": set(), "grantors": set(), "grantable": set()})
        entry["all"].add(g.privilege)
        entry["grantors"].add(f"{grantor}:{g.privilege}")
        if g.grantable:
            entry["grantable"].add(g.privilege)
    return out


def _diff(
    actual: dict[Grantee, dict[str, set[str]]],
    expected: Mapping[Grantee, frozenset[str]],
    tolerated: Mapping[Grantee, frozenset[str]],
    ignore: frozenset[str],
    owner: str | None,
    owner_oid: int | None,
) -> list[_Change]:
    changes: list[_Change] = []
    grantees = sorted(set(actual) | set(expected), key=lambda g: (g is not None, g or ""))
    for g in grantees:
        if g is not None and g in ignore:
            continue
        want = expected.get(g, frozenset())
        info: dict[str, set[str]] = actual.get(g, {"all": set(), "grantors": set(), "grantable": set()})
        have = info["all"]
        if owner_oid is not None and g != owner:
            granted_by_owner = {p for p in have if f"{owner_oid}:{p}" in info["grantors"]}
        else:
            granted_by_owner = set(have)
        missing = want - granted_by_owner
        extra = have - want - tolerated.get(g, frozenset())
        if missing:
            changes.append(_Change("grant", g, frozenset(missing)))
        if extra:
            changes.append(_Change("revoke", g, frozenset(extra), everything=not (have - extra)))
        if g != owner:
            options = info["grantable"] - extra
            if options:
                changes.append(_Change("revoke-grant-option", g, frozenset(options)))
    return changes


# --- the planner ------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    policy: Policy
    snap: Snapshot
    auth: Authority
    owner: str
    ignore: frozenset[str]
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quoted: dict[int, str] = field(default_factory=dict)  # object oid -> its name as SQL text

    def add(self, step: Step) -> None:
        self.steps.append(step)


def plan(policy: Policy, snap: Snapshot, secrets: Mapping[str, str] | None = None) -> Plan:
    """Compute what must change for the database to match the policy. No I/O.

    `secrets` maps password environment variable names to their values (read by the caller)."""
    if not snap.caps.supported:
        raise PolicyError(
            f"PostgreSQL {snap.server.version} is not supported",
            hint="pgwarden supports PostgreSQL 14 to 18",
        )
    bootstrap = snap.roles.get(10)
    if bootstrap and policy.owner.name == bootstrap.name:
        raise PolicyError(
            f"the owner cannot be the bootstrap superuser {bootstrap.name!r}",
            hint="choose a dedicated owner role; `pgwarden adopt` moves objects to it",
        )
    ctx = _Ctx(
        policy=policy,
        snap=snap,
        auth=Authority.of(snap),
        owner=policy.owner.name,
        ignore=frozenset(policy.ignore.roles),
    )
    _plan_roles(ctx, secrets or {})
    _plan_memberships(ctx)
    _plan_database(ctx)
    _plan_schemas(ctx)
    _plan_objects(ctx)
    _plan_default_privileges(ctx)
    _plan_role_settings(ctx)
    # The admin's own membership in the owner is a means, not drift: alone, it is no change at all
    # (otherwise a non-superuser admin or an auditor role could never see a clean plan).
    admin_step = [s for s in ctx.steps if s.action == "grant-membership" and s.role == ctx.auth.name]
    if admin_step and len(ctx.steps) == len(admin_step):
        ctx.steps.clear()
    if not snap.database_exists:
        ctx.notes.append(missing_database_note(policy.database.name))
    return Plan(
        policy.database.name, tuple(ctx.steps), tuple(ctx.notes), snap.server.version, policy.apply.lock_timeout
    )


def missing_database_note(name: str) -> str:
    """The note a plan carries while its database does not exist (apply drops it once created)."""
    return f"database {name} does not exist yet: its steps were planned from template1, which CREATE DATABASE copies"


# --- roles ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RoleWant:
    name: str
    what: str  # "owner", "deploy login", "readwrite access role", ...
    login: bool
    attrs: Mapping[str, bool]  # attribute -> wanted value (only the ones we enforce)
    password_env: str | None


_ATTR_SQL = {
    "login": ("LOGIN", "NOLOGIN"),
    "superuser": ("SUPERUSER", "NOSUPERUSER"),
    "createdb": ("CREATEDB", "NOCREATEDB"),
    "createrole": ("CREATEROLE", "NOCREATEROLE"),
    "replication": ("REPLICATION", "NOREPLICATION"),
    "bypassrls": ("BYPASSRLS", "NOBYPASSRLS"),
}


def _wanted_roles(policy: Policy) -> list[_RoleWant]:
    o = policy.owner
    out = [
        _RoleWant(
            o.name,
            "owner",
            o.login,
            {"login": o.login, "superuser": False, "createdb": o.createdb, "createrole": o.createrole},
            o.password_env if o.login else None,
        )
    ]
    for env_name, deploy in zip(
        (env for role, env in policy.login_roles() if role in o.deploy_logins), o.deploy_logins, strict=False
    ):
        out.append(_RoleWant(deploy, "deploy login", True, {"login": True, "superuser": False}, env_name))
    for a in policy.access:
        attrs = {
            "login": a.login,
            "superuser": False,
            "createdb": False,
            "createrole": False,
            "replication": False,
            "bypassrls": False,
        }
        out.append(_RoleWant(a.name, f"{a.level} access role", a.login, attrs, a.password_env if a.login else None))
    return out


def _plan_roles(ctx: _Ctx, secrets: Mapping[str, str]) -> None:
    snap, auth = ctx.snap, ctx.auth
    for want in _wanted_roles(ctx.policy):
        role = snap.role_by_name.get(want.name)
        password = secrets.get(want.password_env) if want.password_env else None
        if want.password_env and password is None:
            ctx.notes.append(
                f"{want.password_env} is not set: role {want.name} "
                + ("is created without a password" if role is None else "keeps its current password")
            )
        if role is None:
            options: list[sql.Composable] = [sql.SQL(_ATTR_SQL[a][0 if v else 1]) for a, v in want.attrs.items()]
            display = list(options)
            if password is not None and want.password_env:
                verifier = scram.make_verifier(password)
                options.append(sql.SQL("PASSWORD {}").format(sql.Literal(verifier)))
                display.append(sql.SQL("PASSWORD :{}").format(sql.Literal(want.password_env)))
            ok, needs = _need(auth.superuser or auth.createrole, "superuser or CREATEROLE")
            if auth.createrole and not auth.superuser:
                # 16+: a CREATEROLE role cannot give attributes it lacks (F3.3)
                if want.attrs.get("createdb") and not auth.createdb:
                    ok, needs = False, "superuser, or CREATEROLE with CREATEDB"
            reason = f"the {want.what} must exist"
            if want.what == "owner" and not want.attrs.get("createrole"):
                reason += " (without CREATEROLE: on PostgreSQL 14-15 it is nearly superuser)"
            ctx.add(
                Step(
                    Phase.ROLES,
                    "create-role",
                    f"role {want.name}",
                    reason,
                    sql.SQL("CREATE ROLE {} WITH {}").format(sql.Identifier(want.name), sql.SQL(" ").join(options)),
                    role=want.name,
                    display_sql=sql.SQL("CREATE ROLE {} WITH {}").format(
                        sql.Identifier(want.name), sql.SQL(" ").join(display)
                    ),
                    needs=needs,
                    allowed=ok,
                )
            )
            if auth.createrole and not auth.superuser and snap.caps.membership_options:
                auth.admin_of.add(want.name)  # 16+: the creator gets ADMIN OPTION (F3.1)
            continue
        current = {
            "login": role.login,
            "superuser": role.superuser,
            "createdb": role.createdb,
            "createrole": role.createrole,
            "replication": role.replication,
            "bypassrls": role.bypassrls,
        }
        wrong = {a: v for a, v in want.attrs.items() if current[a] != v}
        if wrong:
            ok = auth.may_alter_role(want.name, True)
            needs = "superuser, or CREATEROLE (with ADMIN OPTION on the role on 16+)"
            privileged = {"superuser", "replication", "bypassrls"}
            if not auth.superuser and (privileged & set(wrong)):
                ok, needs = False, "superuser"
            if not auth.superuser and "createdb" in wrong and not auth.createdb:
                ok, needs = False, "superuser, or CREATEROLE with CREATEDB"
            removing = [a for a, v in wrong.items() if not v]
            ctx.add(
                Step(
                    Phase.ROLES,
                    "alter-role",
                    f"role {want.name}",
                    f"the {want.what} must be "
                    + " ".join(_ATTR_SQL[a][0 if v else 1] for a, v in sorted(wrong.items())),
                    sql.SQL("ALTER ROLE {} WITH {}").format(
                        sql.Identifier(want.name),
                        sql.SQL(" ").join(sql.SQL(_ATTR_SQL[a][0 if v else 1]) for a, v in sorted(wrong.items())),
                    ),
                    role=want.name,
                    destructive=bool(removing),
                    needs=None if ok else needs,
                    allowed=ok,
                )
            )
        if password is not None and want.password_env:
            stored = None if snap.passwords is None else snap.passwords.get(role.oid)
            if snap.passwords is not None and scram.matches(password, stored):
                continue
            if snap.passwords is None and snap.password_checks.get(want.name):
                continue  # logging in with it worked: the password is already set
            reason = (
                f"set the password from {want.password_env}"
                if snap.passwords is not None
                else f"set the password from {want.password_env} (the stored verifier is readable by "
                "superusers only, so pgwarden cannot tell whether it changed)"
            )
            # any role may change its own password
            ok = snap.server.current_role == want.name or auth.may_alter_role(want.name, True)
            ctx.add(
                Step(
                    Phase.ROLES,
                    "set-password",
                    f"role {want.name}",
                    reason,
                    sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                        sql.Identifier(want.name), sql.Literal(scram.make_verifier(password))
                    ),
                    role=want.name,
                    display_sql=sql.SQL("ALTER ROLE {} WITH PASSWORD :{}").format(
                        sql.Identifier(want.name), sql.Literal(want.password_env)
                    ),
                    needs=None if ok else "superuser, or CREATEROLE (with ADMIN OPTION on the role on 16+)",
                    allowed=ok,
                )
            )


# --- memberships ---------------------------------------------------------------------------------


def _plan_memberships(ctx: _Ctx) -> None:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    names = snap.role_by_name
    forbidden_for_access = {owner, *policy.owner.deploy_logins, *snap.caps.dangerous_predefined_roles}
    forbidden_for_access |= {"pg_read_all_data", "pg_write_all_data"}
    access_names = {a.name for a in policy.access}
    for m in snap.memberships:
        member = snap.role_name(m.member)
        role = snap.role_name(m.role)
        if member not in access_names or role is None:
            continue
        if role in forbidden_for_access or (role in access_names and role != member):
            ok = auth.superuser or role in auth.admin_of or (auth.createrole and not snap.caps.membership_options)
            grantor = snap.role_name(m.grantor)
            statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
            if snap.caps.membership_options and grantor:
                statement = sql.SQL("{} GRANTED BY {}").format(statement, sql.Identifier(grantor))
            ctx.add(
                Step(
                    Phase.ROLES,
                    "revoke-membership",
                    f"role {member}",
                    f"access role {member} must not be a member of {role}: it would "
                    + ("act as the owner and change the schema" if role == owner else "gain rights beyond its level"),
                    statement,
                    role=member,
                    destructive=True,
                    needs=None if ok else "superuser or ADMIN OPTION on " + role,
                    allowed=ok,
                )
            )
    owner_role = names.get(owner)
    for deploy in policy.owner.deploy_logins:
        dep = names.get(deploy)
        if owner_role and dep and any(m.role == owner_role.oid and m.member == dep.oid for m in snap.memberships):
            continue
        ok = auth.superuser or owner in auth.admin_of or (auth.createrole and not snap.caps.membership_options)
        ctx.add(
            Step(
                Phase.ROLES,
                "grant-membership",
                f"role {deploy}",
                f"deploy login {deploy} must be able to act as the owner {owner}",
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(deploy)),
                role=deploy,
                needs=None if ok else f"superuser or ADMIN OPTION on {owner}",
                allowed=ok,
            )
        )
    if not auth.superuser and not (auth.acts_as(owner) and auth.may_set(owner)):
        ok = owner in auth.admin_of or (auth.createrole and not snap.caps.membership_options)
        statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(auth.name))
        if snap.caps.membership_options:
            statement = sql.SQL("{} WITH INHERIT TRUE, SET TRUE").format(statement)
        ctx.add(
            Step(
                Phase.ROLES,
                "grant-membership",
                f"role {auth.name}",
                f"the admin {auth.name} is not a superuser: it must act as the owner {owner} to create "
                "its database, grant on its objects and set its default privileges",
                statement,
                role=auth.name,
                needs=None if ok else f"superuser or ADMIN OPTION on {owner}",
                allowed=ok,
            )
        )
        if ok:
            auth.gain(owner)


# --- database ---------------------------------------------------------------------------------------


def _plan_database(ctx: _Ctx) -> None:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    db = snap.database
    name = policy.database.name
    if db is None:
        ok = auth.superuser or (auth.createdb and auth.may_set(owner))
        ctx.add(
            Step(
                Phase.CREATE_DATABASE,
                "create-database",
                f"database {name}",
                f"the database must exist, owned by {owner}",
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)),
                needs=None if ok else f"superuser, or CREATEDB and membership in {owner}",
                allowed=ok,
            )
        )
        # a new database gets acldefault('d', owner): the owner's CTc and PUBLIC's Tc
        actual = {
            owner: {"all": set(snap.caps.owner_privileges("database")), "grantors": set(), "grantable": set()},
            PUBLIC: {"all": {"CONNECT", "TEMPORARY"}, "grantors": set(), "grantable": set()},
        }
        owner_oid = None
    else:
        current_owner = snap.role_name(db.owner) or ""
        rename: dict[int, int] = {}
        if current_owner != owner:
            ok = auth.superuser or (auth.acts_as(current_owner) and auth.createdb and auth.may_set(owner))
            ctx.add(
                _owner_step(
                    f"database {name}",
                    sql.SQL("DATABASE {}").format(sql.Identifier(name)),
                    f"the database must be owned by {owner} (now {current_owner})",
                    owner,
                    current_owner,
                    ok,
                    f"superuser, or membership in {current_owner} and {owner} with CREATEDB",
                )
            )
            rename = _rename_to_owner(db.owner, snap, owner)
        actual = _by_grantee(db.acl, snap, rename, owner)
        owner_role = snap.role_by_name.get(owner)
        owner_oid = owner_role.oid if owner_role else PLANNED_OWNER_OID
    expected: dict[Grantee, frozenset[str]] = {owner: frozenset(snap.caps.owner_privileges("database"))}
    for a in policy.access:
        expected[a.name] = PROFILES[a.level]["database"]
    for deploy in policy.owner.deploy_logins:
        expected[deploy] = frozenset({"CONNECT"})
    tolerated: dict[Grantee, frozenset[str]] = {}
    if not policy.hardening.revoke_public_connect:
        tolerated[PUBLIC] = frozenset({"CONNECT", "TEMPORARY"})
    allowed = auth.acts_as(owner)
    for change in _diff(actual, expected, tolerated, ctx.ignore, owner, owner_oid):
        target = sql.SQL("DATABASE {}").format(sql.Identifier(name))
        if change.grantee is None and change.action == "revoke":
            reason = "hardening: roles outside the policy must not connect or create temporary tables"
        elif change.action == "grant":
            reason = f"{_show(change.grantee)} must be able to connect"
        else:
            reason = f"{_show(change.grantee)} must hold only what the policy gives it on the database"
        ctx.add(_acl_step(change, target, f"database {name}", reason, allowed, f"superuser or membership in {owner}"))


def _acl_step(
    change: _Change,
    target: sql.Composable,
    label: str,
    reason: str,
    allowed: bool,
    needs: str,
    *,
    count: int = 1,
) -> Step:
    who = _grantee(change.grantee)
    if change.action == "grant":
        statement = sql.SQL("GRANT {} ON {} TO {}").format(_privs(change.privs), target, who)
    elif change.action == "revoke":
        privs = sql.SQL("ALL") if change.everything else _privs(change.privs)
        statement = sql.SQL("REVOKE {} ON {} FROM {} CASCADE").format(privs, target, who)
    else:
        statement = sql.SQL("REVOKE GRANT OPTION FOR {} ON {} FROM {} CASCADE").format(
            _privs(change.privs), target, who
        )
    return Step(
        Phase.DATABASE,
        change.action if change.action != "revoke-grant-option" else "revoke-grant-option",
        label,
        reason,
        statement,
        role=change.grantee,
        destructive=change.action != "grant",
        needs=None if allowed else needs,
        allowed=allowed,
        count=count,
    )


# --- schemas ----------------------------------------------------------------------------------------


def _plan_schemas(ctx: _Ctx) -> None:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    managed = policy.database.schemas
    access_names = {a.name for a in policy.access}
    for name in managed:
        schema = snap.schema_by_name(name)
        target = sql.SQL("SCHEMA {}").format(sql.Identifier(name))
        if schema is None:
            ok = auth.superuser or auth.acts_as(owner)
            ctx.add(
                Step(
                    Phase.DATABASE,
                    "create-schema",
                    f"schema {name}",
                    f"managed schema {name} must exist, owned by {owner}",
                    sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(name), sql.Identifier(owner)),
                    needs=None if ok else f"superuser or membership in {owner}",
                    allowed=ok,
                )
            )
            acl_owner = owner
            actual: dict[Grantee, dict[str, set[str]]] = {
                owner: {"all": {"USAGE", "CREATE"}, "grantors": set(), "grantable": set()}
            }
            owner_oid = None
            allowed = ok
        else:
            current = snap.role_name(schema.owner) or ""
            rename: dict[int, int] = {}
            acl_owner = current
            may_move = auth.superuser or (auth.acts_as(current) and auth.may_set(owner))
            if current == "pg_database_owner":
                allowed = auth.acts_as(owner)  # the database owner owns it (15+)
            elif current != owner and name == "public" and not may_move:
                # public's owner (the bootstrap superuser on 14) cannot be changed by this admin: the
                # owner gets CREATE there instead, and what needs public's owner is reported as such
                allowed = auth.acts_as(current)
            elif current != owner:
                ok = may_move
                ctx.add(
                    _owner_step(
                        f"schema {name}",
                        sql.SQL("SCHEMA {}").format(sql.Identifier(name)),
                        f"managed schema {name} must be owned by {owner} (now {current})",
                        owner,
                        current,
                        ok,
                        f"superuser or membership in {current}",
                    )
                )
                rename = _rename_to_owner(schema.owner, snap, owner)
                acl_owner = owner
                allowed = ok
            else:
                allowed = auth.acts_as(owner)
            actual = _by_grantee(schema.acl, snap, rename, owner)
            owner_oid = rename.get(schema.owner, schema.owner)
        expected: dict[Grantee, frozenset[str]] = {acl_owner: frozenset({"USAGE", "CREATE"})}
        if acl_owner not in (owner, "pg_database_owner"):
            expected[owner] = frozenset({"USAGE", "CREATE"})  # public kept by its owner: see above
        for a in policy.access:
            expected[a.name] = PROFILES[a.level]["schema"]
        tolerated: dict[Grantee, frozenset[str]] = {PUBLIC: frozenset({"USAGE"})}
        owned_by = owner if acl_owner in (owner, "pg_database_owner") else acl_owner
        needs = f"superuser or the privileges of {owned_by} (the owner of schema {name})"
        for change in _diff(actual, expected, tolerated, ctx.ignore, acl_owner, owner_oid):
            if change.grantee is None or change.grantee in access_names:
                if "CREATE" in change.privs and change.action == "revoke":
                    reason = f"only the owner may create objects in schema {name}"
                elif change.action == "grant":
                    reason = f"{_show(change.grantee)} must be able to use schema {name}"
                else:
                    reason = f"{_show(change.grantee)} must hold only USAGE on schema {name}"
            else:
                reason = f"{_show(change.grantee)} is not in the policy and must hold nothing on schema {name}"
            ctx.add(_acl_step(change, target, f"schema {name}", reason, allowed, needs))
    # Outside the managed schemas: no CREATE for access roles anywhere, none for PUBLIC on public.
    for schema in snap.schemas:
        if schema.name in managed or schema.extension:
            continue
        schema_owner = snap.role_name(schema.owner) or ""
        if schema_owner == "pg_database_owner":
            allowed = auth.acts_as(owner)
        else:
            allowed = auth.acts_as(schema_owner)
        for g in sorted({snap.role_name(g.grantee) for g in schema.acl if g.privilege == "CREATE"}, key=str):
            if g is not None and g not in access_names:
                continue
            if g is None and schema.name != "public":
                continue
            reason = (
                "PUBLIC must not create objects in schema public (the PostgreSQL 14 default, kept by upgrades)"
                if g is None
                else f"access role {g} must not create objects anywhere"
            )
            ctx.add(
                _acl_step(
                    _Change("revoke", g, frozenset({"CREATE"})),
                    sql.SQL("SCHEMA {}").format(sql.Identifier(schema.name)),
                    f"schema {schema.name}",
                    reason,
                    allowed,
                    f"superuser or the owner of schema {schema.name} ({schema_owner})",
                )
            )


# --- tables, sequences, routines -----------------------------------------------------------------------


def _expected_for(ctx: _Ctx, kind: ObjectKind) -> tuple[dict[Grantee, frozenset[str]], dict[Grantee, frozenset[str]]]:
    expected: dict[Grantee, frozenset[str]] = {ctx.owner: frozenset(ctx.snap.caps.owner_privileges(kind))}
    tolerated: dict[Grantee, frozenset[str]] = {}
    if kind == "routine" and not ctx.policy.hardening.revoke_public_execute:
        tolerated[PUBLIC] = frozenset({"EXECUTE"})
        return expected, tolerated
    for a in ctx.policy.access:
        expected[a.name] = PROFILES[a.level][kind]
    return expected, tolerated


def _describe(kind: ObjectKind, schema: str, objects: Sequence[ObjectRef] | None, count: int) -> str:
    if objects is not None and len(objects) == 1:
        o = objects[0]
        sub = _RELKIND_NAME.get(o.subkind if kind != "routine" else o.subkind + "_", kind)
        ident = _qual(schema, o.name) + (f"({o.args})" if kind == "routine" else "")
        return f"{sub} {ident}"
    plural = {"table": "tables", "sequence": "sequences", "routine": "routines"}[kind]
    return f"{count} {plural} in schema {schema}"


def _object_sql(kind: ObjectKind, schema: str, obj: ObjectRef) -> sql.Composable:
    name = sql.Identifier(schema, obj.name)
    if kind == "routine":
        # Identity arguments come from pg_get_function_identity_arguments(): type names quoted
        # by the server itself, never user input.
        return sql.SQL("{}({})").format(name, sql.SQL(obj.args or ""))
    return name


def _object_list(ctx: _Ctx, kind: ObjectKind, schema: str, objects: Sequence[ObjectRef]) -> sql.Composable:
    """The objects of one GRANT/REVOKE as one SQL fragment. Each name is quoted by psycopg
    (sql.Identifier) once per plan and the list joined as text: a statement on 1,000 tables is then
    one string to compose and send, not 2,000 objects, and an object granted to several roles is
    quoted once."""
    quoted = ctx.quoted
    parts = []
    for o in objects:
        text = quoted.get(o.oid)
        if text is None:
            text = _object_sql(kind, schema, o).as_string(None)
            quoted[o.oid] = text
        parts.append(text)
    return sql.SQL(", ".join(parts))


#: A bulk `... ON ALL TABLES IN SCHEMA` scans all of pg_class; a list of names costs one catalog
#: lookup per object. Measured on 16: 110 ms for 1,000 tables among 200,000 relations in bulk,
#: 16 ms as a list. Bulk is used when the change touches at least 1/BULK_FACTOR of the relations.
BULK_FACTOR = 20

_PendingKey = tuple[str, ObjectKind, _Change]


def _group_changes(ctx: _Ctx, group: ObjectGroup) -> list[_Change]:
    """What must change on the objects of one group (after a planned ownership change)."""
    snap, owner = ctx.snap, ctx.owner
    owner_role = snap.role_by_name.get(owner)
    rename = _rename_to_owner(group.owner, snap, owner) if (snap.role_name(group.owner) or "") != owner else {}
    actual = _by_grantee(group.acl, snap, rename, owner)
    expected, tolerated = _expected_for(ctx, group.kind)
    return _diff(actual, expected, tolerated, ctx.ignore, owner, owner_role.oid if owner_role else -1)


def _pending(ctx: _Ctx) -> dict[_PendingKey, list[ObjectGroup]]:
    """(schema, kind, change) -> the groups whose objects need that change."""
    schema_names = {s.oid: s.name for s in ctx.snap.schemas}
    pending: dict[_PendingKey, list[ObjectGroup]] = defaultdict(list)
    for group in ctx.snap.objects:
        if group.extension:
            continue
        schema = schema_names.get(group.schema, str(group.schema))
        for change in _group_changes(ctx, group):
            pending[(schema, group.kind, change)].append(group)
    return pending


def _scan_rows(snap: Snapshot, kind: ObjectKind) -> int:
    """Rows a bulk statement on `kind` scans (pg_class or pg_proc of the managed schemas, at least)."""
    if kind == "routine":
        return 3000 + sum(g.count for g in snap.objects if g.kind == "routine")
    return sum(g.count for g in snap.objects if g.kind != "routine")


def _bulk_is_cheaper(snap: Snapshot, kind: ObjectKind, total: int) -> bool:
    return total > NAME_THRESHOLD and total * BULK_FACTOR >= _scan_rows(snap, kind)


def groups_to_name(policy: Policy, snap: Snapshot) -> list[ObjectGroup]:
    """Groups whose objects a plan will change one by one but that the snapshot does not list:
    the session fetches their names (snapshot.with_names) before planning."""
    ctx = _Ctx(policy, snap, Authority.of(snap), policy.owner.name, frozenset(policy.ignore.roles))
    out: dict[int, ObjectGroup] = {}
    for (_schema, kind, _change), groups in _pending(ctx).items():
        if _bulk_is_cheaper(snap, kind, sum(g.count for g in groups)):
            continue
        out.update((id(g), g) for g in groups if g.objects is None)
    return list(out.values())


def _plan_objects(ctx: _Ctx) -> None:
    snap, auth, owner = ctx.snap, ctx.auth, ctx.owner
    schema_names = {s.oid: s.name for s in snap.schemas}
    needs_acl = f"superuser or membership in {owner}"
    blocked_owner: dict[int, str] = {}  # id(group) -> owner the admin may not move it from
    kind_has_extension: set[tuple[int, str]] = {(g.schema, g.kind) for g in snap.objects if g.extension}
    kind_total: dict[tuple[int, str], int] = defaultdict(int)
    for g in snap.objects:
        kind_total[(g.schema, g.kind)] += g.count
    for group in snap.objects:
        group_owner = snap.role_name(group.owner) or ""
        if group.extension or group_owner == owner:
            continue
        # grants are planned for after the owner change; if that change is not allowed, neither are they
        if not group.linked:
            _plan_owner_change(ctx, group, schema_names.get(group.schema, str(group.schema)), group_owner)
        if not _owner_change_allowed(ctx, group_owner):
            blocked_owner[id(group)] = group_owner
    for (schema, kind, change), groups in _pending(ctx).items():
        stuck = sorted({blocked_owner[id(g)] for g in groups if id(g) in blocked_owner})
        allowed = auth.acts_as(owner) and not stuck
        needs = needs_acl if not stuck else f"superuser or membership in {', '.join(stuck)} (the objects' owner)"
        schema_oid = next(s.oid for s in snap.schemas if s.name == schema)
        total = sum(g.count for g in groups)
        named = all(g.objects is not None for g in groups)
        use_bulk = (not named or _bulk_is_cheaper(snap, kind, total)) and (schema_oid, kind) not in kind_has_extension
        reason = _object_reason(change, kind)
        if use_bulk:
            target = sql.SQL("ALL {} IN SCHEMA {}").format(sql.SQL(_KIND_ALL[kind]), sql.Identifier(schema))
            label = f"{total} {_KIND_ALL[kind].lower()} in schema {schema}"
            if total != kind_total[(schema_oid, kind)]:
                label += f" (of {kind_total[(schema_oid, kind)]}; the others are unaffected)"
            ctx.add(_acl_step(change, target, label, reason, allowed, needs, count=total))
            continue
        objects = sorted((o for g in groups for o in (g.objects or ())), key=lambda o: (o.name, o.oid))
        for start in range(0, len(objects), OBJECTS_PER_STATEMENT):
            chunk = objects[start : start + OBJECTS_PER_STATEMENT]
            target = sql.SQL("{} {}").format(sql.SQL(_KIND_WORD[kind]), _object_list(ctx, kind, schema, chunk))
            label = _describe(kind, schema, chunk, len(chunk))
            ctx.add(_acl_step(change, target, label, reason, allowed, needs, count=len(chunk)))


def _object_reason(change: _Change, kind: ObjectKind) -> str:
    who = _show(change.grantee)
    if change.action == "grant":
        return f"{who} must have {', '.join(sorted(change.privs))} on every {kind} of the managed schemas"
    if change.action == "revoke-grant-option":
        return f"{who} must not be able to grant its privileges to others"
    if change.grantee is None:
        return f"PUBLIC must hold nothing on {kind}s of the managed schemas"
    return f"{who} must hold only what the policy gives it ({', '.join(sorted(change.privs))} is extra)"


def _owner_step(
    label: str,
    target: sql.Composable,
    reason: str,
    owner: str,
    current: str,
    allowed: bool,
    needs: str,
    *,
    role: str | None = None,
) -> Step:
    """ALTER <target> OWNER TO <owner>: destructive (it moves what exists), with what it needs."""
    return Step(
        Phase.DATABASE,
        "alter-owner",
        label,
        reason,
        sql.SQL("ALTER {} OWNER TO {}").format(target, sql.Identifier(owner)),
        role=role,
        destructive=True,
        needs=None if allowed else needs,
        allowed=allowed,
    )


def _owner_change_allowed(ctx: _Ctx, current: str) -> bool:
    return ctx.auth.superuser or (ctx.auth.acts_as(current) and ctx.auth.may_set(ctx.owner))


def _plan_owner_change(ctx: _Ctx, group: ObjectGroup, schema: str, current: str) -> None:
    owner = ctx.owner
    ok = _owner_change_allowed(ctx, current)
    for obj in group.objects or ():
        if group.kind == "routine":
            word = "ROUTINE"
        else:
            word = _RELKIND_WORD.get(obj.subkind, "TABLE")
        ctx.add(
            _owner_step(
                _describe(group.kind, schema, [obj], 1),
                sql.SQL("{} {}").format(sql.SQL(word), _object_sql(group.kind, schema, obj)),
                f"every object in the managed schemas must be owned by {owner} (now {current})",
                owner,
                current,
                ok,
                f"superuser or membership in {current} and {owner}",
                role=current,
            )
        )


# --- default privileges ---------------------------------------------------------------------------------


def _plan_default_privileges(ctx: _Ctx) -> None:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    owner_role = snap.role_by_name.get(owner)
    schema_oids = {s.name: s.oid for s in snap.schemas}
    rows = {(d.schema, d.objtype): d.acl for d in snap.default_acls if owner_role and d.role == owner_role.oid}
    ok = auth.superuser or (owner in auth.member_of if not snap.caps.membership_options else auth.acts_as(owner))
    needs = f"superuser or membership in {owner}"
    kinds: list[ObjectKind] = ["table", "sequence"]
    if policy.hardening.revoke_public_execute:
        kinds.append("routine")
    for schema in policy.database.schemas:
        oid = schema_oids.get(schema)
        for kind in kinds:
            acl = rows.get((oid, _KIND_DEFACL[kind]), frozenset()) if oid is not None else frozenset()
            actual = _by_grantee(acl, snap)
            wanted: dict[Grantee, frozenset[str]] = {a.name: PROFILES[a.level][kind] for a in policy.access}
            for change in _diff(actual, wanted, {}, ctx.ignore, None, None):
                ctx.add(_defacl_step(ctx, change, kind, schema, ok, needs))
    # Global entries replace the built-in default (F1.5): they must give nothing beyond the owner's
    # own privileges, and, with the hardening, routines must not be executable by PUBLIC.
    global_kinds: list[ObjectKind] = ["table", "sequence", "routine"]
    for kind in global_kinds:
        objtype = _KIND_DEFACL[kind]
        if (0, objtype) in rows:
            actual = _by_grantee(rows[(0, objtype)], snap)
        else:
            actual = {owner: {"all": set(snap.caps.owner_privileges(kind)), "grantors": set(), "grantable": set()}}
            if kind == "routine":
                actual[PUBLIC] = {"all": {"EXECUTE"}, "grantors": set(), "grantable": set()}
        expected: dict[Grantee, frozenset[str]] = {owner: frozenset(snap.caps.owner_privileges(kind))}
        tolerated: dict[Grantee, frozenset[str]] = {}
        if kind == "routine" and not policy.hardening.revoke_public_execute:
            tolerated[PUBLIC] = frozenset({"EXECUTE"})
        for change in _diff(actual, expected, tolerated, ctx.ignore, owner, None):
            ctx.add(_defacl_step(ctx, change, kind, None, ok, needs))


def _defacl_step(ctx: _Ctx, change: _Change, kind: ObjectKind, schema: str | None, ok: bool, needs: str) -> Step:
    owner = ctx.owner
    prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}").format(sql.Identifier(owner))
    if schema is not None:
        prefix = sql.SQL("{} IN SCHEMA {}").format(prefix, sql.Identifier(schema))
    objects = sql.SQL(_KIND_ALL[kind])
    who = _grantee(change.grantee)
    if change.action == "grant":
        body = sql.SQL("GRANT {} ON {} TO {}").format(_privs(change.privs), objects, who)
        reason = (
            f"{kind}s {owner} creates later in schema {schema} must be usable by {_show(change.grantee)} "
            "with no further run"
            if schema
            else f"the owner keeps its own privileges on {kind}s it creates"
        )
    elif change.action == "revoke":
        privs = sql.SQL("ALL") if change.everything else _privs(change.privs)
        body = sql.SQL("REVOKE {} ON {} FROM {} CASCADE").format(privs, objects, who)
        if change.grantee is None and kind == "routine" and schema is None:
            reason = "hardening: functions the owner creates later must not be executable by PUBLIC"
        else:
            where = f"in schema {schema}" if schema else "in every schema"
            reason = f"{kind}s {owner} creates later {where} must not give {_show(change.grantee)} more than the policy"
    else:
        body = sql.SQL("REVOKE GRANT OPTION FOR {} ON {} FROM {} CASCADE").format(_privs(change.privs), objects, who)
        reason = f"{_show(change.grantee)} must not be able to grant privileges on future {kind}s"
    label = f"default privileges of {owner} on {kind}s" + (f" in schema {schema}" if schema else "")
    return Step(
        Phase.DATABASE,
        "default-privileges",
        label,
        reason,
        sql.SQL("{} {}").format(prefix, body),
        role=change.grantee,
        destructive=change.action != "grant" and change.grantee is not None,
        needs=None if ok else needs,
        allowed=ok,
    )


# --- role settings (deploy logins act as the owner) ---------------------------------------------------------------


def _plan_role_settings(ctx: _Ctx) -> None:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    db_oid = snap.database.oid if snap.database else None
    for deploy in policy.owner.deploy_logins:
        role = snap.role_by_name.get(deploy)
        current: tuple[str, ...] = ()
        if role is not None and db_oid is not None:
            for s in snap.role_settings:
                if s.role == role.oid and s.database == db_oid:
                    current = s.settings
        wanted = {f"role={owner}", f'role="{owner}"'}
        if any(s in wanted for s in current):
            continue
        ok = auth.superuser or (auth.createrole and auth.may_alter_role(deploy, role is not None))
        ctx.add(
            Step(
                Phase.DATABASE,
                "role-setting",
                f"role {deploy}",
                f"every session of deploy login {deploy} in {policy.database.name} must act as {owner}, "
                "so that what it creates is owned by the owner (works behind poolers too)",
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET role = {}").format(
                    sql.Identifier(deploy), sql.Identifier(policy.database.name), sql.Literal(owner)
                ),
                role=deploy,
                needs=None if ok else "superuser or CREATEROLE",
                allowed=ok,
            )
        )
