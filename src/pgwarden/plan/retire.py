"""Retiring roles, planned: what each retired role holds where, what blocks dropping it, and the steps. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from pgwarden.errors import PolicyError
from pgwarden.plan.authority import Authority
from pgwarden.plan.model import Action, Phase, Step
from pgwarden.policy import Policy, RetiredSpec
from pgwarden.snapshot import Membership, Role, Snapshot

#: Roles below this oid are PostgreSQL's own (the bootstrap superuser is 10, predefined roles follow).
FIRST_NORMAL_OID = 16384

#: pg_shdepend.classid -> the kind of thing, for people
_KINDS = {
    "pg_class": "relation",
    "pg_proc": "routine",
    "pg_type": "type",
    "pg_namespace": "schema",
    "pg_default_acl": "default privileges",
    "pg_database": "database",
    "pg_tablespace": "tablespace",
    "pg_auth_members": "membership",
    "pg_parameter_acl": "parameter",
    "pg_largeobject_metadata": "large object",
    "pg_foreign_server": "foreign server",
    "pg_foreign_data_wrapper": "foreign data wrapper",
    "pg_language": "language",
    "pg_event_trigger": "event trigger",
    "pg_policy": "policy",
    "pg_user_mapping": "user mapping",
    "pg_subscription": "subscription",
    "pg_publication": "publication",
    "pg_collation": "collation",
    "pg_conversion": "conversion",
    "pg_operator": "operator",
    "pg_opclass": "operator class",
    "pg_opfamily": "operator family",
    "pg_extension": "extension",
    "pg_statistic_ext": "statistics object",
    "pg_ts_config": "text search configuration",
    "pg_ts_dict": "text search dictionary",
}

#: pg_shdepend.deptype -> how the role is involved
_DEPENDENCIES = {"o": "owner", "a": "privileges", "r": "policy", "i": "initial-privileges"}


@dataclass(frozen=True)
class Holding:
    """`count` entries of pg_shdepend: the role is `dependency` (owner, privileges, ...) of things of `catalog`."""

    catalog: str
    deptype: str
    count: int

    @property
    def kind(self) -> str:
        return _KINDS.get(self.catalog, self.catalog.removeprefix("pg_"))

    @property
    def dependency(self) -> str:
        return _DEPENDENCIES.get(self.deptype, "other")

    def describe(self) -> str:
        kind = self.kind if self.count == 1 or self.kind.endswith("privileges") else f"{self.kind}s"
        words = {"owner": "owns", "privileges": "holds privileges on", "policy": "is named in"}
        if self.kind == "default privileges" and self.dependency == "owner":
            return f"{self.count} default privileges entr{'y' if self.count == 1 else 'ies'} of its own"
        if self.kind == "membership" and self.dependency == "privileges":
            return f"granted {self.count} membership(s)"
        return f"{words.get(self.dependency, self.dependency)} {self.count} {kind}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dependency": self.dependency, "count": self.count}


@dataclass(frozen=True)
class DatabaseAccess:
    """Whether the admin can work in a database: the catalog's flags and what connecting said."""

    name: str
    allows_connections: bool
    may_connect: bool
    error: str | None = None  # connecting failed (pg_hba, too many connections, ...)


@dataclass(frozen=True)
class Survey:
    """What the retired roles hold across the cluster (pgwarden.retirement reads it). `holdings` maps
    a role's oid to {database name ("" for shared objects): holdings}."""

    holdings: Mapping[int, Mapping[str, tuple[Holding, ...]]]
    databases: Mapping[str, DatabaseAccess]
    sessions: Mapping[str, int] = field(default_factory=dict)  # role name -> its live sessions
    session_user: str = ""
    admin_database: str = "postgres"  # the admin connection's database: where shared objects are handled


@dataclass(frozen=True)
class DatabaseWork:
    """What the role holds in one database and the statements that clear it (one transaction)."""

    database: str
    holdings: tuple[Holding, ...]
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "holds": [h.to_dict() for h in self.holdings],
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class Retirement:
    """One retired role that still exists: `before` runs on the admin connection (refuse logins, end
    sessions, keep memberships it granted), then every database's work, committed together once all
    succeeded, then `after` (DROP ROLE). Blocked: nothing of it runs."""

    role: str
    objects: str
    terminate: bool
    sessions: int
    shared: tuple[Holding, ...]
    memberships: tuple[str, ...]  # memberships it granted (16+), re-granted by the admin first
    before: tuple[Step, ...]
    databases: tuple[DatabaseWork, ...]
    after: tuple[Step, ...]
    blockers: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return bool(self.blockers)

    @property
    def steps(self) -> tuple[Step, ...]:
        return (*self.before, *(s for d in self.databases for s in d.steps), *self.after)

    def summary(self) -> str:
        """Where it holds what, in one line for people."""
        parts = [f"{d.database}: {', '.join(h.describe() for h in d.holdings)}" for d in self.databases if d.holdings]
        if self.shared:
            parts.append(f"cluster-wide: {', '.join(h.describe() for h in self.shared)}")
        return "; ".join(parts) or "holds nothing"

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "objects": self.objects,
            "terminate": self.terminate,
            "sessions": self.sessions,
            "blocked": self.blocked,
            "blockers": list(self.blockers),
            "shared": [h.to_dict() for h in self.shared],
            "memberships_granted": list(self.memberships),
            "before": [s.to_dict() for s in self.before],
            "databases": [d.to_dict() for d in self.databases],
            "after": [s.to_dict() for s in self.after],
        }


def refuse_forbidden(policy: Policy, snap: Snapshot) -> list[tuple[RetiredSpec, Role]]:
    """The retired roles that exist, after refusing (PolicyError) the ones pgwarden must never
    reassign or drop: PostgreSQL's own roles, superusers, the admin, the policy's or ignored roles."""
    seen: set[str] = set()
    out = []
    managed = set(policy.role_names)
    for spec in policy.retired:
        if spec.name in seen:
            raise PolicyError(f"retired lists role {spec.name!r} twice", hint="list each retired role once")
        seen.add(spec.name)
        why = None
        if spec.name in managed:
            why = "a role of the policy"
        elif spec.name in policy.ignore.roles:
            why = "listed under [ignore] roles"
        role = snap.role_by_name.get(spec.name)
        if why:
            raise PolicyError(
                f"retired role {spec.name!r} is {why}", hint=f"remove {spec.name} from retired or from where else it is"
            )
        if role is None:
            continue  # already gone: nothing to do
        _refuse_role(role, snap)
        out.append((spec, role))
    return out


def _refuse_role(role: Role, snap: Snapshot) -> None:
    if role.oid == 10:
        raise PolicyError(
            f"retired role {role.name!r} is the bootstrap superuser: REASSIGN OWNED BY it would move the "
            "system catalogs' objects, and it cannot be dropped",
            hint=f"remove {role.name} from retired; `pgwarden adopt` moves the objects it owns to the owner",
        )
    if role.oid < FIRST_NORMAL_OID:
        raise PolicyError(
            f"retired role {role.name!r} is a role PostgreSQL itself defines and cannot be dropped",
            hint=f"remove {role.name} from retired",
        )
    if role.superuser:
        raise PolicyError(
            f"retired role {role.name!r} is a superuser: pgwarden never reassigns or drops what a superuser owns",
            hint=f"if you mean it, run ALTER ROLE {sql.Identifier(role.name).as_string(None)} NOSUPERUSER "
            "as a superuser first, then `pgwarden apply` again",
        )
    if role.name == snap.server.current_role:
        raise PolicyError(
            f"retired role {role.name!r} is the admin pgwarden is connected as: a role cannot drop itself",
            hint="connect as another admin role (--dsn) to retire it",
        )


def plan_retirements(
    policy: Policy, snap: Snapshot, survey: Survey, *, admin_gains_owner: bool = False
) -> tuple[Retirement, ...]:
    """Each existing retired role's retirement, with its blockers. `admin_gains_owner`: the
    policy's plan grants the owner to the admin (a non-superuser admin needs its privileges to
    reassign objects to it)."""
    auth = Authority.of(snap)
    if admin_gains_owner:
        auth.gain(policy.owner.name)
    return tuple(_retirement(policy, snap, survey, auth, spec, role) for spec, role in refuse_forbidden(policy, snap))


def _retirement(
    policy: Policy, snap: Snapshot, survey: Survey, auth: Authority, spec: RetiredSpec, role: Role
) -> Retirement:
    name = spec.name
    held = dict(survey.holdings.get(role.oid, {}))
    shared = held.pop("", ())
    granted = _granted_memberships(snap, role)
    blockers = _blockers(policy, snap, survey, auth, spec, role, held, shared, granted)
    before = _before(snap, auth, spec, role, granted)
    units = sorted(held)
    # shared objects (objects = "drop" never drops a database or tablespace: those are reassigned) are
    # handled from one database: the admin's when it is visited anyway or nothing else is
    if shared and not units:
        units.append(survey.admin_database)
    shared_unit = survey.admin_database if survey.admin_database in units else units[0] if units else None
    shared_owned = any(h.dependency == "owner" for h in shared)
    if shared_unit is not None:  # first: its commit clears the shared dependencies (see pgwarden.retirement)
        units.remove(shared_unit)
        units.insert(0, shared_unit)
    databases = tuple(
        DatabaseWork(db, held.get(db, ()), _database_steps(policy, spec, db, shared_owned and db == shared_unit))
        for db in units
    )
    drop = Step(
        Phase.RETIRE,
        Action.RETIRE_ROLE,
        f"role {name}",
        "retired: drop the role (its memberships and settings go with it)",
        sql.SQL("DROP ROLE {}").format(sql.Identifier(name)),
        role=name,
        destructive=True,
        change="drop-role",
    )
    described = tuple(f"{snap.role_name(m.member)} in {snap.role_name(m.role)}" for m in granted)
    return Retirement(
        name, spec.objects, spec.terminate, survey.sessions.get(name, 0), shared, described,
        before, databases, (drop,), tuple(blockers),
    )  # fmt: skip


def _granted_memberships(snap: Snapshot, role: Role) -> list[Membership]:
    """Memberships the role granted to others in others (16+: DROP ROLE fails while it is their grantor;
    DROP OWNED revokes them, so they are granted again by the admin first, options kept)."""
    if not snap.caps.membership_options:
        return []
    return [m for m in snap.memberships if m.grantor == role.oid and role.oid not in (m.role, m.member)]


def _blockers(
    policy: Policy,
    snap: Snapshot,
    survey: Survey,
    auth: Authority,
    spec: RetiredSpec,
    role: Role,
    held: Mapping[str, tuple[Holding, ...]],
    shared: tuple[Holding, ...],
    granted: list[Membership],
) -> list[str]:
    """Everything that would make the retirement fail part-way, found before anything runs."""
    out = [_unreachable(survey, db) for db in sorted(held)]
    if survey.session_user == spec.name:
        out.append(f"the admin connection logged in as {spec.name} (its session user): a role cannot drop itself")
    if not auth.superuser:
        out += _admin_lacks(policy, snap, auth, spec, role, shared, granted)
    return [b for b in out if b]


def _unreachable(survey: Survey, db: str) -> str:
    """Why the admin cannot work in a database that holds something of the role ("" when it can)."""
    access = survey.databases.get(db, DatabaseAccess(db, True, True))
    if not access.allows_connections:
        return f"database {db} does not allow connections (datallowconn is false): its objects cannot be moved"
    if not access.may_connect:
        return f"the admin has no CONNECT on database {db}"
    if access.error:
        return f"cannot connect to database {db}: {access.error}"
    return ""


def _admin_lacks(
    policy: Policy,
    snap: Snapshot,
    auth: Authority,
    spec: RetiredSpec,
    role: Role,
    shared: tuple[Holding, ...],
    granted: list[Membership],
) -> list[str]:
    """What a non-superuser admin lacks to reassign, drop and grant again what the role holds."""
    out = []
    if not auth.acts_as(spec.name) and not _may_gain(auth, role):
        out.append(f"the admin needs the privileges of {spec.name} to reassign or drop what it owns")
    reassigns = spec.objects == "reassign" or any(h.dependency == "owner" for h in shared)
    if reassigns and not auth.acts_as(policy.owner.name):
        out.append(f"the admin needs the privileges of the owner {policy.owner.name} to reassign objects to it")
    if not auth.may_alter_role(spec.name, exists=True):
        what = "CREATEROLE and ADMIN OPTION on it" if auth.caps.membership_options else "CREATEROLE"
        out.append(f"dropping role {spec.name} needs superuser or {what}")
    groups = {str(snap.role_name(m.role)) for m in granted}
    if groups - auth.admin_of:
        out.append(
            f"{spec.name} granted memberships in {', '.join(sorted(groups - auth.admin_of))} that the admin "
            "cannot grant again (it needs ADMIN OPTION on them); dropping the role would revoke them"
        )
    return out


def _may_gain(auth: Authority, role: Role) -> bool:
    """Whether the admin may GRANT the role to itself (what it needs to act as it)."""
    return auth.createrole and (not auth.caps.membership_options or role.name in auth.admin_of)


def _before(
    snap: Snapshot, auth: Authority, spec: RetiredSpec, role: Role, granted: list[Membership]
) -> tuple[Step, ...]:
    name = spec.name
    ident = sql.Identifier(name)
    steps = []
    # first: ending its sessions and moving what it owns both need its privileges
    if not auth.superuser and not auth.acts_as(name):
        steps.append(
            _step(
                name,
                "grant-to-admin",
                "the admin takes the role's privileges to reassign and drop what it owns (gone with the role)",
                sql.SQL("GRANT {} TO {}").format(ident, sql.Identifier(auth.name)),
            )
        )
    if spec.terminate:
        if role.login:
            steps.append(
                _step(name, "nologin", "retired: refuse new sessions", sql.SQL("ALTER ROLE {} NOLOGIN").format(ident))
            )
        steps.append(
            _step(
                name,
                "terminate",
                "retired with terminate = true: end its sessions (waiting up to 5 s for each)",
                sql.SQL(
                    "SELECT pg_catalog.pg_terminate_backend(pid, 5000) FROM pg_catalog.pg_stat_activity "
                    "WHERE usename = {} AND pid <> pg_catalog.pg_backend_pid()"
                ).format(sql.Literal(name)),
                destructive=True,
            )
        )
    for m in granted:
        steps.append(_regrant(snap, name, m))
    return tuple(steps)


def _regrant(snap: Snapshot, retired: str, m: Membership) -> Step:
    group, member = snap.role_name(m.role) or "", snap.role_name(m.member) or ""
    options = sql.SQL(", ").join(
        sql.SQL(f"{option} {'TRUE' if value else 'FALSE'}")
        for option, value in (("ADMIN", m.admin), ("INHERIT", m.inherit), ("SET", m.set))
    )
    return Step(
        Phase.RETIRE,
        Action.RETIRE_ROLE,
        f"membership {member} in {group}",
        f"granted by retired role {retired}: granted again by the admin, so that dropping {retired} keeps it",
        sql.SQL("GRANT {} TO {} WITH {}").format(sql.Identifier(group), sql.Identifier(member), options),
        role=retired,
        change="regrant",
    )


def _database_steps(policy: Policy, spec: RetiredSpec, db: str, reassign_shared: bool) -> tuple[Step, ...]:
    ident, owner = sql.Identifier(spec.name), sql.Identifier(policy.owner.name)
    reassign = sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident, owner)
    drop_owned = sql.SQL("DROP OWNED BY {}").format(ident)
    obj = f"role {spec.name} in database {db}"
    if spec.objects == "drop":
        steps = [
            Step(Phase.RETIRE, Action.RETIRE_ROLE, obj, "retired with objects = \"drop\": drop what it owns and "
                 "revoke its privileges and default privileges", drop_owned, role=spec.name, destructive=True,
                 change="drop-owned"),
        ]  # fmt: skip
        if reassign_shared:
            steps.append(
                Step(Phase.RETIRE, Action.RETIRE_ROLE, obj, f"retired: the databases and tablespaces it owns go to "
                     f"the owner {policy.owner.name} (never dropped)", reassign, role=spec.name, destructive=True,
                     change="reassign"),
            )  # fmt: skip
        return tuple(steps)
    return (
        Step(Phase.RETIRE, Action.RETIRE_ROLE, obj, f"retired: what it owns goes to the owner {policy.owner.name}",
             reassign, role=spec.name, destructive=True, change="reassign"),
        Step(Phase.RETIRE, Action.RETIRE_ROLE, obj, "retired: revoke its privileges and default privileges",
             drop_owned, role=spec.name, destructive=True, change="drop-owned"),
    )  # fmt: skip


def _step(role: str, change: str, reason: str, statement: sql.Composed, *, destructive: bool = False) -> Step:
    return Step(
        Phase.RETIRE, Action.RETIRE_ROLE, f"role {role}", reason, statement, role=role, destructive=destructive,
        change=change,
    )  # fmt: skip


def describe(retirements: Sequence[Retirement]) -> list[str]:
    """The preflight for people: one line per role, then what blocks it."""
    out = []
    for r in retirements:
        how = "drop what it owns" if r.objects == "drop" else "reassign what it owns to the owner"
        extra = f"; {r.sessions} live session(s)" + (" (ended first)" if r.terminate else " (left running)")
        out.append(f"retired role {r.role}: {r.summary()}{extra if r.sessions else ''} -> {how}, then DROP ROLE")
        if r.memberships:
            out.append(f"  memberships it granted, granted again by the admin: {', '.join(r.memberships)}")
        out.extend(f"  blocked: {b}" for b in r.blockers)
    return out
