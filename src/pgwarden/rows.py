"""Typed rows of the catalog queries, as the server returns them (fields named as the queries' columns).

A JSON column is declared as the rows it holds (an ACL as `Acl`, a list of objects as a tuple of rows):
fetch decodes it once, by these annotations (pgwarden.fetch.decoder)."""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.kinds import ProfileKind

ObjectKind = ProfileKind


@dataclass(frozen=True, slots=True)
class Grant:
    """One exploded ACL entry: grantor gave privilege to grantee (oid 0 is PUBLIC). The queries send
    it as a JSON array [grantor, grantee, privilege, grantable]."""

    grantor: int
    grantee: int
    privilege: str
    grantable: bool


#: An ACL by role oids (a JSON null: empty).
Acl = frozenset[Grant]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object of a group (JSON [oid, name, subkind, args])."""

    oid: int
    name: str
    subkind: str  # relkind or prokind
    args: str | None  # routines: identity arguments as rendered by the server; sequences of a
    # detailed schema (see inspect's `detailed`): the table it belongs to, if any


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A type or domain of a managed schema that the policy's owner does not own."""

    oid: int
    schema: int
    name: str
    subkind: str  # typtype: b c d e r
    owner: int


@dataclass(frozen=True, slots=True)
class ColumnAcl:
    """A column of a managed schema's relation that has its own ACL (column privileges)."""

    relation: int
    schema: int
    table: str
    subkind: str  # the relation's relkind
    owner: int  # the relation's owner
    column: str
    acl: Acl
    schema_name: str = ""  # as the server quotes it (regnamespace)
    system: bool = False  # a column of pg_catalog or information_schema
    initial: Acl = frozenset()  # system columns: what initdb gave (pg_init_privs)


@dataclass(frozen=True, slots=True)
class PasswordRow:
    """queries/passwords.sql: a role's stored verifier (pg_authid, superusers only)."""

    oid: int
    password: str | None


@dataclass(frozen=True, slots=True)
class SchemaRow:
    """queries/schemas.sql."""

    oid: int
    name: str
    owner: int
    extension: bool
    acl: Acl


@dataclass(frozen=True, slots=True)
class DefaultAclRow:
    """queries/default_acls.sql."""

    role: int
    schema: int
    objtype: str
    acl: Acl


@dataclass(frozen=True, slots=True)
class RoleSettingRow:
    """queries/role_settings.sql: pg_db_role_setting."""

    role: int
    database: int
    settings: list[str] | None


@dataclass(frozen=True, slots=True)
class DatabaseRow:
    """queries/database.sql: the target database with its types, column ACLs and guard."""

    oid: int
    name: str
    owner: int
    acl: Acl
    types: tuple[TypeRef, ...]
    columns: tuple[ColumnAcl, ...]
    guard: GuardState | None  # None: a part of the guard exists (GuardRow reads it)


@dataclass(frozen=True, slots=True)
class GuardRow:
    """queries/guard.sql: the guard's parts, where database.sql found one."""

    guard: GuardState


@dataclass(frozen=True, slots=True)
class ObjectGroupRow:
    """queries/objects.sql: one group of tables, sequences or routines (schema, kind, owner, ACL)."""

    schema: int
    kind: ObjectKind
    owner: int
    extension: bool
    linked: bool
    bookkeeping: bool
    count: int
    acl_text: str | None
    acl: Acl
    objects: tuple[ObjectRef, ...] | None  # None: the group is not listed


@dataclass(frozen=True, slots=True)
class ObjectNamesRow:
    """queries/object_names.sql: the objects of one group, by the group's number in the snapshot."""

    gid: int
    objects: tuple[ObjectRef, ...]


# The hazard queries (hazards.py). Fields with a default are ones the rules do not need on every row.


@dataclass(frozen=True, slots=True)
class PathRow:
    """queries/hazard_memberships.sql: `member` has the rights of `role` (directly or through others)."""

    member: int
    role: int
    direct: bool


@dataclass(frozen=True, slots=True)
class OwnedRow:
    """queries/hazard_owned.sql: an object a role owns, described by the server."""

    role: int
    catalog: str
    object: str
    objid: int | None = None
    namespace: int | None = None


@dataclass(frozen=True, slots=True)
class CreateRow:
    """queries/hazard_privileges.sql: whether a role can create in a schema or the database."""

    role: int
    kind: str  # schema, database
    name: str
    can_create: bool


@dataclass(frozen=True, slots=True)
class FunctionRow:
    """queries/hazard_functions.sql: a SECURITY DEFINER routine of the managed schemas."""

    schema: str
    name: str
    args: str
    owner: int
    kind: str  # prokind
    public_execute: bool
    fixed_search_path: bool
    executable_by: list[int]
    volatility: str | None = None  # provolatile


@dataclass(frozen=True, slots=True)
class RlsRow:
    """queries/hazard_rls.sql: a table with RLS not forced, or a view over an RLS table."""

    kind: str  # table, view
    schema: str
    name: str
    owner: int
    forced: bool | None = None
    base_schema: str | None = None
    base_name: str | None = None


@dataclass(frozen=True, slots=True)
class SchemaCreateRow:
    """queries/hazard_outside.sql `schemas`: who can create in a schema outside the managed ones."""

    oid: int
    name: str
    owner: int
    grantees: list[int]
    creators: list[int]
    default_path: str | None


@dataclass(frozen=True, slots=True)
class UserMappingRow:
    """queries/hazard_outside.sql `mappings`: a user mapping of a listed role or PUBLIC (role 0)."""

    role: int
    server: str
    remote_user: str | None


@dataclass(frozen=True, slots=True)
class OutsideHazardRow:
    """queries/hazard_outside.sql: its two columns."""

    schemas: tuple[SchemaCreateRow, ...]
    mappings: tuple[UserMappingRow, ...]


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """queries/lease_state.sql: a leased login, whether it expired, and what it owns and is granted here."""

    role: int
    name: str
    expired: bool
    owns: list[str]
    grants: list[str]


@dataclass(frozen=True, slots=True)
class GuardState:
    """pgwarden's guard as the database has it (queries/guard.sql)."""

    trigger_enabled: str | None  # pg_event_trigger.evtenabled; None: no trigger
    trigger_event: str | None
    trigger_calls_function: bool | None
    source: str | None  # the function's body; None: no function
    security_definer: bool | None
    config: tuple[str, ...] | None
    owner_is_superuser: bool | None
    acl: str | None
    schema_exists: bool
    other_objects: int  # objects in schema pgwarden besides the function
    trigger_tags: tuple[str, ...] | None = None  # WHEN TAG IN (...): None, every command
    language: str | None = None
    function_private: bool | None = None  # EXECUTE for its owner only
    schema_owner_is_superuser: bool | None = None
    schema_private: bool | None = None  # no privilege on schema pgwarden for anyone but its owner
    schema_grantees: tuple[str, ...] = ()  # who holds some (PUBLIC included)


@dataclass(frozen=True, slots=True)
class RefreshRoutine:
    """A refresh routine of a managed schema as the database has it (queries/refresh_routines.sql)."""

    schema: str
    name: str
    args: str
    oid: int
    owner: int
    source: str
    security_definer: bool
    language: str
    config: list[str]
    executors: list[str]  # who may run it besides its owner ('PUBLIC' for PUBLIC)
