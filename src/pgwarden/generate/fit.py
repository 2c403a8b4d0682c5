"""Fitting what a role holds to grants: profiles on schemas, listed objects and columns. Pure.

For each managed schema and kind, the owner's default privileges for the role (when there are any)
or else the privileges most of its objects give the role choose the schema's profile, a built-in
one when it matches and a custom one otherwise; `defaults` lists the kinds the owner's default
privileges really cover. Every object that holds something else is excepted from the schema's
grant and, when it holds anything, listed in a grant with the profile that fits it; a serial's
sequence that holds less than its table's grants give is excepted by name. Column privileges a
role holds beyond its table-level ones become grants on listed `columns`. Grants of one role with
the same profile (and defaults) are merged. `notes` lists what cannot be said exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pgwarden.generate.catalog import LiveObject
from pgwarden.kinds import PROFILE_KINDS
from pgwarden.profiles import BUILTIN, Profile
from pgwarden.scopes import COLUMN_PRIVILEGES

#: Object kinds a profile gives privileges on (schema USAGE and CONNECT come with every profile).
FITTED_KINDS: tuple[str, ...] = PROFILE_KINDS
#: Built-in profiles fitting may choose for objects (usage and connect give none).
_OBJECT_PROFILES = ("readwrite", "readonly", "append")

_NOTHING: frozenset[str] = frozenset()
#: The profile init writes for the owner's default privileges ON TYPES: USAGE on the types it creates
#: later (existing types are PUBLIC's to use); never chosen by fitting, which says objects.
TYPE_PROFILE = "type_usage"
TYPE_PROFILE_SPEC: Mapping[str, frozenset[str]] = {"type": frozenset({"USAGE"})}


def _words(privileges: Iterable[str]) -> str:
    return ", ".join(sorted(privileges)) or "nothing"


@dataclass
class ProfileBook:
    """The profiles fitting has used: the built-in ones and the custom ones it had to make."""

    builtin: Mapping[str, Profile] = field(default_factory=lambda: {n: BUILTIN[n] for n in _OBJECT_PROFILES})
    custom: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def on(self, name: str, kind: str) -> frozenset[str]:
        if name in BUILTIN:
            return BUILTIN[name].on(kind)
        if name == TYPE_PROFILE and name not in self.custom:
            return TYPE_PROFILE_SPEC.get(kind, _NOTHING)
        return self.custom[name].get(kind, _NOTHING)

    def name_for(self, wanted: Mapping[str, frozenset[str]], who: str) -> str:
        """The profile giving exactly `wanted` (kind -> privileges; kinds left out are free): a
        built-in one, a custom one made before, or a new custom one based on the closest built-in."""
        for name in [*self.builtin, *self.custom]:
            if all(self.on(name, k) == v for k, v in wanted.items()):
                return name
        closest = nearest_builtin(wanted, self.builtin, smaller=False)
        # a kind left free (no objects of it, no default privileges) reads as the closest built-in;
        # the grant's `defaults` leaves it out, so nothing is granted on it until such objects exist
        full = {k: wanted.get(k, closest.on(k)) for k in FITTED_KINDS}
        name = self._new_name(closest, full)
        self.custom[name] = full
        changes = [
            f"{'plus' if plus else 'minus'} {_words(diff)} on {k}s"
            for k in FITTED_KINDS
            for plus, diff in ((True, full[k] - closest.on(k)), (False, closest.on(k) - full[k]))
            if diff
        ]
        self.notes[name] = [f"{closest.name} {' and '.join(changes)}: no built-in profile fits what {who} holds"]
        return name

    def _new_name(self, closest: Profile, full: Mapping[str, frozenset[str]]) -> str:
        parts: list[str] = []
        for k in FITTED_KINDS:
            prefix = "" if k == "table" else f"{k}_"
            parts += [prefix + p.lower() for p in sorted(full[k] - closest.on(k))]
            parts += [f"{prefix}no_{p.lower()}" for p in sorted(closest.on(k) - full[k])]
        base = "_".join([closest.name, *parts])
        name, n = base, 1
        while name in self.custom or name in BUILTIN:
            n += 1
            name = f"{base}_{n}"
        return name


def nearest_builtin(
    wanted: Mapping[str, frozenset[str]], builtin: Mapping[str, Profile] | None = None, *, smaller: bool = True
) -> Profile:
    """The built-in profile closest to `wanted` (fewest privileges apart); on a tie the smaller one
    (`smaller` False: the first in readwrite, readonly, append order, which names custom ones)."""
    candidates = builtin or {n: BUILTIN[n] for n in _OBJECT_PROFILES}

    def distance(p: Profile) -> tuple[int, int]:
        size = sum(len(p.on(k)) for k in FITTED_KINDS) if smaller else 0
        return sum(len(p.on(k) ^ v) for k, v in wanted.items()), size

    return min(candidates.values(), key=distance)


def majority(sets: list[frozenset[str]]) -> frozenset[str]:
    """The privilege set most objects hold (on a tie, the larger set: fewer exceptions to write)."""
    counts = Counter(sets)
    return min(counts, key=lambda s: (-counts[s], -len(s), sorted(s)))


@dataclass
class Draft:
    """One grant of one role being built (merged by profile and defaults)."""

    role: str
    profile: str
    defaults: tuple[str, ...] | None = None
    schemas: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    routines: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    except_tables: list[str] = field(default_factory=list)
    except_routines: list[str] = field(default_factory=list)
    except_columns: dict[str, list[str]] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)
    usage: bool | list[str] = True
    database: list[str] | None = None
    global_defaults: list[str] = field(default_factory=list)
    grant_option: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "profile": self.profile}
        for key in ("schemas", "tables", "routines", "except_tables", "except_routines"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        for key in ("columns", "except_columns"):
            if getattr(self, key):
                out[key] = {k: list(v) for k, v in getattr(self, key).items()}
        if self.schemas and self.defaults is not None:
            out["defaults"] = list(self.defaults)
        if self.global_defaults:
            out["global_defaults"] = list(self.global_defaults)
        if self.usage is not True:
            out["usage"] = self.usage
        if self.database is not None:
            out["database"] = list(self.database)
        if self.grant_option:
            out["grant_option"] = list(self.grant_option)
        return out

    def gives_usage(self, schema: str) -> bool:
        if isinstance(self.usage, bool):
            return self.usage and schema in self.reached()
        return schema in self.usage

    def reached(self) -> set[str]:
        """The schemas the grant gives something in."""
        return {*self.schemas, *(n.partition(".")[0] for n in (*self.tables, *self.routines, *self.columns))}

    def reaches(self, schema: str, table: str) -> bool:
        q = f"{schema}.{table}"
        return q not in self.except_tables and (schema in self.schemas or q in self.tables)


#: (schema, kind) -> what the owner's default privileges give the role there (empty: nothing)
Defaults = Callable[[str, str], frozenset[str]]


@dataclass
class RoleFit:
    grants: list[Draft]
    notes: list[str]

    def schemas_with_grants(self) -> set[str]:
        out: set[str] = set()
        for d in self.grants:
            out |= {*d.schemas, *(n.partition(".")[0] for n in (*d.tables, *d.routines, *d.columns))}
        return out


def routine_name(obj: LiveObject) -> str:
    return f"{obj.qualified}({obj.args or ''})"


@dataclass
class _Fitter:
    role: str
    book: ProfileBook
    drafts: list[Draft] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def draft(self, profile: str, defaults: tuple[str, ...] | None = None, *, schema: bool = False) -> Draft:
        """The draft to add to: one with this profile (and, for a schema grant, these defaults)."""
        for d in self.drafts:
            if d.profile == profile and not d.columns and (not schema or not d.schemas or d.defaults == defaults):
                if schema and not d.schemas:
                    d.defaults = defaults
                return d
        d = Draft(self.role, profile, defaults)
        self.drafts.append(d)
        return d

    def listed(self, obj: LiveObject, held: frozenset[str]) -> None:
        d = self.draft(self.book.name_for({obj.kind: held}, self.role))
        name = routine_name(obj) if obj.kind == "routine" else obj.qualified
        (d.routines if obj.kind == "routine" else d.tables).append(name)
        d.why.append(f"{name}: {self.role} holds {_words(held)} there")

    def columns(self, obj: LiveObject) -> None:
        """Column privileges beyond the table-level ones: one grant on listed columns per set of
        columns that share them."""
        table = obj.held(self.role)
        by_privilege: dict[str, list[str]] = {}
        for name, acl in obj.columns:
            for p in sorted(acl.get(self.role, _NOTHING) - table):
                by_privilege.setdefault(p, []).append(name)
        by_columns: dict[tuple[str, ...], set[str]] = {}
        for p, names in by_privilege.items():
            by_columns.setdefault(tuple(names), set()).add(p)
        for cols, privs in by_columns.items():
            profile = self.book.name_for({"table": frozenset(privs)}, self.role)
            d = next(
                (d for d in self.drafts if d.profile == profile and d.columns and obj.qualified not in d.columns), None
            )
            if d is None:
                d = Draft(self.role, profile)
                self.drafts.append(d)
            d.columns[obj.qualified] = list(cols)


def fit_role(
    role: str,
    schemas: Iterable[str],
    objects: Iterable[LiveObject],
    defaults: Defaults,
    book: ProfileBook,
    *,
    routines: bool = True,
) -> RoleFit:
    """The grants that give `role` exactly what it holds in `schemas` (see the module's text).
    `routines` False: routines are left out (PUBLIC runs them; the policy does not say who else)."""
    fitter = _Fitter(role, book)
    # what a role holds on what it owns is its owner's right, not a grant: those objects are free
    objs = [o for o in objects if not o.extension and (routines or o.kind != "routine") and o.owner != role]
    kinds = [k for k in FITTED_KINDS if routines or k != "routine"]
    for schema in schemas:
        here = [o for o in objs if o.schema == schema]
        own = [o for o in here if not (o.kind == "sequence" and o.table is not None)]
        grant = _schema_grant(fitter, role, schema, own, kinds, defaults)
        apart = _exceptions(fitter, role, own, grant)  # tables said by the schema grant's except_columns
        for o in here:
            if o.kind == "sequence" and o.table is not None:
                _linked_sequence(fitter, o)
        for o in here:
            if o.kind == "table" and o.columns and o.qualified not in apart:
                fitter.columns(o)
    return RoleFit(fitter.drafts, fitter.notes)


def _schema_grant(
    fitter: _Fitter, role: str, schema: str, own: list[LiveObject], kinds: list[str], defaults: Defaults
) -> Draft | None:
    """The schema-wide grant: per kind, the default privileges when there are, else what most objects hold."""
    wanted: dict[str, frozenset[str]] = {}
    with_defaults: list[str] = []
    for k in kinds:
        given = defaults(schema, k)
        sets = [o.held(role) for o in own if o.kind == k]
        if given:
            wanted[k] = given
            with_defaults.append(k)
        elif sets:
            wanted[k] = majority(sets)
    if not any(wanted.values()):
        return None
    profile = fitter.book.name_for(wanted, role)
    defaults_kinds = None if with_defaults == kinds else tuple(with_defaults)
    grant = fitter.draft(profile, defaults_kinds, schema=True)
    grant.schemas.append(schema)
    return grant


def _exceptions(fitter: _Fitter, role: str, own: list[LiveObject], grant: Draft | None) -> set[str]:
    """The objects that differ from the schema grant: excepted from it and listed with what they hold.
    Returns the tables said by the grant's except_columns instead."""
    book = fitter.book
    apart: set[str] = set()
    for o in sorted(own, key=lambda o: (o.kind, o.name, o.args or "")):
        base = book.on(grant.profile, o.kind) if grant else _NOTHING
        if grant is not None and _all_columns_but(o, role, base, grant):
            apart.add(o.qualified)
            continue
        if o.held(role) == base:
            continue
        if grant is not None:
            name = routine_name(o) if o.kind == "routine" else o.qualified
            (grant.except_routines if o.kind == "routine" else grant.except_tables).append(name)
            grant.why.append(f"except {name}: {role} holds {_words(o.held(role))} there")
        if o.held(role):
            fitter.listed(o, o.held(role))
    return apart


def _all_columns_but(obj: LiveObject, role: str, base: frozenset[str], grant: Draft) -> bool:
    """A table where `role` holds the schema's profile but its column privileges on every column
    but some: said as the grant minus those columns (`except_columns`), which keeps the intent
    (a column added later gets them too). Exact only when the column privileges are the same on
    each column that has them and none is held on the whole table."""
    if obj.kind != "table" or not obj.columns:
        return False
    on_columns = {name: acl.get(role, _NOTHING) for name, acl in obj.columns}
    given = {p for p in on_columns.values() if p}
    excluded = [name for name, p in on_columns.items() if not p]
    col = base & COLUMN_PRIVILEGES
    if not col or not excluded or given != {col} or obj.held(role) != base - COLUMN_PRIVILEGES:
        return False
    grant.except_columns[obj.qualified] = excluded
    grant.why.append(f"{obj.qualified}: {role} holds {_words(col)} on its other columns only")
    return True


def _linked_sequence(fitter: _Fitter, seq: LiveObject) -> None:
    """A serial's sequence goes with its table: when it holds other than what the table's grants
    give it, it is excepted from them by name and, if it holds anything, listed on its own."""
    covering = [d for d in fitter.drafts if d.reaches(seq.schema, seq.table or "")]
    given = frozenset().union(*(fitter.book.on(d.profile, "sequence") for d in covering))
    held = seq.held(fitter.role)
    if held == given:
        return
    for d in covering:
        if fitter.book.on(d.profile, "sequence"):
            d.except_tables.append(seq.qualified)
    if held:
        fitter.listed(seq, held)


__all__ = ["COLUMN_PRIVILEGES", "FITTED_KINDS", "Draft", "ProfileBook", "RoleFit", "fit_role", "majority"]
