"""A version 2 policy file: roles declared once for the cluster, profiles, and several databases,
each with its schemas and grants. `resolve` turns it into one engine policy per database."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pgwarden.policy.labels import check_labels
from pgwarden.policy.leases import LeaseSpec, PgBouncerSpec
from pgwarden.policy.model import (
    AccessSpec,
    ApplySpec,
    DatabaseSpec,
    GuardSpec,
    HardeningSpec,
    IgnoreSpec,
    LocatedError,
    MembershipSpec,
    MemberSpec,
    OwnerSpec,
    Policy,
    ProfileSpec,
    RetiredSpec,
    RoleAttributes,
    _Model,
)
from pgwarden.policy.names import EnvName, Mode, RoleName
from pgwarden.policy.patterns import check_entries
from pgwarden.policy.systems import check_systems
from pgwarden.policy.temporary import BreakGlassSpec, TemporarySpec

#: Profiles every policy has (pgwarden.profiles defines what they give).
BUILTIN_PROFILES = ("readwrite", "readonly", "append", "usage", "connect")


class RoleSpec(RoleAttributes):
    """A role of the cluster: an application login, a NOLOGIN group, or (with `member_of`) a person
    or service that gets its rights from groups."""

    name: RoleName
    login: bool = True
    password_env: EnvName | None = None
    member_of: tuple[MembershipSpec, ...] = ()
    #: a role that holds grants and is also a member of other such roles (it holds theirs too)
    also_member_of: tuple[MembershipSpec, ...] = ()

    @field_validator("member_of", "also_member_of", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        # `member_of = ["analysts"]` is short for `[{ role = "analysts" }]`
        if isinstance(value, tuple):
            return tuple({"role": v} if isinstance(v, str) else v for v in value)
        return value


class PolicyFileV2(_Model):
    """The file as written (docs/policy.md)."""

    version: Literal[2]
    mode: Mode = "authoritative"
    owner: OwnerSpec
    roles: tuple[RoleSpec, ...] = ()
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)
    databases: tuple[DatabaseSpec, ...]
    retired: tuple[RetiredSpec, ...] = ()
    hardening: HardeningSpec = HardeningSpec()
    guard: GuardSpec = GuardSpec()
    ignore: IgnoreSpec = IgnoreSpec()
    apply: ApplySpec = ApplySpec()
    labels: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    temporary: tuple[TemporarySpec, ...] = ()
    break_glass: BreakGlassSpec = BreakGlassSpec()
    leased: tuple[LeaseSpec, ...] = ()
    pgbouncer: PgBouncerSpec | None = None

    @field_validator("retired", mode="before")
    @classmethod
    def _retired_names(cls, value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple({"name": v} if isinstance(v, str) else v for v in value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PolicyFileV2:
        self._check_profiles()
        self._check_owner()
        self._check_roles()
        self._check_databases()
        self._check_labels()
        check_systems(self)
        return self

    def _check_profiles(self) -> None:
        for name in self.profiles:
            if name in BUILTIN_PROFILES:
                raise LocatedError(f"profile {name!r} is built in and cannot be redefined", "profiles", name)

    def _check_roles(self) -> None:
        seen: dict[str, str] = {self.owner.name: "the owner"}
        seen.update((d, "a deploy login") for d in self.owner.deploy_logins)
        for index, role in enumerate(self.roles):
            if role.name in seen:
                raise LocatedError(f"role {role.name!r} is declared twice (also {seen[role.name]})", "roles", index)
            seen[role.name] = f"roles[{index}]"
        groups = {r.name for r in self.roles if not r.member_of}
        databases = {d.name for d in self.databases}
        for index, role in enumerate(self.roles):
            _check_attributes(role, databases, ("roles", index))
            for m_index, membership in enumerate(role.member_of):
                if [m.role for m in role.member_of].count(membership.role) > 1:
                    raise LocatedError(
                        f"{role.name} lists group {membership.role!r} twice", "roles", index, "member_of", m_index
                    )
                if membership.role not in groups:
                    what = (
                        "the owner: use owner.deploy_logins for logins that run migrations"
                        if membership.role == self.owner.name
                        else "not a group role of [[roles]] (one without member_of)"
                    )
                    raise LocatedError(
                        f"{role.name} cannot be a member of {membership.role!r}: it is {what}",
                        "roles",
                        index,
                        "member_of",
                        m_index,
                    )
        self._check_also_member_of(groups)
        for key, names in (("ignore", self.ignore.roles), ("retired", tuple(r.name for r in self.retired))):
            for index, name in enumerate(names):
                if name in seen:
                    raise LocatedError(f"role {name!r} is {seen[name]} and cannot be {key}d", key, index)

    def _check_also_member_of(self, groups: set[str]) -> None:
        """A role with grants of its own may also be a member of other such roles (not with member_of)."""
        for index, role in enumerate(self.roles):
            for m_index, membership in enumerate(role.also_member_of):
                where = ("roles", index, "also_member_of", m_index)
                if role.member_of:
                    raise LocatedError(
                        f"{role.name} gets its rights from groups (member_of): also_member_of is for roles that "
                        "hold grants of their own",
                        *where,
                    )
                if membership.role not in groups or membership.role == role.name:
                    raise LocatedError(
                        f"{role.name} cannot be a member of {membership.role!r}: it is not another role of "
                        "[[roles]] without member_of",
                        *where,
                    )

    def _check_labels(self) -> None:
        check_labels(self.labels, self.databases)

    def _check_owner(self) -> None:
        _check_attributes(self.owner, {d.name for d in self.databases}, ("owner",))

    def _check_databases(self) -> None:
        if not self.databases:
            raise LocatedError("list at least one database ([[databases]])", "databases")
        check_entries(self.databases)  # a name with a glob covers the matching databases (policy/patterns.py)
        names = [d.name for d in self.databases]
        people = {r.name for r in self.roles if r.member_of}
        holders = {r.name for r in self.roles if not r.member_of}
        profiles = set(BUILTIN_PROFILES) | set(self.profiles)
        for d_index, db in enumerate(self.databases):
            if names.count(db.name) > 1:
                raise LocatedError(f"database {db.name!r} is listed twice", "databases", d_index, "name")
            for g_index, grant in enumerate(db.grants):
                where = ("databases", d_index, "grants", g_index)
                if grant.role == "PUBLIC":
                    pass  # every role holds what PUBLIC is granted
                elif grant.role in people:
                    raise LocatedError(
                        f"{grant.role} is a member of a group (member_of) and is never granted anything "
                        "directly: grant to its group",
                        *where,
                        "role",
                    )
                if grant.role not in holders and grant.role != "PUBLIC":
                    raise LocatedError(
                        f"role {grant.role!r} is not declared in [[roles]]"
                        + (" (the owner and deploy logins need no grant)" if grant.role in self._owner_side else ""),
                        *where,
                        "role",
                    )
                if grant.profile != "connect" and not grant.has_scope:
                    raise LocatedError(
                        "a grant needs schemas, tables, routines, columns or global_defaults (only profile connect "
                        "needs none)",
                        *where,
                    )
                if grant.profile not in profiles:
                    raise LocatedError(
                        f"unknown profile {grant.profile!r} (built in: {', '.join(BUILTIN_PROFILES)}"
                        + (f"; defined: {', '.join(sorted(self.profiles))}" if self.profiles else "")
                        + ")",
                        *where,
                        "profile",
                    )

    @property
    def _owner_side(self) -> set[str]:
        return {self.owner.name, *self.owner.deploy_logins}

    def resolve(self) -> list[Policy]:
        """One engine policy per database of the file, in the file's order."""
        access = tuple(
            AccessSpec(
                name=r.name,
                login=r.login,
                password_env=r.password_env,
                also_member_of=r.also_member_of,
                **_attributes(r),
            )
            for r in self.roles
            if not r.member_of
        )
        members = tuple(
            MemberSpec(name=r.name, login=r.login, password_env=r.password_env, member_of=r.member_of, **_attributes(r))
            for r in self.roles
            if r.member_of
        )
        return [
            Policy(
                version=2,
                mode=self.mode,
                database=db,
                owner=self.owner,
                access=access,
                members=members,
                profiles=self.profiles,
                retired=self.retired,
                hardening=self.hardening,
                guard=self.guard,
                ignore=self.ignore,
                apply=self.apply,
                databases=self.databases,
                labels=self.labels,
                temporary=self.temporary,
                break_glass=self.break_glass,
                leased=self.leased,
                pgbouncer=self.pgbouncer,
            ).with_levels()
            for db in self.databases
        ]


def _check_attributes(spec: RoleAttributes, databases: set[str], where: tuple[int | str, ...]) -> None:
    """database_settings names databases of the file; a setting is named once, whatever its case."""
    for db in spec.database_settings or {}:
        if db not in databases:
            raise LocatedError(
                f"database {db!r} is not one of the file's [[databases]] ({', '.join(sorted(databases))})",
                *where,
                "database_settings",
                db,
            )
    tables = [("settings", spec.settings or {})]
    tables += [(f"database_settings.{db}", values) for db, values in (spec.database_settings or {}).items()]
    for key, values in tables:
        lowered = [name.lower() for name in values]
        for name in values:
            if lowered.count(name.lower()) > 1:
                raise LocatedError(f"setting {name!r} is given twice (setting names ignore case)", *where, key)


def _attributes(role: RoleAttributes) -> dict[str, Any]:
    return {key: getattr(role, key) for key in RoleAttributes.model_fields}
