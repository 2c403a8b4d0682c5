"""The policy as the engine reads it: one database, its owner, the roles and their grants.

A version 1 file is this model as it is. A version 2 file (pgwarden.policy.v2) says more (profiles,
scopes and exceptions, groups and people, role attributes and settings, several databases) and is
resolved into one of these per database: the planners never see the file's shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pgwarden.policy.names import (
    AccessLevel,
    ColumnName,
    DatabaseName,
    Duration,
    EnvName,
    Mode,
    QualifiedName,
    RoleName,
    SchemaName,
    SettingName,
    ValidUntil,
    password_env_for,
    split_qualified,
)

#: What a setting's value may be in TOML; stored on the role as text.
SettingValue = str | int | float | bool


class LocatedError(ValueError):
    """A validation problem at a key below the one pydantic reports (`loc` is relative to it)."""

    def __init__(self, message: str, *loc: int | str) -> None:
        super().__init__(message)
        self.loc = loc


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ProfileSpec(_Model):
    """A user-defined profile: privileges per object kind (schema USAGE and database CONNECT come
    with every profile; what a kind cannot carry is refused)."""

    table: tuple[str, ...] = ()
    sequence: tuple[str, ...] = ()
    routine: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _carried(self) -> ProfileSpec:
        from pgwarden.kinds import KINDS

        for kind_name in ("table", "sequence", "routine"):
            privileges = getattr(self, kind_name)
            bad = [p for p in privileges if p not in KINDS[kind_name].privileges]
            if bad:
                raise LocatedError(
                    f"a {kind_name} cannot carry {', '.join(bad)} "
                    f"(it can carry {', '.join(KINDS[kind_name].privileges)})",
                    kind_name,
                )
            if len(set(privileges)) != len(privileges):
                raise LocatedError("lists the same privilege twice", kind_name)
        if not (self.table or self.sequence or self.routine):
            raise ValueError("a profile must give at least one privilege on table, sequence or routine")
        return self


class GrantSpec(_Model):
    """`profile` for `role` on every table, sequence and routine of `schemas` and on `tables`
    (schema.table), except `except_tables` and, on the tables of `except_columns`, those columns."""

    role: RoleName
    profile: str
    schemas: tuple[SchemaName, ...] = ()
    tables: tuple[QualifiedName, ...] = ()
    except_tables: tuple[QualifiedName, ...] = ()
    except_columns: dict[QualifiedName, tuple[ColumnName, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scope(self) -> GrantSpec:
        if not self.schemas and not self.tables:
            raise ValueError("a grant needs schemas, tables or both")
        for key in ("schemas", "tables", "except_tables"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise LocatedError("lists the same name twice", key)
        for name in self.except_tables:
            if split_qualified(name)[0] not in self.schemas:
                raise LocatedError(
                    f"{name} is outside the grant's scope: except_tables names tables of its schemas "
                    f"({', '.join(self.schemas) or 'none'})",
                    "except_tables",
                )
        for name, columns in self.except_columns.items():
            if not self.covers_table(*split_qualified(name)):
                raise LocatedError(f"{name} is outside the grant's scope (its schemas and tables)", "except_columns")
            if not columns:
                raise LocatedError(f"{name}: list at least one column", "except_columns", name)
        return self

    def covers_schema(self, schema: str) -> bool:
        """Whether the grant applies to every object of `schema` (not only listed tables)."""
        return schema in self.schemas

    def covers_table(self, schema: str, table: str) -> bool:
        name = f"{schema}.{table}"
        if name in self.except_tables:
            return False
        return schema in self.schemas or name in self.tables

    def excluded_columns(self, schema: str, table: str) -> frozenset[str]:
        return frozenset(self.except_columns.get(f"{schema}.{table}", ()))

    @property
    def detailed_schemas(self) -> set[str]:
        """Schemas where this grant treats some objects apart (listed tables, exceptions)."""
        names = [*self.tables, *self.except_tables, *self.except_columns]
        return {split_qualified(n)[0] for n in names}


class DatabaseSpec(_Model):
    """A database the policy manages, its managed schemas and (version 2) the grants in it."""

    name: DatabaseName
    schemas: tuple[SchemaName, ...] = ("public",)
    grants: tuple[GrantSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_schemas(self) -> DatabaseSpec:
        if not self.schemas:
            raise ValueError("schemas must list at least one schema")
        if len(set(self.schemas)) != len(self.schemas):
            raise ValueError("schemas lists the same schema twice")
        for index, grant in enumerate(self.grants):
            outside = [s for s in grant.schemas if s not in self.schemas]
            if outside:
                raise LocatedError(
                    f"schema {outside[0]} is not a managed schema of database {self.name} ({', '.join(self.schemas)})",
                    "grants",
                    index,
                    "schemas",
                )
            outside = [t for t in grant.tables if split_qualified(t)[0] not in self.schemas]
            if outside:
                raise LocatedError(
                    f"table {outside[0]} is not in a managed schema of database {self.name}",
                    "grants",
                    index,
                    "tables",
                )
        return self


class RoleAttributes(_Model):
    """Declared state of a role; a key left out is left alone (an empty `settings` means none)."""

    connection_limit: int | None = Field(default=None, ge=-1)
    valid_until: ValidUntil | None = None
    comment: str | None = None
    settings: dict[SettingName, SettingValue] | None = None
    database_settings: dict[DatabaseName, dict[SettingName, SettingValue]] | None = None

    def declares_attributes(self) -> bool:
        return any(
            v is not None
            for v in (self.connection_limit, self.valid_until, self.comment, self.settings, self.database_settings)
        )


class OwnerSpec(RoleAttributes):
    """The role that owns the database and every object in it; the only one that runs migrations."""

    name: RoleName
    login: bool = True
    createdb: bool = True
    createrole: bool = False
    password_env: EnvName | None = None
    deploy_logins: tuple[RoleName, ...] = ()


class AccessSpec(RoleAttributes):
    """A role that holds grants: an application login or a NOLOGIN group. In a version 1 file its
    `level` is its grant on every managed schema; in version 2 its grants are the database's."""

    name: RoleName
    level: AccessLevel | None = None
    login: bool = True
    password_env: EnvName | None = None


class MembershipSpec(_Model):
    """Membership in a group role; `inherit` and `set` are PostgreSQL 16's membership options."""

    role: RoleName
    inherit: bool = True
    set: bool = True


class MemberSpec(RoleAttributes):
    """A person or service that gets its rights from groups only (never granted anything itself)."""

    name: RoleName
    member_of: tuple[MembershipSpec, ...]
    login: bool = True
    password_env: EnvName | None = None


class RetiredSpec(_Model):
    """A role to drop: what it owns is reassigned to the owner (or dropped) in every database."""

    name: RoleName
    objects: Literal["reassign", "drop"] = "reassign"
    terminate: bool = False  # end its sessions first


class HardeningSpec(_Model):
    """Hardening beyond the seed procedure; each switch is on by default."""

    revoke_public_connect: bool = True
    revoke_public_execute: bool = True
    #: migration bookkeeping tables (pgwarden.bookkeeping: django_migrations, schema_migrations, ...)
    #: are the owner's to write: access roles keep at most SELECT on them, whatever their profile
    protect_bookkeeping: bool = True


class GuardSpec(_Model):
    """An event trigger that refuses, at DDL time, objects the owner would not own (docs/guard.md)."""

    enabled: bool = False


class IgnoreSpec(_Model):
    """Roles whose privileges pgwarden leaves alone (a monitoring or BI role, say)."""

    roles: tuple[RoleName, ...] = ()


class ApplySpec(_Model):
    """How `apply` behaves against live traffic."""

    lock_timeout: Duration = "5s"


class Policy(_Model):
    """Desired state for one database: its owner, the roles, their grants, hardening switches."""

    version: Literal[1, 2] = 1
    mode: Mode = "authoritative"
    database: DatabaseSpec
    owner: OwnerSpec
    access: tuple[AccessSpec, ...] = Field(default=())
    members: tuple[MemberSpec, ...] = ()
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)
    retired: tuple[RetiredSpec, ...] = ()
    hardening: HardeningSpec = HardeningSpec()
    guard: GuardSpec = GuardSpec()
    ignore: IgnoreSpec = IgnoreSpec()
    apply: ApplySpec = ApplySpec()
    #: version 2: every database of the file (this one included); version 1: empty
    databases: tuple[DatabaseSpec, ...] = ()

    @model_validator(mode="after")
    def _distinct_roles(self) -> Policy:
        seen: dict[str, str] = {self.owner.name: "owner"}
        for deploy in self.owner.deploy_logins:
            if deploy in seen:
                raise ValueError(f"role {deploy!r} is both {seen[deploy]} and a deploy login")
            seen[deploy] = "deploy login"
        for access in self.access:
            if access.name in seen:
                raise ValueError(f"role {access.name!r} is both {seen[access.name]} and an access role")
            seen[access.name] = "access role"
            if self.version == 1 and access.level is None:
                raise ValueError(f"access role {access.name!r}: level is missing (readwrite or readonly)")
        for member in self.members:
            if member.name in seen:
                raise ValueError(f"role {member.name!r} is both {seen[member.name]} and a member")
            seen[member.name] = "member"
        for ignored in self.ignore.roles:
            if ignored in seen:
                raise ValueError(f"role {ignored!r} is {seen[ignored]} and cannot be ignored")
        for retired in self.retired:
            if retired.name in seen:
                raise ValueError(f"role {retired.name!r} is {seen[retired.name]} and cannot be retired")
        return self

    @property
    def role_names(self) -> tuple[str, ...]:
        """Every role the policy manages: owner, deploy logins, access roles, members."""
        return (
            self.owner.name,
            *self.owner.deploy_logins,
            *(a.name for a in self.access),
            *(m.name for m in self.members),
        )

    @property
    def row_roles(self) -> tuple[str, ...]:
        """The roles that work with rows, in policy order: access roles, groups and their members.
        The split's hazards (owning objects, CREATE, membership in the owner) apply to all of them."""
        return (*(a.name for a in self.access), *(m.name for m in self.members))

    def login_roles(self) -> list[tuple[str, str | None]]:
        """(role, password environment variable) for every LOGIN role of the policy."""
        out: list[tuple[str, str | None]] = []
        if self.owner.login:
            out.append((self.owner.name, self.owner.password_env))
        out.extend((d, password_env_for(d)) for d in self.owner.deploy_logins)
        out.extend((a.name, a.password_env) for a in self.access if a.login)
        out.extend((m.name, m.password_env) for m in self.members if m.login)
        return out

    def with_levels(self) -> Policy:
        """Version 2: each access role's `level`, where one grant of readwrite or readonly on every
        managed schema says all it holds here (what version 1 would have written); None otherwise."""
        if self.version != 2:
            return self
        access = tuple(a.model_copy(update={"level": v1_level(self.database, a.name)}) for a in self.access)
        return self.model_copy(update={"access": access})

    def grants(self) -> tuple[GrantSpec, ...]:
        """The grants in this database: version 1's levels are grants on every managed schema."""
        if self.version == 2:
            return self.database.grants
        return tuple(
            GrantSpec(role=a.name, profile=a.level or "readonly", schemas=self.database.schemas) for a in self.access
        )

    def level_of(self, role: str) -> str | None:
        """A role's profiles in this database as one word for people ("readwrite", "readonly+append").
        None for a role that holds no grant here."""
        names = list(dict.fromkeys(g.profile for g in self.grants() if g.role == role))
        return "+".join(names) if names else None

    def attribute_specs(self) -> Iterator[tuple[str, RoleAttributes]]:
        """(role, declared attributes) for every role of the policy."""
        yield self.owner.name, self.owner
        yield from ((a.name, a) for a in self.access)
        yield from ((m.name, m) for m in self.members)

    def to_toml(self) -> str:
        from pgwarden.policy.render import render_toml

        return render_toml(self)


def v1_level(database: DatabaseSpec, role: str) -> AccessLevel | None:
    """The version 1 level equivalent to a role's grants in `database`, if there is one."""
    mine = [g for g in database.grants if g.role == role]
    if len(mine) != 1:
        return None
    g = mine[0]
    plain = not (g.tables or g.except_tables or g.except_columns) and set(g.schemas) == set(database.schemas)
    if plain and g.profile == "readwrite":
        return "readwrite"
    if plain and g.profile == "readonly":
        return "readonly"
    return None
