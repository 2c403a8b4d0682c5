"""The snapshot: immutable values read from the catalogs in a fixed number of queries."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pgwarden import providers
from pgwarden.caps import Capabilities
from pgwarden.fetch import fetch, needs_settings
from pgwarden.fetch import query as query  # generate/catalog.py reads its queries through this name
from pgwarden.pipeline import Call, fetch_each
from pgwarden.rows import Acl as Acl  # the catalog's row types, read through this module by many
from pgwarden.rows import ColumnAcl as ColumnAcl
from pgwarden.rows import (
    DatabaseRow,
    DefaultAclRow,
    GuardRow,
    ObjectGroupRow,
    ObjectNamesRow,
    SchemaRow,
)
from pgwarden.rows import Grant as Grant
from pgwarden.rows import GuardState as GuardState  # read by the guard's planner
from pgwarden.rows import ObjectKind as ObjectKind  # the kinds of grouped objects
from pgwarden.rows import ObjectRef as ObjectRef
from pgwarden.rows import RefreshRoutine as RefreshRoutine  # read by the refresh planner
from pgwarden.rows import TypeRef as TypeRef
from pgwarden.shared import ClusterPart, outside_statement, read_cluster
from pgwarden.shared import Membership as Membership  # the cluster-level values (pgwarden.shared), read here by many
from pgwarden.shared import OutsideGrant as OutsideGrant
from pgwarden.shared import Role as Role
from pgwarden.shared import RoleSetting as RoleSetting
from pgwarden.shared import ServerInfo as ServerInfo

if TYPE_CHECKING:
    import psycopg

    from pgwarden.parallel import Pending, SecondReader
    from pgwarden.pooler import PoolerState

#: Objects listed by name in a group when the group is at most this big (bigger groups are fixed
#: with one `... ON ALL ... IN SCHEMA` statement).
NAME_THRESHOLD = 200


@dataclass(frozen=True, slots=True)
class Database:
    oid: int
    name: str
    owner: int
    acl: Acl


@dataclass(frozen=True, slots=True)
class Schema:
    oid: int
    name: str
    owner: int
    acl: Acl
    extension: bool


@dataclass(frozen=True, slots=True)
class ObjectGroup:
    """Objects of one schema, kind and owner that share one ACL."""

    schema: int
    kind: ObjectKind
    owner: int
    extension: bool
    linked: bool  # sequences owned by a table column (they follow the table's owner)
    count: int
    acl: Acl
    objects: tuple[ObjectRef, ...] | None  # None: not listed (see NAME_THRESHOLD and with_names)
    acl_text: str | None = None  # the stored ACL as the server prints it: identifies the group
    bookkeeping: bool = False  # migration bookkeeping tables (pgwarden.bookkeeping): always named

    @property
    def key(self) -> tuple[int, str, int, bool, bool, bool, Acl, str | None]:
        """What objects.sql groups by: unique among a snapshot's groups, whether listed or not (a stable
        id: the same in a copy of the snapshot, unlike id())."""
        return (
            self.schema,
            self.kind,
            self.owner,
            self.extension,
            self.linked,
            self.bookkeeping,
            self.acl,
            self.acl_text,
        )


@dataclass(frozen=True, slots=True)
class DefaultAcl:
    role: int
    schema: int  # 0: global entry
    objtype: str  # r S f T n L
    acl: Acl


@dataclass(frozen=True)
class Snapshot:
    """What is there. `database` is None when the target database does not exist; the schemas
    and objects are then those of template1, which a new database is copied from."""

    server: ServerInfo
    caps: Capabilities
    target: str
    roles: Mapping[int, Role]
    memberships: tuple[Membership, ...]
    passwords: Mapping[int, str | None] | None  # None: verifiers not readable (not superuser)
    database: Database | None
    schemas: tuple[Schema, ...]
    objects: tuple[ObjectGroup, ...]
    default_acls: tuple[DefaultAcl, ...]
    role_settings: tuple[RoleSetting, ...]
    owner_oid: int = 0  # the policy owner's oid when the snapshot was taken (0: it did not exist)
    types: tuple[TypeRef, ...] = ()  # of the managed schemas, not owned by the owner
    guard: GuardState | None = None  # None: the database does not exist
    columns: tuple[ColumnAcl, ...] = ()  # column-level ACLs in the managed schemas
    #: role name -> whether logging in with the password from its variable succeeded; filled by the
    #: session when `passwords` is None (not superuser), so unchanged passwords are not set again
    password_checks: Mapping[str, bool] = field(default_factory=dict)
    #: grants outside the managed schemas to the policy's roles or PUBLIC (read when the database exists)
    outside: tuple[OutsideGrant, ...] = ()
    #: parameters of context `superuser` (a role setting of one gives the role what it cannot set)
    superuser_settings: frozenset[str] = frozenset()
    #: the bookkeeping parameters of objects.sql (table names, schema oids), for with_names
    bookkeeping: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())
    #: [pgbouncer]'s lookup routine and what its auth_user reads (pgwarden.pooler); None: no [pgbouncer]
    pooler: PoolerState | None = None
    #: pgwarden's refresh routines in the managed schemas (pgwarden.refresh; read by the session when the
    #: policy declares a refresh and the database exists: with_refresh_routines)
    refresh_routines: tuple[RefreshRoutine, ...] = ()
    #: the database has a foreign server (outside_acls.sql; else no user mapping can exist: pgwarden.hazards)
    foreign_servers: bool = True

    @property
    def database_exists(self) -> bool:
        return self.database is not None

    @cached_property
    def role_by_name(self) -> Mapping[str, Role]:
        return {r.name: r for r in self.roles.values()}

    def role_name(self, oid: int) -> str | None:
        """Name of a role oid; None for PUBLIC (0)."""
        if oid == 0:
            return None
        role = self.roles.get(oid)
        return role.name if role else str(oid)

    def schema_by_name(self, name: str) -> Schema | None:
        return next((s for s in self.schemas if s.name == name), None)


def inspect(
    conn: psycopg.Connection[Any],
    target: str,
    managed_schemas: Sequence[str],
    owner: str,
    role_names: Sequence[str] = (),
    *,
    name_threshold: int = NAME_THRESHOLD,
    column_tables: Sequence[tuple[str, str]] = (),
    detailed: Sequence[str] = (),
    bookkeeping: tuple[Sequence[str], Sequence[str]] = ((), ()),
    expect: Callable[[Snapshot], Sequence[Mapping[str, Any]]] | None = None,
    cluster: ClusterPart | None = None,
    second: Callable[[ServerInfo], SecondReader[Any] | None] | None = None,
) -> Snapshot:
    """Read a snapshot through `conn`, connected to the target database (or to template1 when
    the target does not exist yet). A fixed number of queries whatever the catalog size.

    `expect`, given the snapshot read so far (everything but the objects), returns the ACL a
    compliant object of each managed schema holds (pgwarden.plan.expect): the server then counts
    the objects that match instead of returning them (objects_expected.sql). The snapshot is the
    same either way, group for group. `cluster`: a fleet's cluster-level part, read once
    (pgwarden.shared), used when it stands for what `conn` would read (the same snapshot).
    `second`, given the server's first answer, may return a second connection that sees what `conn`
    sees (pgwarden.parallel: a big database's check): the column ACLs, which need nothing read
    before them, are read there meanwhile (one scan of pg_attribute), the same rows."""
    asked = {"settings": list(providers.SETTINGS), "schemas": list(managed_schemas)}
    server = fetch(conn, "server", ServerInfo, asked)[0]
    caps = Capabilities(server.version_num)
    # before every other read: they are all in the transaction whose snapshot the second connection imports
    reader = second(server) if second is not None else None
    shared = cluster is not None and cluster.serves(server, role_names)
    part = cluster if cluster is not None and shared else read_cluster(conn, server, role_names)
    roles, memberships = part.roles, part.memberships
    passwords = part.passwords_of(role_names) if server.can_read_authid and role_names else None
    owner_oid = next((oid for oid, r in roles.items() if r.name == owner), 0)
    calls = [Call("schemas", SchemaRow), Call("default_acls", DefaultAclRow)]
    aside: Pending[tuple[ColumnAcl, ...]] | None = None
    if server.database == target:  # the target database, with its types, column ACLs and guard
        tables = json.dumps([{"s": s, "t": t} for s, t in column_tables])
        db_params = {"name": target, "schemas": list(managed_schemas), "owner": owner_oid, "column_tables": tables}
        if reader is not None:
            aside = reader.submit(lambda c: _columns(c, db_params))
        calls.append(Call("database", DatabaseRow, db_params, _database_text(aside is None)))
    schema_rows, default_rows, *target_rows = fetch_each(conn, calls)  # one round trip
    database, types, columns, guard = _database(conn, target_rows[0][0]) if target_rows else (None, (), (), None)
    schemas = tuple(Schema(r.oid, r.name, r.owner, r.acl, r.extension) for r in schema_rows)
    managed_oids = [s.oid for s in schemas if s.name in managed_schemas]
    detailed_oids = [s.oid for s in schemas if s.name in detailed and s.name in managed_schemas]
    books = (tuple(bookkeeping[0]), tuple(s.oid for s in schemas if s.name in bookkeeping[1] and s.oid in managed_oids))
    params = {"schemas": managed_oids, "threshold": name_threshold, "owner": owner_oid, "detailed": detailed_oids}
    params |= {"bookkeeping": list(books[0]), "bookkeeping_schemas": list(books[1])}
    default_acls = tuple(DefaultAcl(r.role, r.schema, r.objtype, r.acl) for r in default_rows)
    role_settings = part.role_settings_in(server.database_oid)
    exists, fleet = database is not None, part if shared else None
    outside, superuser_settings, foreign_servers = _outside(conn, exists, server, role_names, managed_oids, fleet, part)
    snap = Snapshot(
        foreign_servers=foreign_servers,
        bookkeeping=books,
        outside=outside,
        superuser_settings=superuser_settings,
        owner_oid=owner_oid,
        types=types,
        guard=guard,
        columns=columns,
        server=server,
        caps=caps,
        target=target,
        roles=roles,
        memberships=memberships,
        passwords=passwords,
        database=database,
        schemas=schemas,
        objects=(),
        default_acls=default_acls,
        role_settings=role_settings,
    )
    expected = expect(snap) if expect is not None else []
    settings = needs_settings(server.catalog_bytes)
    if expected:
        params["expected"] = json.dumps(expected)
    objects = _object_groups(conn, "objects_expected" if expected else "objects", params, settings)
    if aside is None or reader is None:
        return replace(snap, objects=objects)
    from pgwarden.parallel import outcome

    return replace(snap, objects=objects, columns=outcome(reader, aside, conn))  # or read here


@dataclass(frozen=True, slots=True)
class ColumnsRow:
    """queries/column_acls.sql."""

    columns: tuple[ColumnAcl, ...]


def _database_text(columns: bool) -> str:
    """database.sql with the column ACLs (column_acls.sql as a scalar subquery), or without them
    (read on a second connection)."""
    part = f"(\n{query('column_acls')}\n)" if columns else "'[]'::json"
    return query("database").replace("/* columns */", part)


def _columns(conn: psycopg.Connection[Any], params: Mapping[str, Any]) -> tuple[ColumnAcl, ...]:
    """The column ACLs alone (column_acls.sql), with database.sql's parameters."""
    return fetch(conn, "column_acls", ColumnsRow, params)[0].columns


def _database(
    conn: psycopg.Connection[Any], d: DatabaseRow
) -> tuple[Database, tuple[TypeRef, ...], tuple[ColumnAcl, ...], GuardState]:
    """The target database, with its types, column ACLs and guard (database.sql's row; guard.sql
    where the guard has a part)."""
    guard = d.guard if d.guard is not None else fetch(conn, "guard", GuardRow)[0].guard
    return Database(d.oid, d.name, d.owner, d.acl), d.types, d.columns, guard


def _outside(
    conn: psycopg.Connection[Any],
    exists: bool,
    server: ServerInfo,
    role_names: Sequence[str],
    schemas: Sequence[int],
    fleet: ClusterPart | None,
    part: ClusterPart,
) -> tuple[tuple[OutsideGrant, ...], frozenset[str], bool]:
    """Grants outside the managed schemas and the superuser-only parameters: one statement (with
    pg_parameter_acl's grants on 15+), and whether the database has a foreign server. `fleet`: the
    cluster part read once for a fleet (pgwarden.shared), when it stands for this database's read:
    the other databases' grants (the first rows: `database` sorts before every other kind) and the
    superuser-only parameters come from it. `part`: the cluster part in use (the roles)."""
    if not exists:
        return (), frozenset(), False
    others = fleet.databases_for(server.database_oid, role_names) if fleet is not None else None
    settings = fleet.superuser_settings if fleet is not None else None
    roles = part.roles
    major = Capabilities(server.version_num).major
    text = outside_statement(major, "" if others is not None else query("outside_databases"), settings is None)
    params = {"roles": [oid for oid, r in roles.items() if r.name in role_names], "schemas": list(schemas)}
    rows = fetch(conn, "outside_acls", OutsideGrant, params | {"exclude": server.database_oid}, text=text)
    if settings is None:
        settings = frozenset(r.ident for r in rows if r.kind == "superuser_setting")
    servers = any(r.kind == "foreign_servers" for r in rows)
    grants = (r for r in rows if r.kind not in ("superuser_setting", "foreign_servers"))
    return (*(others or ()), *grants), settings, servers


def _object_groups(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any], settings: bool = True
) -> tuple[ObjectGroup, ...]:
    return tuple(
        ObjectGroup(
            schema=r.schema,
            kind=r.kind,
            owner=r.owner,
            extension=r.extension,
            linked=r.linked,
            count=r.count,
            acl=r.acl,
            acl_text=r.acl_text,
            objects=r.objects,
            bookkeeping=r.bookkeeping,
        )
        for r in fetch(conn, name, ObjectGroupRow, params, settings=settings)
    )


def with_names(
    conn: psycopg.Connection[Any], snap: Snapshot, groups: Sequence[ObjectGroup], detailed: Sequence[str] = ()
) -> Snapshot:
    """The snapshot with the objects of `groups` listed: one more query, whatever their number.

    Used when a plan must change big groups: naming their objects lets apply grant on lists of
    tables (one catalog lookup each) rather than `ON ALL TABLES IN SCHEMA`, which scans all of
    pg_class once per statement."""
    wanted = [g for g in groups if g.objects is None]
    if not wanted:
        return snap
    index = {g.key: i for i, g in enumerate(snap.objects)}
    keys = [[index[g.key], g.schema, g.kind, g.owner, g.linked, g.acl_text] for g in wanted]
    detailed_oids = [s.oid for s in snap.schemas if s.name in detailed]
    params = {"keys": json.dumps(keys), "owner": snap.owner_oid, "detailed": detailed_oids}
    params |= {"bookkeeping": list(snap.bookkeeping[0]), "bookkeeping_schemas": list(snap.bookkeeping[1])}
    params["schemas"] = sorted({g.schema for g in wanted})
    rows = fetch(conn, "object_names", ObjectNamesRow, params)
    found = {r.gid: r.objects for r in rows}
    wanted_keys = {g.key for g in wanted}
    objects = tuple(
        replace(g, objects=found.get(i, ())) if g.key in wanted_keys else g for i, g in enumerate(snap.objects)
    )
    return replace(snap, objects=objects)


def with_refresh_routines(conn: psycopg.Connection[Any], snap: Snapshot, managed: Sequence[str]) -> Snapshot:
    """`snap` with pgwarden's refresh routines of the managed schemas: one more query, made only for a
    policy that declares a refresh or where a managed schema has a SECURITY DEFINER routine (a routine
    left from a refresh no longer declared, which the plan drops); other snapshots keep their count."""
    oids = [s.oid for s in snap.schemas if s.name in managed]
    return replace(snap, refresh_routines=tuple(fetch(conn, "refresh_routines", RefreshRoutine, {"schemas": oids})))
