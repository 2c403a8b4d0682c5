"""The policy as the engine reads it: one database, its owner, the roles and their grants.

A version 1 file is this model as it is. A version 2 file (pgwarden.policy.v2) says more (profiles,
scopes and exceptions, groups and people, role attributes and settings, several databases) and is
resolved into one of these per database: the planners never see the file's shape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import Field, model_validator

from pgwarden.errors import PolicyError
from pgwarden.policy.base import _Model as _Model
from pgwarden.policy.expected import check_expected
from pgwarden.policy.grants import GrantSpec as GrantSpec
from pgwarden.policy.grants import ProfileSpec as ProfileSpec
from pgwarden.policy.labels import check_labels
from pgwarden.policy.leases import LeaseSpec, PgBouncerSpec
from pgwarden.policy.names import (
    AccessLevel,
    DatabaseName,
    Duration,
    EnvName,
    Mode,
    RoleName,
    SchemaName,
    SettingName,
    ValidUntil,
    password_env_for,
    split_qualified,
)
from pgwarden.policy.names import (
    LocatedError as LocatedError,
)
from pgwarden.policy.refresh import RefreshSpec
from pgwarden.policy.render import render_toml
from pgwarden.policy.temporary import BreakGlassSpec, TemporarySpec

#: What a setting's value may be in TOML; stored on the role as text.
SettingValue = str | int | float | bool


class DatabaseSpec(_Model):
    """A database the policy manages, its managed schemas and (version 2) the grants in it."""

    name: DatabaseName
    schemas: tuple[SchemaName, ...] = ("public",)
    grants: tuple[GrantSpec, ...] = ()
    #: names the grants use that a migration has not created yet ("app.invoices", a column as
    #: "app.customers.email", a schema): absent, they are noted instead of refused (pgwarden.resolve)
    expected: tuple[str, ...] = ()
    #: materialized views a role may refresh (pgwarden.refresh: MAINTAIN on 17+, a refresh routine on 14-16)
    refresh: tuple[RefreshSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_schemas(self) -> DatabaseSpec:
        if not self.schemas:
            raise ValueError("schemas must list at least one schema")
        if len(set(self.schemas)) != len(self.schemas):
            raise ValueError("schemas lists the same schema twice")
        check_expected(self)
        for index, entry in enumerate(self.refresh):
            outside = [v for v in entry.views if split_qualified(v)[0] not in self.schemas]
            if outside:
                raise LocatedError(
                    f"{outside[0]} is not in a managed schema of database {self.name}", "refresh", index, "views"
                )
        for index, grant in enumerate(self.grants):
            outside = [s for s in grant.schemas if s not in self.schemas]
            if outside:
                raise LocatedError(
                    f"schema {outside[0]} is not a managed schema of database {self.name} ({', '.join(self.schemas)})",
                    "grants",
                    index,
                    "schemas",
                )
            for key in ("tables", "routines", "columns"):
                outside = [t for t in getattr(grant, key) if split_qualified(t)[0] not in self.schemas]
                if outside:
                    raise LocatedError(
                        f"{outside[0]} is not in a managed schema of database {self.name}",
                        "grants",
                        index,
                        key,
                    )
        return self


class RoleAttributes(_Model):
    """Declared state of a role; a key left out is left alone (an empty `settings` means none)."""

    connection_limit: int | None = Field(default=None, ge=-1)
    valid_until: ValidUntil | None = None
    comment: str | None = None
    settings: dict[SettingName, SettingValue] | None = None
    database_settings: dict[DatabaseName, dict[SettingName, SettingValue]] | None = None


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
    #: other access roles it is a member of, beside its own grants (version 2: `also_member_of`)
    also_member_of: tuple[MembershipSpec, ...] = ()


class MembershipSpec(_Model):
    """Membership in a group role; `inherit` and `set` are PostgreSQL 16's membership options."""

    role: RoleName
    inherit: bool = True
    set: bool = True
    admin: bool = False  # ADMIN OPTION: it may make other roles members (kept where the database has it)


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
    #: PUBLIC's CREATE on schema public when the policy does not manage it (the PostgreSQL 14 default):
    #: every role's search_path starts there; false keeps it (what init writes where the database has it)
    revoke_public_create: bool = True
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


def _claim(seen: dict[str, str], name: str, what: str, phrase: str) -> None:
    """Records that `name` is `what` in the policy; a role has one part only (owner, deploy login, ...)."""
    if name in seen:
        raise ValueError(f"role {name!r} is both {seen[name]} and {phrase}")
    seen[name] = what


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
    #: sensitive columns by label: `pii = ["app.customers.email", "app.*.phone"]` (pgwarden.labels)
    labels: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: time-bound access (pgwarden.policy.temporary; docs/change-control.md)
    temporary: tuple[TemporarySpec, ...] = ()
    break_glass: BreakGlassSpec = BreakGlassSpec()
    #: logins other systems issue, and PgBouncer's auth_user (pgwarden.policy.leases)
    leased: tuple[LeaseSpec, ...] = ()
    pgbouncer: PgBouncerSpec | None = None

    @model_validator(mode="after")
    def _labels(self) -> Policy:
        check_labels(self.labels, self.databases or (self.database,))
        return self

    @model_validator(mode="after")
    def _distinct_roles(self) -> Policy:
        seen: dict[str, str] = {self.owner.name: "owner"}
        for deploy in self.owner.deploy_logins:
            _claim(seen, deploy, "deploy login", "a deploy login")
        for access in self.access:
            _claim(seen, access.name, "access role", "an access role")
            if self.version == 1 and access.level is None:
                raise ValueError(f"access role {access.name!r}: level is missing (readwrite or readonly)")
        for member in self.members:
            _claim(seen, member.name, "member", "a member")
        for ignored in self.ignore.roles:
            if ignored in seen:
                raise ValueError(f"role {ignored!r} is {seen[ignored]} and cannot be ignored")
        for retired in self.retired:
            if retired.name in seen:
                raise ValueError(f"role {retired.name!r} is {seen[retired.name]} and cannot be retired")
        return self

    @model_validator(mode="after")
    def _refreshers(self) -> Policy:
        """A refresh is a right of an access role of the policy (one with grants of its own)."""
        access = {a.name for a in self.access}
        for index, entry in enumerate(self.database.refresh):
            if entry.role not in access:
                raise LocatedError(
                    f"role {entry.role!r} is not an access role of the policy ([[roles]] without member_of): "
                    "only those may refresh materialized views",
                    "database",
                    "refresh",
                    index,
                    "role",
                )
        return self

    @model_validator(mode="after")
    def _time_bound(self) -> Policy:
        owner_side = {self.owner.name, *self.owner.deploy_logins}
        for t in self.temporary:
            if t.group in owner_side:
                raise ValueError(
                    f"temporary: {t.group} is the owner's side: a temporary member of it could change the schema"
                )
        for name in self.break_glass.roles:
            if name in self.role_names:
                raise ValueError(f"break_glass: {name} is a role of the policy; an emergency role is a role of its own")
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

    def secrets(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The login roles' password variables that are set in `environ` (default: the process's), by name."""
        env = os.environ if environ is None else environ
        # An empty variable is refused: PostgreSQL stores no password for it, so the role would be left
        # without one while the plan said "set the password".
        empty = [v for _, v in self.login_roles() if v and env.get(v) == ""]
        if empty:
            raise PolicyError(
                f"${empty[0]} is set but empty: an empty password is no password",
                hint=f"set {empty[0]} to the password, or unset it (`unset {empty[0]}`) to leave the password as it is",
            )
        return {v: env[v] for _, v in self.login_roles() if v and env.get(v) is not None}

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

    def excepted_tables(self) -> list[tuple[str, str]]:
        """(schema, table) of every table a grant excepts, or excepts columns of (first mention order)."""
        names = [n for g in self.grants() for n in (*g.except_tables, *g.except_columns)]
        return [split_qualified(n) for n in dict.fromkeys(names)]

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
        return render_toml(self)


def v1_level(database: DatabaseSpec, role: str) -> AccessLevel | None:
    """The version 1 level equivalent to a role's grants in `database`, if there is one."""
    mine = [g for g in database.grants if g.role == role]
    if len(mine) != 1:
        return None
    g = mine[0]
    detail = g.tables or g.routines or g.columns or g.except_tables or g.except_routines or g.except_columns
    plain = not detail and g.defaults is None and g.usage is True and g.database is None and not g.global_defaults
    plain = plain and not g.grant_option
    plain = plain and set(g.schemas) == set(database.schemas)
    if plain and g.profile == "readwrite":
        return "readwrite"
    if plain and g.profile == "readonly":
        return "readonly"
    return None
