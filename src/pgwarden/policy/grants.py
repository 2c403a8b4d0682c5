"""What a policy grants: user-defined profiles and the grants of a database (role x profile x scope,
with exceptions, defaults and the keys that say any database exactly)."""

from __future__ import annotations

from pydantic import Field, model_validator

from pgwarden.kinds import KINDS, PROFILE_FIELDS
from pgwarden.policy.base import _Model
from pgwarden.policy.names import (
    ColumnName,
    DatabasePrivilege,
    DefaultKind,
    GrantablePrivilege,
    GrantRole,
    LocatedError,
    QualifiedName,
    RoutineName,
    SchemaName,
    same_routine,
    split_qualified,
)


class ProfileSpec(_Model):
    """A user-defined profile: privileges per object kind (schema USAGE and database CONNECT come
    with every profile; what a kind cannot carry is refused). `type` (USAGE) is given only by the
    owner's default privileges, on types created later: existing types are PUBLIC's to use."""

    table: tuple[str, ...] = ()
    sequence: tuple[str, ...] = ()
    routine: tuple[str, ...] = ()
    type: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _carried(self) -> ProfileSpec:
        for kind_name in PROFILE_FIELDS:
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
        if not (self.table or self.sequence or self.routine or self.type):
            raise ValueError("a profile must give at least one privilege on table, sequence, routine or type")
        return self


class GrantSpec(_Model):
    """`profile` for `role` on every table, sequence and routine of `schemas` (and, by the owner's
    default privileges, on those created later: the kinds of `defaults`, every kind when it is not
    given), on `tables` (schema.table) and `routines` (schema.name(args)), and on the `columns` of
    tables (column privileges only), except `except_tables`, `except_routines` and, on the tables
    of `except_columns`, those columns."""

    role: GrantRole
    profile: str
    schemas: tuple[SchemaName, ...] = ()
    tables: tuple[QualifiedName, ...] = ()
    routines: tuple[RoutineName, ...] = ()
    columns: dict[QualifiedName, tuple[ColumnName, ...]] = Field(default_factory=dict)
    except_tables: tuple[QualifiedName, ...] = ()
    except_routines: tuple[RoutineName, ...] = ()
    except_columns: dict[QualifiedName, tuple[ColumnName, ...]] = Field(default_factory=dict)
    defaults: tuple[DefaultKind, ...] | None = None
    #: kinds whose objects the owner creates later in any schema get the profile (ALTER DEFAULT
    #: PRIVILEGES without IN SCHEMA)
    global_defaults: tuple[DefaultKind, ...] = ()
    #: USAGE on the schemas the grant reaches (true), on none (false), or on the ones listed
    usage: bool | tuple[SchemaName, ...] = True
    #: the role's privileges on the database: when a grant of the role gives this, they are
    #: exactly what its grants list here (CONNECT, TEMPORARY; [] for none), else CONNECT
    database: tuple[DatabasePrivilege, ...] | None = None
    #: labels ([labels]) whose columns the grant excepts, wherever they are in its scope (pgwarden.labels)
    except_labels: tuple[str, ...] = ()
    #: privileges of this grant the role may keep WITH GRANT OPTION where it holds them (on the
    #: objects, columns, schemas and database the grant gives them): never granted, not revoked;
    #: check reports each one (what init writes where the database has them)
    grant_option: tuple[GrantablePrivilege, ...] = ()

    @model_validator(mode="after")
    def _scope(self) -> GrantSpec:
        self._check_lists()
        self._check_exceptions()
        self._check_columns()
        return self

    def _check_lists(self) -> None:
        """No name, kind or privilege twice; `defaults` with schemas, `usage` within reach, and
        PUBLIC's CONNECT and USAGE left to the hardening."""
        for key in ("schemas", "tables", "routines", "except_tables", "except_routines", "except_labels"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise LocatedError("lists the same name twice", key)
        for key in ("global_defaults", "defaults", "database", "grant_option"):
            values = getattr(self, key) or ()
            if len(set(values)) != len(values):
                raise LocatedError(
                    "lists the same kind twice" if "defaults" in key else "lists the same privilege twice", key
                )
        if self.defaults is not None and not self.schemas:
            raise LocatedError("default privileges are set on schemas: give `schemas` too", "defaults")
        if isinstance(self.usage, tuple):
            outside = [n for n in self.usage if n not in self.reached_schemas]
            if outside:
                raise LocatedError(f"schema {outside[0]} is not one the grant reaches", "usage")
        if self.role == "PUBLIC" and self.grant_option:
            raise LocatedError("PostgreSQL gives PUBLIC no grant option", "grant_option")
        if self.role == "PUBLIC" and (self.database is not None or self.usage is not True):
            key = "database" if self.database is not None else "usage"
            raise LocatedError("PUBLIC's CONNECT and USAGE are the hardening switches' (revoke_public_connect)", key)

    def _check_exceptions(self) -> None:
        # a serial's sequence goes with its listed table: except_tables may name it
        reach = {*self.schemas, *(split_qualified(t)[0] for t in self.tables)}
        for key, names, where in (
            ("except_tables", self.except_tables, reach),
            ("except_routines", self.except_routines, set(self.schemas)),
        ):
            for name in names:
                if split_qualified(name)[0] not in where:
                    raise LocatedError(
                        f"{name} is outside the grant's scope: {key} names objects of its schemas "
                        f"({', '.join(self.schemas) or 'none'})",
                        key,
                    )
        for name, columns in self.except_columns.items():
            if not self.covers_table(*split_qualified(name)):
                raise LocatedError(f"{name} is outside the grant's scope (its schemas and tables)", "except_columns")
            if not columns:
                raise LocatedError(f"{name}: list at least one column", "except_columns", name)

    def _check_columns(self) -> None:
        for name, columns in self.columns.items():
            if self.covers_table(*split_qualified(name)):
                raise LocatedError(
                    f"{name} is already covered by the grant's schemas or tables (all its columns): "
                    "use except_columns to leave some out",
                    "columns",
                    name,
                )
            if not columns:
                raise LocatedError(f"{name}: list at least one column", "columns", name)
            if len(set(columns)) != len(columns):
                raise LocatedError(f"{name}: lists the same column twice", "columns", name)

    @property
    def has_scope(self) -> bool:
        return bool(self.schemas or self.tables or self.routines or self.columns or self.global_defaults)

    def covers_schema(self, schema: str) -> bool:
        """Whether the grant applies to every object of `schema` (not only listed tables)."""
        return schema in self.schemas

    def covers_table(self, schema: str, table: str) -> bool:
        name = f"{schema}.{table}"
        if name in self.except_tables:
            return False
        return schema in self.schemas or name in self.tables

    def covers_routine(self, schema: str, routine: str) -> bool:
        """`routine` is `name(args)`: the identity arguments as PostgreSQL prints them, or only
        their types (what probe calls it with)."""
        name = f"{schema}.{routine}"
        if any(same_routine(n, name) for n in self.except_routines):
            return False
        return schema in self.schemas or any(same_routine(n, name) for n in self.routines)

    def gives_usage(self, schema: str) -> bool:
        if isinstance(self.usage, bool):
            return self.usage and schema in self.reached_schemas
        return schema in self.usage

    def defaults_for(self, kind_name: str) -> bool:
        """Whether objects of `kind_name` created later in the grant's schemas get the profile."""
        return self.defaults is None or kind_name in self.defaults

    def excluded_columns(self, schema: str, table: str) -> frozenset[str]:
        return frozenset(self.except_columns.get(f"{schema}.{table}", ()))

    def listed_columns(self, schema: str, table: str) -> frozenset[str]:
        return frozenset(self.columns.get(f"{schema}.{table}", ()))

    @property
    def detailed_schemas(self) -> set[str]:
        """Schemas where this grant treats some objects apart (listed objects, exceptions)."""
        names = [*self.tables, *self.except_tables, *self.except_columns, *self.columns]
        names += [*self.routines, *self.except_routines]
        return {split_qualified(n)[0] for n in names}

    @property
    def reached_schemas(self) -> set[str]:
        """Schemas the grant gives something in (USAGE on each comes with it)."""
        names = [*self.tables, *self.routines, *self.columns]
        return {*self.schemas, *(split_qualified(n)[0] for n in names)}
