"""What `init --from-database` reads from a live database: roles, memberships, objects and ACLs by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgwarden.acl import Grant, from_catalog
from pgwarden.errors import PolicyError
from pgwarden.fetch import fetch
from pgwarden.generate.rows import GenerateDatabaseRow, GenerateObjectRow
from pgwarden.rows import DefaultAclRow, RoleSettingRow, SchemaRow
from pgwarden.snapshot import Membership, Role

if TYPE_CHECKING:
    import psycopg

#: A grantee by name; None is PUBLIC.
Grantee = str | None
#: grantee -> privileges it holds.
Privileges = Mapping[Grantee, frozenset[str]]


@dataclass(frozen=True)
class LiveRole:
    name: str
    superuser: bool = False
    login: bool = False
    inherit: bool = True
    createdb: bool = False
    createrole: bool = False
    replication: bool = False
    bypassrls: bool = False
    connlimit: int = -1
    valid_until: str | None = None
    comment: str | None = None
    settings: tuple[str, ...] = ()  # "name=value", all databases
    database_settings: tuple[str, ...] = ()  # "name=value", this database


@dataclass(frozen=True)
class LiveMembership:
    role: str
    member: str
    inherit: bool
    set: bool
    admin: bool = False


@dataclass(frozen=True)
class LiveObject:
    """A table, sequence or routine: what each grantee holds on it (and on its columns)."""

    schema: str
    kind: str  # table, sequence, routine
    name: str
    owner: str
    acl: Privileges = field(default_factory=dict)
    grantable: frozenset[tuple[Grantee, str]] = frozenset()
    grantors: frozenset[tuple[Grantee, str | None]] = frozenset()  # (grantee, grantor) pairs
    args: str | None = None
    extension: bool = False
    table: str | None = None  # a serial's or identity's sequence: its table (same schema)
    #: tables with column grants: every column in order, with what each grantee holds on it
    columns: tuple[tuple[str, Privileges], ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def held(self, role: Grantee) -> frozenset[str]:
        return self.acl.get(role, frozenset())


@dataclass(frozen=True)
class LiveSchema:
    name: str
    owner: str
    acl: Privileges
    objects: int
    extension: bool = False
    grantable: frozenset[tuple[Grantee, str]] = frozenset()  # (grantee, privilege) held WITH GRANT OPTION


@dataclass(frozen=True)
class LiveDefault:
    """An ALTER DEFAULT PRIVILEGES entry (`schema` None: the role's global entry)."""

    role: str
    schema: str | None
    objtype: str  # r S f T n
    acl: Privileges


@dataclass(frozen=True)
class Live:
    """One database as `init --from-database` sees it."""

    database: str
    version: int  # server major version
    db_owner: str
    db_acl: Privileges
    roles: Mapping[str, LiveRole]
    memberships: tuple[LiveMembership, ...]
    schemas: tuple[LiveSchema, ...]
    objects: tuple[LiveObject, ...]
    defaults: tuple[LiveDefault, ...]
    admin: str = ""
    others: tuple[LiveSchema, ...] = ()  # the schemas not managed
    db_grantable: frozenset[tuple[Grantee, str]] = frozenset()  # (grantee, privilege) WITH GRANT OPTION

    def schema(self, name: str) -> LiveSchema | None:
        return next((s for s in self.schemas if s.name == name), None)

    def member_of(self, member: str) -> list[LiveMembership]:
        return [m for m in self.memberships if m.member == member]


def _privileges(acl: Iterable[Grant]) -> dict[Grantee, frozenset[str]]:
    out: dict[Grantee, set[str]] = {}
    for g in acl:
        out.setdefault(g.grantee, set()).add(g.privilege)
    return {k: frozenset(v) for k, v in out.items()}


def _grantable(acl: Iterable[Grant]) -> frozenset[tuple[Grantee, str]]:
    return frozenset((g.grantee, g.privilege) for g in acl if g.grantable)


def _role(row: Role, settings: tuple[str, ...], database_settings: tuple[str, ...]) -> LiveRole:
    return LiveRole(
        name=row.name,
        superuser=row.superuser,
        login=row.login,
        inherit=row.inherit,
        createdb=row.createdb,
        createrole=row.createrole,
        replication=row.replication,
        bypassrls=row.bypassrls,
        connlimit=row.connlimit,
        valid_until=_valid_until(row),
        comment=row.comment,
        settings=settings,
        database_settings=database_settings,
    )


def _valid_until(role: Role) -> str | None:
    """VALID UNTIL as a policy writes it: a date when it is midnight in the session's TimeZone (what
    VALID UNTIL 'date' stores), else the instant in UTC; 'infinity' as it is ('-infinity': None, as
    init always wrote it)."""
    local, epoch = role.valid_until, role.valid_until_epoch
    if local is None or epoch is None:
        return local if local == "infinity" else None
    day, _, time = local.partition("T")
    if time == "00:00:00.000000":
        return day
    try:
        t = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, ValueError, OSError):  # beyond year 9999: the session's local time
        return local
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}+00:00"


def _roles(conn: psycopg.Connection[Any]) -> tuple[dict[int, Role], dict[str, LiveRole]]:
    """Every role by oid (the snapshot's rows), and the ones a policy may name (not pg_*) by name, in
    name order, with their settings for all databases and for this one."""
    everyone = {r.oid: r for r in fetch(conn, "roles", Role)}
    settings = {
        (s.role, s.database != 0): tuple(s.settings or ())
        for s in fetch(conn, "role_settings", RoleSettingRow, {"all_databases": False})  # this database's and all's
    }
    named = sorted((r for r in everyone.values() if not r.name.startswith("pg_")), key=lambda r: r.name)
    live = {r.name: _role(r, settings.get((r.oid, False), ()), settings.get((r.oid, True), ())) for r in named}
    return everyone, live


def _object(row: GenerateObjectRow) -> LiveObject:
    held: dict[Grantee, set[str]] = {}
    grantable: set[tuple[Grantee, str]] = set()
    grantors: set[tuple[Grantee, str | None]] = set()
    for g in row.acl:  # one pass: there is one row per object
        held.setdefault(g.grantee, set()).add(g.privilege)
        grantors.add((g.grantee, g.grantor))
        if g.grantable:
            grantable.add((g.grantee, g.privilege))
    return LiveObject(
        schema=row.schema,
        kind=row.kind,
        name=row.name,
        owner=row.owner,
        args=row.args,
        extension=row.extension,
        table=row.table,
        acl={k: frozenset(v) for k, v in held.items()},
        grantable=frozenset(grantable),
        grantors=frozenset(grantors),
        columns=tuple((c.column, _privileges(c.acl)) for c in row.columns or ()),
    )


def read(conn: psycopg.Connection[Any], schemas: Sequence[str] | None) -> Live:
    """Read the database `conn` is connected to; `schemas` None: every schema with objects or grants."""
    everyone, roles = _roles(conn)
    d = fetch(conn, "generate_database", GenerateDatabaseRow)[0]
    all_schemas, defaults, defaulted = _schemas_and_defaults(conn, d, everyone)
    in_use = [s.name for s in all_schemas if _in_use(s) or (s.name in defaulted and not s.extension)]
    names = list(schemas) if schemas is not None else in_use
    missing = [n for n in names if n not in {s.name for s in all_schemas}]
    if missing:
        raise PolicyError(
            f"schema {missing[0]} does not exist in database {conn.info.dbname}",
            hint="--schema names an existing schema (repeat it for several)",
        )
    objects = tuple(_object(r) for r in fetch(conn, "generate_objects", GenerateObjectRow, {"schemas": names}))
    memberships = _memberships(fetch(conn, "memberships", Membership), everyone)
    return Live(
        database=conn.info.dbname,
        version=conn.info.server_version // 10000,
        db_owner=d.owner,
        db_acl=_privileges(d.acl),
        db_grantable=_grantable(d.acl),
        roles=roles,
        memberships=memberships,
        schemas=tuple(s for s in all_schemas if s.name in names),
        others=tuple(s for s in all_schemas if s.name not in names),
        objects=objects,
        defaults=defaults,
        admin=str(conn.execute("SELECT current_user").fetchone()[0]),  # type: ignore[index]
    )


#: pgwarden's own schemas: never a policy's
_OWN_SCHEMAS = frozenset({"pgwarden", "pgwarden_ledger"})


def _schemas_and_defaults(
    conn: psycopg.Connection[Any], d: GenerateDatabaseRow, everyone: Mapping[int, Role]
) -> tuple[tuple[LiveSchema, ...], tuple[LiveDefault, ...], set[str]]:
    """The schemas and default privileges as the snapshot reads them (schemas.sql, default_acls.sql:
    by oid), named; and the schemas where default privileges give a role something (in use too,
    objects or not)."""

    def name_of(oid: int) -> str | None:
        role = everyone.get(oid)
        return None if oid == 0 else role.name if role else str(oid)

    counts = {n.oid: n.objects for n in d.namespaces}
    schema_names = {n.oid: n.name for n in d.namespaces}
    all_schemas = tuple(
        LiveSchema(
            s.name,
            name_of(s.owner) or "",
            _privileges(named := from_catalog(s.acl, name_of)),
            counts.get(s.oid, 0),
            s.extension,
            _grantable(named),
        )
        for s in fetch(conn, "schemas", SchemaRow)
        if s.name not in _OWN_SCHEMAS
    )
    rows = fetch(conn, "default_acls", DefaultAclRow)
    defaults = tuple(
        LiveDefault(
            name_of(r.role) or "", schema_names.get(r.schema), r.objtype, _privileges(from_catalog(r.acl, name_of))
        )
        for r in rows
    )
    defaulted = {
        schema_names[r.schema] for r in rows if r.schema in schema_names and any(g.grantee != r.role for g in r.acl)
    }
    return all_schemas, defaults, defaulted


def _memberships(rows: Sequence[Membership], roles: Mapping[int, Role]) -> tuple[LiveMembership, ...]:
    """One membership per (group, member) by name, in name order: on 16+ a role can hold one twice from
    two grantors (createrole_self_grant adds one); it then has an option when either grant gives it.
    Before 16 (inherit and set None) inheritance is the member's attribute."""
    merged: dict[tuple[str, str], LiveMembership] = {}
    named = sorted(((roles[r.role].name, roles[r.member].name, r) for r in rows), key=lambda t: (t[0], t[1]))
    for role, member, r in named:
        m = LiveMembership(
            role,
            member,
            r.inherit if r.inherit is not None else roles[r.member].inherit,
            r.set if r.set is not None else True,
            r.admin,
        )
        seen = merged.get((role, member))
        if seen is not None:
            m = LiveMembership(role, member, m.inherit or seen.inherit, m.set or seen.set, m.admin or seen.admin)
        merged[(role, member)] = m
    return tuple(merged.values())


def _in_use(schema: LiveSchema) -> bool:
    """A schema worth managing: not an extension's, and holding objects or grants beyond its owner's."""
    if schema.extension:
        return False
    others = {g for g in schema.acl if g != schema.owner and g is not None}
    return schema.objects > 0 or bool(others)
