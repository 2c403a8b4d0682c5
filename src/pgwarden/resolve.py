"""Every name a policy gives, resolved against the catalog: a typo is an error, never a silent widening.

A grant that names a table, an excepted table or an excepted column that the database does not have
would do something other than what the file says: an excepted column misspelt is granted, an
excepted table misspelt is granted with its schema. So each name is looked up in the snapshot
before anything is planned; one that matches nothing is an error (exit 2) with the closest name
the database has, unless the database's `expected` lists it (a migration will create it: the plan
notes it). Names in a schema that does not exist yet (a database apply has still to create, say)
cannot be told from typos and are noted, not refused: nothing there can be granted yet. (A database
that does not exist yet is read from template1, which it will be a copy of: its `public` is checked.)

Other parts of the policy that name catalog objects (labelled patterns, say) add their names with
`register`: a resolver takes (policy, snapshot) and yields `Name`s, checked the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from pgwarden.errors import PolicyError
from pgwarden.policy import Policy, split_qualified
from pgwarden.snapshot import ObjectRef, Snapshot


@dataclass(frozen=True)
class Name:
    """One name of the policy to find in the catalog.

    `key`: where the policy gives it (for the message); `value`: as written; `what`: its kind in
    words ("table", "column of app.customers"); `candidates`: the names of that kind the database
    has; `known`: False when the catalog could not be read for it (its schema does not exist yet),
    so that it is noted rather than refused; `expected_as`: the spelling `expected` must use."""

    key: str
    value: str
    what: str
    candidates: Collection[str]
    known: bool = True
    expected_as: str | None = None
    expectable: bool = True  # whether `expected` may list it (tables, columns, schemas; not roles)

    @property
    def spelled(self) -> str:
        return self.expected_as or self.value


#: (policy, snapshot) -> the names it gives; see `register`.
Resolver = Callable[[Policy, Snapshot], Iterable[Name]]
_RESOLVERS: list[Resolver] = []


def register(resolver: Resolver) -> Resolver:
    """Add a resolver (usable as a decorator): its names are checked by `resolve` like the grants'."""
    _RESOLVERS.append(resolver)
    return resolver


def typo_of(value: str, candidates: Iterable[str]) -> str | None:
    """The candidate `value` is a typo of, for names that need not exist (a schema apply creates, an
    ignored or retired role): at most one or two edits (a letter missing, extra, wrong or two
    swapped; two only for names of eight characters or more). Likeness alone is not enough there:
    `erp_monitor` is not a typo of `erp_owner`."""
    allowed = 2 if len(value) >= 8 else 1
    found = sorted((d, c) for c in candidates if (d := _edits(value.lower(), c.lower())) <= allowed)
    return found[0][1] if found else None


def _edits(a: str, b: str) -> int:
    """Edit distance with transpositions (optimal string alignment)."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        prev2, prev = prev, row
    return prev[-1]


def closest(value: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `value` (a hint's did-you-mean), if one is alike enough."""
    found = difflib.get_close_matches(value, list(candidates), n=1, cutoff=0.6)
    if not found:  # a case mistake ("Customers") is below difflib's cutoff for short names
        found = [c for c in candidates if c.lower() == value.lower()][:1]
    return found[0] if found else None


def resolve(policy: Policy, snap: Snapshot) -> tuple[str, ...]:
    """Check every name; return the plan's notes about names expected later (or not checkable yet).
    Raises PolicyError naming the first name that matches nothing, with the closest match."""
    expected = set(policy.database.expected)
    missing: list[Name] = []
    waiting: list[str] = []
    later: list[str] = []
    for name in _names(policy, snap):
        if name.value in name.candidates:
            continue
        if name.spelled in expected:
            later.append(name.spelled)
        elif not name.known:
            waiting.append(name.spelled)
        else:
            missing.append(name)
    if missing:
        raise _error(policy, missing)
    notes = []
    if later:
        notes.append(
            f"expected later (listed under `expected`, not there yet): {', '.join(dict.fromkeys(later))}; "
            "nothing is granted on them until a migration creates them, and a plan after that checks them"
        )
    if waiting:
        notes.append(
            f"not checked yet, their schema does not exist: {', '.join(dict.fromkeys(waiting))}; "
            "the first plan after the schema is created checks them"
        )
    return tuple(notes)


def _error(policy: Policy, missing: list[Name]) -> PolicyError:
    first = missing[0]
    more = f" (and {len(missing) - 1} more name(s) that match nothing)" if len(missing) > 1 else ""
    near = closest(first.value, first.candidates)
    guess = f"did you mean {near!r}? " if near else ""
    later = (
        f', or, if a migration will create it, add "{first.spelled}" to `expected` of database {policy.database.name}'
        if first.expectable
        else ""
    )
    where = f"database {policy.database.name}" if first.expectable else "the cluster"
    return PolicyError(
        f"{first.key}: {first.what} {first.value!r} does not exist in {where}{more}",
        hint=f"{guess}fix the name in the policy{later}",
    )


def _names(policy: Policy, snap: Snapshot) -> Iterator[Name]:
    yield from _grant_names(policy, snap)
    yield from _schema_names(policy, snap)
    yield from _ignored_roles(policy, snap)
    yield from _refresh_names(policy, snap)
    for resolver in _RESOLVERS:
        yield from resolver(policy, snap)


def _relations(snap: Snapshot) -> dict[str, set[str] | None]:
    """schema -> `schema.name` of its tables, views and sequences; None when some group of the
    schema was read without its names (it cannot be told what is missing there)."""
    return _qualified(snap, ("table", "sequence"), lambda schema, o: f"{schema}.{o.name}")


def _routines(snap: Snapshot) -> dict[str, set[str] | None]:
    """schema -> `schema.name(identity arguments)` of its routines (None as for `_relations`)."""
    return _qualified(snap, ("routine",), lambda schema, o: f"{schema}.{o.name}({o.args or ''})")


def _qualified(
    snap: Snapshot, kinds: tuple[str, ...], spell: Callable[[str, ObjectRef], str]
) -> dict[str, set[str] | None]:
    by_oid = {s.oid: s.name for s in snap.schemas}
    # a database that does not exist yet is read from template1, which CREATE DATABASE copies: its
    # schemas (public) are what the new database will have, so names there are checked now, before
    # apply creates anything
    out: dict[str, set[str] | None] = {s.name: set() for s in snap.schemas}
    for group in snap.objects:
        schema = by_oid.get(group.schema)
        if schema is None or group.kind not in kinds:
            continue
        names = out.get(schema)
        if group.objects is None or names is None:
            out[schema] = None
            continue
        names.update(spell(schema, o) for o in group.objects)
    return out


#: Grant keys naming tables, routines and columns; the keys a grant does not have are skipped
#: (`routines`, `except_routines` and `columns` come with the keys that say any database exactly).
_TABLE_KEYS = ("tables", "except_tables", "except_columns", "columns")
_ROUTINE_KEYS = ("routines", "except_routines")
_COLUMN_KEYS = ("except_columns", "columns")


def _grant_names(policy: Policy, snap: Snapshot) -> Iterator[Name]:
    relations, routines = _relations(snap), _routines(snap)
    by_oid = {s.oid: s.name for s in snap.schemas}
    columns: dict[str, set[str]] = {}
    for c in snap.columns:
        columns.setdefault(f"{by_oid.get(c.schema, '')}.{c.table}", set()).add(c.column)
    db = policy.database.name
    for index, grant in enumerate(policy.database.grants):
        where = f"databases[{db}].grants[{index}] ({grant.role}, {grant.profile})"
        for key in _TABLE_KEYS:
            for table in getattr(grant, key, ()):
                names = relations.get(split_qualified(table)[0])
                yield Name(f"{where}.{key}", table, "table", names or set(), known=names is not None)
        for key in _ROUTINE_KEYS:
            for routine in getattr(grant, key, ()):
                found = routines.get(split_qualified(routine)[0])
                yield Name(f"{where}.{key}", routine, "routine", found or set(), known=found is not None)
        for key in _COLUMN_KEYS:
            listed: dict[str, tuple[str, ...]] = getattr(grant, key, {})
            for table, named in listed.items():
                names = relations.get(split_qualified(table)[0])
                for column in named:
                    yield Name(
                        f'{where}.{key}."{table}"',
                        column,
                        f"column of {table}",
                        columns.get(table, set()),
                        # a missing table is reported as such (above); its columns cannot be checked
                        known=names is not None and table in names,
                        expected_as=f"{table}.{column}",
                    )


def _schema_names(policy: Policy, snap: Snapshot) -> Iterator[Name]:
    """A managed schema the database does not have is created by apply (the plan says so), unless it
    looks like a typo of a schema the database has and the policy does not manage."""
    if not snap.database_exists:
        return
    present = {s.name for s in snap.schemas}
    others = [s for s in present if s not in policy.database.schemas and not s.startswith("pg_")]
    for schema in policy.database.schemas:
        if schema not in present and typo_of(schema, others):
            yield Name(f"databases[{policy.database.name}].schemas", schema, "schema", present)


def _ignored_roles(policy: Policy, snap: Snapshot) -> Iterator[Name]:
    """An ignored role that does not exist ignores nothing: refused when it looks like a typo of one
    that does (whose privileges authoritative mode would then revoke). Likewise a retired role: one
    already dropped is fine, one whose name is a typo of a role outside the policy would silently
    keep that role."""
    roles = set(snap.role_by_name)
    for role in policy.ignore.roles:
        if role not in roles and typo_of(role, roles):
            yield Name("ignore.roles", role, "role", roles, expectable=False)
    others = roles - set(policy.role_names) - {r.name for r in policy.retired}
    others = {r for r in others if not r.startswith("pg_")}
    for retired in policy.retired:
        if retired.name not in roles and typo_of(retired.name, others):
            yield Name("retired", retired.name, "role", others, expectable=False)


def _refresh_names(policy: Policy, snap: Snapshot) -> Iterator[Name]:
    """The materialized views of a database's `refresh` (a table or a view by that name is no match:
    only a materialized view can be refreshed)."""
    if not policy.database.refresh:
        return
    views = _qualified(snap, ("table",), lambda schema, o: f"{schema}.{o.name}" if o.subkind == "m" else "")
    db = policy.database.name
    for index, entry in enumerate(policy.database.refresh):
        for view in entry.views:
            names = views.get(split_qualified(view)[0])
            yield Name(
                f"databases[{db}].refresh[{index}] ({entry.role}).views",
                view,
                "materialized view",
                names or set(),
                known=names is not None,
            )
