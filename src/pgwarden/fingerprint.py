"""A fingerprint of the catalog state a plan depends on, computed from the snapshot's typed rows. Pure."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pgwarden.snapshot import OutsideGrant, Snapshot

#: pgwarden's own schema for the ledger (pgwarden.ledger): never part of the state it describes.
LEDGER_SCHEMA = "pgwarden_ledger"

#: Parts about cluster-wide role state (roles, memberships, role settings), as opposed to the database's.
ROLE_PARTS = ("role:", "membership:", "role-settings:")

#: ObjectGroup fields left out: which objects a group lists depends on what the plan needs to name,
#: not on the state; acl_text repeats acl; and the count changes with every table a migration
#: creates with the privileges the others have, which is no change of privileges (a plan that a
#: new object changes differs in its steps, which `apply --plan` compares too).
_SKIPPED_FIELDS = {"objects", "acl_text", "count"}


#: how _canon takes a value of each type apart, found once per type (a fingerprint at 100k tables
#: canonicalises ~23,000 values of a dozen types): a dataclass's field names, or one of these
_SET, _SEQ, _MAP, _ATOM = "set", "seq", "map", "atom"
_ATOMS: frozenset[type] = frozenset((str, int, float, bool, type(None)))  # JSON's own: _canon returns them as they are
_SHAPES: dict[type, Callable[[Any], tuple[Any, ...]] | str] = dict.fromkeys(_ATOMS, _ATOM)
#: the sort key of a set's members: json.dumps(v, sort_keys=True), without a new encoder per call
_member_key = json.JSONEncoder(sort_keys=True).encode


def _shape(cls: type) -> Callable[[Any], tuple[Any, ...]] | str:
    """The checks of the generic form, in its order, asked of a type rather than of each value; a
    dataclass gets a getter of its fields' values as a tuple."""
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls) if f.name not in _SKIPPED_FIELDS]
        if len(names) > 1:
            return operator.attrgetter(*names)
        return lambda value: tuple(getattr(value, n) for n in names)  # attrgetter of one name: not a tuple
    if issubclass(cls, frozenset | set):
        return _SET
    if issubclass(cls, list | tuple):
        return _SEQ
    if issubclass(cls, Mapping):
        return _MAP
    return _ATOM


def _canon(value: Any) -> Any:
    """A JSON-able value that is equal exactly when the rows are: frozensets sorted, dataclasses as
    lists. Its form decides every stored digest: tests/test_fingerprint_pure.py holds it to the
    generic form it was first written in, on generated values."""
    cls = type(value)
    if cls is OutsideGrant:
        return _canon_grant(value)
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = _shape(cls)
    if shape is _ATOM:
        return value
    if not isinstance(shape, str):  # a dataclass: most are all atoms (a Grant), taken as they are
        values = shape(value)
        if _ATOMS.issuperset(map(type, values)):
            return list(values)
        return [_canon(v) for v in values]
    if shape is _SET:
        return sorted(map(_canon, value), key=_member_key)
    if shape is _SEQ:
        return [_canon(v) for v in value]
    return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}


@functools.lru_cache(maxsize=1 << 16)
def _canon_grant(value: OutsideGrant) -> list[Any]:
    """A grant outside the managed schemas as _canon gives it, made once per row: the databases of a
    fleet share the other databases' grants (pgwarden.shared), thousands of rows at a thousand
    databases, which every database's fingerprint would otherwise walk again. (Read only: json.dumps.)"""
    return [_canon(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in _SKIPPED_FIELDS]


def _text(canon: Any) -> str:
    return json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str)


def _hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _digest(value: Any, length: int = 16) -> str:
    return _hash(_text(_canon(value)), length)


@dataclass(frozen=True)
class Fingerprint:
    """part name -> short hash of its rows; `digest` is the hash of them all."""

    parts: Mapping[str, str]

    @property
    def digest(self) -> str:
        return "sha256:" + _digest(sorted(self.parts.items()), 64)

    def changed(self, other: Mapping[str, str], *, roles: bool = True) -> list[str]:
        """The parts that differ from `other` (added, removed or changed), sorted; without the
        cluster's role parts when `roles` is False."""
        keys = set(self.parts) | set(other)
        if not roles:
            keys = {k for k in keys if not k.startswith(ROLE_PARTS)}
        return sorted(k for k in keys if self.parts.get(k) != other.get(k))

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "parts": dict(sorted(self.parts.items()))}


def _group(items: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, item in items:
        out.setdefault(key, []).append(item)
    return out


def _rows(snap: Snapshot) -> Iterator[tuple[str, Any]]:
    """(part, row) for the parts that hold several rows of the database: role settings, each
    schema's objects of one kind, types, column ACLs, default privileges (memberships and the grants
    outside the managed schemas: _membership_parts, _outside_parts)."""
    name = snap.role_name
    schemas = {s.oid: s.name for s in snap.schemas}
    yield from ((f"role-settings:{name(s.role)}", s) for s in snap.role_settings)
    yield from ((f"objects:{schemas.get(g.schema, g.schema)}:{g.kind}", g) for g in snap.objects)
    yield from ((f"types:{schemas.get(t.schema, t.schema)}", t) for t in snap.types)
    yield from ((f"columns:{c.schema_name or c.schema}.{c.table}", c) for c in snap.columns)
    yield from ((f"default-privileges:{name(d.role)}", d) for d in snap.default_acls)


class _ByIdentity:
    """Values computed from objects, found again by the objects' identity: a fleet's databases share
    the cluster-level rows (pgwarden.shared: the same objects in every database of a worker
    process), which each fingerprint would otherwise digest again. The objects are kept with the
    value, so their ids cannot be reused while it is; snapshots are never changed in place.
    Bounded: emptied when full (what is then computed again is the same)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.kept: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}

    def get(self, objs: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        key = tuple(map(id, objs))
        hit = self.kept.get(key)
        if hit is not None:
            return hit[1]
        value = make()
        if len(self.kept) >= self.size:
            self.kept.clear()  # threads of a worker may race here: at worst a value is computed again
        self.kept[key] = (objs, value)
        return value


_ROLE_PARTS = _ByIdentity(64)


def _role_parts(snap: Snapshot) -> dict[str, str]:
    """role:NAME -> digest, and membership:ROLE:MEMBER -> digest: the cluster's, the same objects in
    every database of a fleet (computed once for them)."""

    def make() -> dict[str, str]:
        # the epoch says valid_until, in no time zone
        parts = {f"role:{r.name}": _digest(dataclasses.replace(r, valid_until=None)) for r in snap.roles.values()}
        name = snap.role_name
        groups = _group((f"membership:{name(m.role)}:{name(m.member)}", m) for m in snap.memberships)
        return parts | {k: _digest(v) for k, v in groups.items()}

    made: dict[str, str] = _ROLE_PARTS.get((snap.roles, snap.memberships), make)
    return made


#: per thread (a fleet's worker runs several): id(grant) -> the grant (kept: its id is not reused) and its text
_TEXTS = threading.local()
_TEXTS_MAX = 1 << 14  # a few MB per thread at most (the rows of 8,000 other databases)


def _grant_texts(rows: tuple[OutsideGrant, ...]) -> list[str]:
    """What _digest writes of each grant outside the managed schemas, made once per row object: a
    fleet's databases share the other databases' grants (pgwarden.shared, the same objects in every
    database of a worker), thousands at a thousand databases. Found by identity, in C loops."""
    kept: dict[int, tuple[OutsideGrant, str]] | None = getattr(_TEXTS, "kept", None)
    if kept is None or len(kept) > _TEXTS_MAX:
        kept = _TEXTS.kept = {}
    ids = list(map(id, rows))
    hits = list(map(kept.get, ids))
    if None in hits:
        for i, row in zip(ids, rows, strict=True):
            if i not in kept:
                kept[i] = (row, _text(_canon_grant(row)))
        hits = list(map(kept.__getitem__, ids))
    return list(map(operator.itemgetter(1), hits))  # type: ignore[arg-type]


def _outside_parts(snap: Snapshot) -> dict[str, str]:
    """outside:KIND -> digest: what _digest gives for the list of the kind's rows (json.dumps of a
    list with these separators is its items' texts joined by commas), from each row's text."""
    rows = snap.outside
    texts: dict[str, list[str]] = {}
    pairs = zip(map(operator.attrgetter("kind"), rows), _grant_texts(rows), strict=True)
    for kind, run in itertools.groupby(pairs, key=operator.itemgetter(0)):
        texts.setdefault(f"outside:{kind}", []).extend(map(operator.itemgetter(1), run))
    return {k: _hash("[" + ",".join(v) + "]") for k, v in texts.items()}


def fingerprint(snap: Snapshot) -> Fingerprint:
    """The catalog state of `snap`, by part: each role, membership, role's settings and default
    privileges, the database, each schema, each schema's objects of one kind, types, column ACLs,
    the guard and the grants outside the managed schemas. Roles are named, not numbered, and the
    oids stay inside the rows (a role dropped and created again is a change). The ledger's schema,
    the server and the connected role, and what the session checked (passwords) are left out."""
    role_parts = _role_parts(snap)
    # the parts in their first order (roles, memberships, the database's groups, the outside grants, ...)
    parts: dict[str, str] = {k: v for k, v in role_parts.items() if k.startswith("role:")}
    parts.update((k, v) for k, v in role_parts.items() if not k.startswith("role:"))
    parts.update((k, _digest(v)) for k, v in _group(_rows(snap)).items())
    parts.update(_outside_parts(snap))
    if snap.database is not None:
        parts["database"] = _digest(snap.database)
    parts.update((f"schema:{s.name}", _digest(s)) for s in snap.schemas if s.name != LEDGER_SCHEMA)
    if snap.guard is not None:
        parts["guard"] = _digest(snap.guard)
    return Fingerprint(parts)


def describe_parts(keys: Iterable[str], shown: int = 5) -> str:
    """Changed parts in words for a message: "role alice, tables of schema app, and 3 more"."""
    words = [_word(k) for k in keys]
    more = f", and {len(words) - shown} more" if len(words) > shown else ""
    return ", ".join(words[:shown]) + more


def _word(key: str) -> str:
    kind, _, rest = key.partition(":")
    if kind == "objects":
        schema, _, what = rest.rpartition(":")
        return f"{what}s of schema {schema}"
    if kind == "membership":
        group, _, member = rest.partition(":")
        return f"membership of {member} in {group}"
    labels = {
        "role": "role",
        "role-settings": "settings of role",
        "schema": "schema",
        "types": "types of schema",
        "columns": "column privileges of",
        "default-privileges": "default privileges of",
        "outside": "grants outside the managed schemas on",
    }
    return f"{labels.get(kind, kind)} {rest}".strip()
