"""Typed rows of init --from-database's own queries (what the snapshot does not read): names and ACLs by role name."""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.acl import AclState
from pgwarden.acl import Grant as AclGrant


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    """A schema's oid, name and how many relations and routines it holds (JSON [oid, name, objects])."""

    oid: int
    name: str
    objects: int


@dataclass(frozen=True, slots=True)
class GenerateDatabaseRow:
    """queries/generate_database.sql: the database's owner and ACL by role name (acl.Grant: a None
    grantee is PUBLIC), and every schema with its number of objects."""

    owner: str
    acl: AclState
    namespaces: tuple[NamespaceRow, ...]


@dataclass(frozen=True, slots=True)
class GenerateColumnRow:
    """A column of a table with column grants, in order, with its own ACL (JSON [column, acl])."""

    column: str
    acl: tuple[AclGrant, ...]


@dataclass(frozen=True, slots=True)
class GenerateObjectRow:
    """queries/generate_objects.sql: a table, sequence or routine with its ACL and its columns' ACLs."""

    schema: str
    kind: str
    name: str
    args: str | None
    table: str | None
    owner: str
    extension: bool
    acl: tuple[AclGrant, ...]  # as the server sends them (one object's: no set needed, 20,000 objects at 10k tables)
    columns: tuple[GenerateColumnRow, ...] | None  # tables with column grants: every column
