"""The cluster-level part of a snapshot (roles, memberships, settings, grants on databases): read once for a fleet."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgwarden.fetch import fetch, query
from pgwarden.rows import PasswordRow, RoleSettingRow

if TYPE_CHECKING:
    import psycopg

    from pgwarden.policy import Policy


@dataclass(frozen=True, slots=True)
class Role:
    oid: int
    name: str
    superuser: bool
    inherit: bool
    createrole: bool
    createdb: bool
    login: bool
    replication: bool
    bypassrls: bool
    connlimit: int
    #: VALID UNTIL in the session's TimeZone without offset ('2027-01-01T00:00:00.000000'), 'infinity'
    #: or '-infinity'; None: no expiry
    valid_until: str | None = None
    valid_until_epoch: float | None = None  # the same instant as seconds since 1970 (None unless finite)
    comment: str | None = None  # COMMENT ON ROLE


@dataclass(frozen=True, slots=True)
class Membership:
    role: int
    member: int
    grantor: int
    admin: bool
    inherit: bool | None  # 16+; None before (inheritance is the member's attribute)
    set: bool | None  # 16+


@dataclass(frozen=True, slots=True)
class RoleSetting:
    role: int
    database: int  # 0: all databases
    settings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutsideGrant:
    """One ACL entry outside the managed schemas that names a policy role or PUBLIC (0) and that
    the object did not start with (queries/outside_acls.sql, outside_parameters.sql)."""

    kind: str  # registry kind: database, tablespace, language, ..., parameter
    subkind: str  # prokind / typtype ("" for the others)
    oid: int
    owner: int
    ident: str  # the object's name as SQL text
    grantor: int
    grantee: int
    privilege: str
    grantable: bool
    system: bool = True  # the server's (a system schema, a cluster object), not another schema's or database's


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version_num: int
    version: str
    database: str
    current_role_oid: int
    current_role: str
    is_superuser: bool
    can_createrole: bool
    can_createdb: bool
    can_read_authid: bool
    settings: Sequence[str] = ()  # parameters that identify a managed service (providers.py)
    extensions: Sequence[str] = ()  # extensions of the connected database
    database_oid: int = 0  # of the connected database
    compat: str = ""  # what the cluster-level reads depend on but the cluster (pgwarden.shared)
    definers: bool = True  # a managed schema has a SECURITY DEFINER routine
    catalog_bytes: int = -1  # pg_class's size on disk (-1: unknown)


@dataclass(frozen=True, slots=True)
class ClusterRow:
    """The one row of the cluster statement (cluster_statement): each read as a JSON array."""

    roles: tuple[Role, ...]
    memberships: tuple[Membership, ...]
    role_settings: tuple[RoleSettingRow, ...]
    passwords: tuple[PasswordRow, ...] | None


@dataclass(frozen=True)
class ClusterPart:
    """What a snapshot reads from the shared catalogs, as one connection saw it (`compat`: its
    ServerInfo.compat). A fleet's databases take it from the parent's read when their own
    connection would see the same (ClusterPart.serves); each database's part is then filtered
    from it exactly as its own statement would have filtered."""

    compat: str
    roles: Mapping[int, Role]
    memberships: tuple[Membership, ...]
    #: the stored verifiers of the roles named `names` (None: pg_authid not readable, or no names)
    passwords: Mapping[int, str | None] | None
    names: frozenset[str]
    #: of this database and of every database (0), or, read for a fleet, of every database
    role_settings: tuple[RoleSetting, ...]
    #: every database's grants to the roles named `grantees` or PUBLIC (outside_databases.sql); None: not read
    databases: tuple[OutsideGrant, ...] | None = None
    grantees: frozenset[str] = frozenset()
    #: the parameters only a superuser may set (outside_settings.sql); None: not read
    superuser_settings: frozenset[str] | None = None
    #: the cluster's databases, read for a fleet: each database's first "does it exist?" (a
    #: statement on the admin connection, per database) is answered from it; None: not read
    database_names: frozenset[str] | None = None

    def serves(self, server: ServerInfo, role_names: Collection[str]) -> bool:
        """Whether this part stands for what `server`'s connection would read for `role_names`."""
        names = self.names & self.grantees
        return self.compat == server.compat and self.databases is not None and names.issuperset(role_names)

    def passwords_of(self, role_names: Collection[str]) -> dict[int, str | None] | None:
        if self.passwords is None:
            return None
        return {oid: p for oid, p in self.passwords.items() if self.roles[oid].name in role_names}

    def role_settings_in(self, database_oid: int) -> tuple[RoleSetting, ...]:
        """The settings that apply in one database (role_settings.sql's filter), in their order."""
        return tuple(s for s in self.role_settings if s.database in (0, database_oid))

    def databases_for(self, database_oid: int, role_names: Collection[str]) -> tuple[OutsideGrant, ...]:
        """The other databases' grants to `role_names` or PUBLIC (outside_databases.sql's rows for one
        database), in their order."""
        oids = {oid for oid, r in self.roles.items() if r.name in role_names}
        rows = self.databases or ()
        return tuple(g for g in rows if g.oid != database_oid and (g.grantee == 0 or g.grantee in oids))


def cluster_statement(passwords: bool) -> str:
    """roles.sql, memberships.sql, role_settings.sql (and passwords.sql, readable by superusers
    only) in one statement: one round trip instead of four, each in its file's order."""

    def agg(name: str, order: str) -> str:
        # our own query files and column names, no input
        return f"(SELECT COALESCE(json_agg(x ORDER BY {order}), '[]') FROM (\n{query(name)}\n) x)"  # noqa: S608

    parts = [
        agg("roles", "x.oid") + " AS roles",
        agg("memberships", "x.role, x.member, x.grantor") + " AS memberships",
        agg("role_settings", "x.role, x.database") + " AS role_settings",
        (agg("passwords", "x.oid") if passwords else "NULL::json") + " AS passwords",
    ]
    return "SELECT " + ",\n       ".join(parts)


def read_cluster(
    conn: psycopg.Connection[Any], server: ServerInfo, role_names: Sequence[str], *, all_databases: bool = False
) -> ClusterPart:
    """The cluster part through `conn` (one statement): the role settings of its database, or of
    every database with `all_databases` (a fleet's shared read)."""
    readable = server.can_read_authid and bool(role_names)
    params = {"all_databases": all_databases, "names": list(role_names)}
    row = fetch(conn, "cluster", ClusterRow, params, text=cluster_statement(readable))[0]
    roles = {r.oid: r for r in row.roles}
    passwords = {p.oid: p.password for p in row.passwords} if row.passwords is not None else None
    settings = tuple(RoleSetting(s.role, s.database, tuple(s.settings or ())) for s in row.role_settings)
    return ClusterPart(server.compat, roles, row.memberships, passwords, frozenset(role_names), settings)


def outside_statement(major: int, databases: str, settings: bool = True) -> str:
    """outside_acls.sql with the other databases (`databases`: outside_databases.sql, or "" when a
    fleet's shared read gives them), the superuser-only parameters (outside_settings.sql; not with
    `settings=False`: a fleet's shared read gives them) and, on 15+, the parameters' grants
    (outside_parameters.sql)."""
    text = query("outside_acls").replace("\n/* databases */\n", "\n" + databases)
    text = text.replace("\n/* settings */\n", "\n" + (query("outside_settings") if settings else ""))
    if major >= 15:
        text = text.replace("\n/* parameters */\n", "\n" + query("outside_parameters"))
    return text


def read_databases(
    conn: psycopg.Connection[Any], roles: Mapping[int, Role], names: Iterable[str]
) -> tuple[OutsideGrant, ...]:
    """Every database's grants to the roles `names` or PUBLIC, in outside_acls.sql's order (its
    first rows: `database` sorts before every other kind)."""
    inner = outside_statement(14, query("outside_databases"), settings=False)
    text = f"SELECT * FROM (\n{inner}\n) o WHERE o.kind = 'database' ORDER BY 1, 5, 7, 8"  # noqa: S608 (our query)
    wanted = set(names)
    params = {"roles": [oid for oid, r in roles.items() if r.name in wanted], "schemas": [], "exclude": 0}
    return tuple(fetch(conn, "outside_databases", OutsideGrant, params, text=text))


def read_superuser_settings(conn: psycopg.Connection[Any]) -> frozenset[str]:
    """The parameters only a superuser may set (outside_settings.sql alone, without its UNION ALL)."""
    _, union, text = query("outside_settings").partition("\nUNION ALL\n")
    if not union:
        raise RuntimeError("queries/outside_settings.sql lost its UNION ALL line")
    return frozenset(r.ident for r in fetch(conn, "outside_settings", OutsideGrant, text=text))


def read_shared(dsn: str | None, policies: Sequence[Policy]) -> ClusterPart | None:
    """The cluster part for a fleet of `policies`, read once through an admin connection (before the
    workers fork); None when it cannot be read (each database then reads its own, as alone)."""
    import psycopg

    from pgwarden.connect import DATABASE_NAMES, connect, conninfo_for
    from pgwarden.errors import PgwardenError

    names = sorted({n for p in policies for n in p.role_names})
    try:
        with connect(conninfo_for(dsn), what="the admin connection") as conn:
            server = fetch(conn, "server", ServerInfo, {"settings": [], "schemas": []})[0]
            part = read_cluster(conn, server, names, all_databases=True)
            rows = read_databases(conn, part.roles, names)
            settings = read_superuser_settings(conn)
            databases = frozenset(str(r[0]) for r in conn.execute(DATABASE_NAMES))
    except (PgwardenError, psycopg.Error):
        return None
    from dataclasses import replace

    return replace(
        part, databases=rows, grantees=frozenset(names), superuser_settings=settings, database_names=databases
    )
