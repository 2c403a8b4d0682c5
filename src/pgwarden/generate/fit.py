"""Fitting what a role holds to profiles: one grant per profile, exceptions where objects differ. Pure.

For each managed schema the privileges most of its objects give the role (per kind) choose the
schema's profile, a built-in one when it matches and a custom one otherwise; every object that
holds something else is excepted from it and, when it holds anything, granted on its own with the
profile that fits it. A table whose columns carry the grant (SELECT (id, name) only) is the
profile minus the other columns (`except_columns`). Grants of one role with the same profile are
merged into one. The result is exact where PostgreSQL's state can be said in a policy; `notes`
lists where it cannot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pgwarden.generate.catalog import LiveObject
from pgwarden.profiles import BUILTIN, Profile
from pgwarden.scopes import COLUMN_PRIVILEGES

#: Object kinds a profile gives privileges on (schema USAGE and CONNECT come with every profile).
FITTED_KINDS = ("table", "sequence", "routine")

_NOTHING: frozenset[str] = frozenset()


def _words(privileges: Iterable[str]) -> str:
    return ", ".join(sorted(privileges)) or "nothing"


@dataclass
class ProfileBook:
    """The profiles fitting has used: the built-in ones and the custom ones it had to make."""

    builtin: Mapping[str, Profile] = field(default_factory=lambda: dict(BUILTIN))
    custom: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def on(self, name: str, kind: str) -> frozenset[str]:
        if name in self.builtin:
            return self.builtin[name].on(kind)
        return self.custom[name].get(kind, _NOTHING)

    def name_for(self, wanted: Mapping[str, frozenset[str]], who: str) -> str:
        """The profile giving exactly `wanted` (kind -> privileges; kinds left out are free): a
        built-in one, a custom one made before, or a new custom one based on the closest built-in."""
        for name in [*self.builtin, *self.custom]:
            if all(self.on(name, k) == v for k, v in wanted.items()):
                return name
        closest = nearest_builtin(wanted, self.builtin, smaller=False)
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
        while name in self.custom or name in self.builtin:
            n += 1
            name = f"{base}_{n}"
        return name


def nearest_builtin(
    wanted: Mapping[str, frozenset[str]], builtin: Mapping[str, Profile] = BUILTIN, *, smaller: bool = True
) -> Profile:
    """The built-in profile closest to `wanted` (fewest privileges apart); on a tie the smaller one
    (`smaller` False: the first in readwrite, readonly, append order, which names custom ones)."""

    def distance(p: Profile) -> tuple[int, int]:
        size = sum(len(p.on(k)) for k in FITTED_KINDS) if smaller else 0
        return sum(len(p.on(k) ^ v) for k, v in wanted.items()), size

    return min(builtin.values(), key=distance)


@dataclass(frozen=True)
class Held:
    """What one role holds on one object, as a profile would say it."""

    obj: LiveObject
    privileges: frozenset[str]  # table-level, plus the column privileges its columns share
    excluded: tuple[str, ...] = ()  # columns without those column privileges
    note: str | None = None  # why this cannot be said exactly


def held_by(obj: LiveObject, role: str) -> Held:
    """`role`'s privileges on `obj`; column grants become the table's privileges minus columns."""
    table = obj.held(role)
    columns = [(name, acl.get(role, _NOTHING)) for name, acl in obj.columns]
    given = {privs for _, privs in columns if privs}
    if obj.kind != "table" or not given:
        return Held(obj, table)
    shared = next(iter(given))
    excluded = tuple(name for name, privs in columns if not privs)
    if len(given) == 1 and not table & COLUMN_PRIVILEGES and excluded:
        return Held(obj, table | shared, excluded)
    note = (
        f"{role} holds column privileges on every column of {obj.qualified}: written as table privileges"
        if len(given) == 1 and not excluded
        else f"{role}'s column privileges on {obj.qualified} differ from column to column: a policy gives the "
        "same ones on every column it does not except"
    )
    return Held(obj, table | (shared if len(given) == 1 else _NOTHING), note=note)


def majority(sets: list[frozenset[str]]) -> frozenset[str]:
    """The privilege set most objects hold (on a tie, the larger set: fewer exceptions to write)."""
    counts = Counter(sets)
    return min(counts, key=lambda s: (-counts[s], -len(s), sorted(s)))


@dataclass
class Draft:
    """One grant of one role being built (merged by profile)."""

    role: str
    profile: str
    schemas: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    except_tables: list[str] = field(default_factory=list)
    except_columns: dict[str, list[str]] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "profile": self.profile}
        for key in ("schemas", "tables", "except_tables"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.except_columns:
            out["except_columns"] = {k: list(v) for k, v in self.except_columns.items()}
        return out


#: (schema, kind) -> what the owner's default privileges give the role there (None: no entry)
Defaults = Callable[[str, str], frozenset[str] | None]


@dataclass
class RoleFit:
    grants: list[Draft]
    notes: list[str]

    def schemas_with_grants(self) -> set[str]:
        return {s for d in self.grants for s in [*d.schemas, *(t.partition(".")[0] for t in d.tables)]}


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
    drafts: dict[str, Draft] = {}
    notes: list[str] = []
    objs = [o for o in objects if not o.extension and (routines or o.kind != "routine")]
    kinds = [k for k in FITTED_KINDS if routines or k != "routine"]
    for schema in schemas:
        helds = [held_by(o, role) for o in objs if o.schema == schema]
        wanted: dict[str, frozenset[str]] = {}
        for k in kinds:
            sets = [h.privileges for h in helds if h.obj.kind == k]
            evidence = majority(sets) if sets else defaults(schema, k)
            if evidence is not None:
                wanted[k] = evidence
        profile = book.name_for(wanted, role) if any(wanted.values()) else None
        if profile is not None:
            _draft(drafts, role, profile).schemas.append(schema)
        _exceptions(role, profile, helds, drafts, notes, book)
        for k in kinds:
            given = defaults(schema, k) or _NOTHING
            expected = book.on(profile, k) if profile else _NOTHING
            if given != expected:
                notes.append(
                    f"default privileges in schema {schema} give {role} {_words(given)} on new {k}s, the policy "
                    f"{_words(expected)}: plan changes them"
                )
    return RoleFit(list(drafts.values()), notes)


def _draft(drafts: dict[str, Draft], role: str, profile: str) -> Draft:
    return drafts.setdefault(profile, Draft(role, profile))


def _exceptions(
    role: str, profile: str | None, helds: list[Held], drafts: dict[str, Draft], notes: list[str], book: ProfileBook
) -> None:
    """Except from the schema's grant the objects that hold something else, and grant those their own.
    A serial's sequence goes with its table (scopes): it can only be given more, by listing it."""
    covering: dict[str, list[str]] = {}  # table -> the profiles whose grants reach it
    for h in sorted(helds, key=lambda h: h.obj.kind == "sequence" and h.obj.table is not None):
        if h.note:
            notes.append(h.note + ": plan changes them")
        q = h.obj.qualified
        if h.obj.kind == "sequence" and h.obj.table is not None:
            _linked_sequence(role, h, covering.get(f"{h.obj.schema}.{h.obj.table}", []), drafts, notes, book)
            continue
        base = book.on(profile, h.obj.kind) if profile else _NOTHING
        covering[q] = [profile] if profile else []
        if h.privileges == base:
            if h.excluded and profile:
                drafts[profile].except_columns[q] = list(h.excluded)
                drafts[profile].why.append(
                    f"{q}: {role} holds {_words(base & COLUMN_PRIVILEGES)} on its other columns only"
                )
            continue
        if h.obj.kind == "routine":
            notes.append(
                f"{role} holds {_words(h.privileges)} on routine {q}({h.obj.args or ''}) where the schema's others "
                f"give {_words(base)}: a policy grants routines per schema; plan makes it {_words(base)}"
            )
            continue
        if profile:
            drafts[profile].except_tables.append(q)
            drafts[profile].why.append(f"except {q}: {role} holds {_words(h.privileges)} there")
            covering[q] = []
        if h.privileges:
            name = book.name_for({h.obj.kind: h.privileges}, role)
            covering[q].append(name)
            other = _draft(drafts, role, name)
            other.tables.append(q)
            other.why.append(f"{q}: {role} holds {_words(h.privileges)} there")
            if h.excluded:
                other.except_columns[q] = list(h.excluded)


def _linked_sequence(
    role: str, h: Held, profiles: list[str], drafts: dict[str, Draft], notes: list[str], book: ProfileBook
) -> None:
    given = frozenset().union(*(book.on(p, "sequence") for p in profiles))
    if h.privileges == given:
        return
    q = h.obj.qualified
    if given <= h.privileges:
        other = _draft(drafts, role, book.name_for({"sequence": h.privileges}, role))
        other.tables.append(q)
        other.why.append(f"{q}: {role} holds {_words(h.privileges)} there")
        return
    notes.append(
        f"{role} holds {_words(h.privileges)} on sequence {q}, less than its table's grants give it "
        f"({_words(given)}): plan grants the rest"
    )
