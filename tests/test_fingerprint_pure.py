"""The fingerprint's canonical form, which every stored digest was made with, held to its generic first form."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgwarden import fingerprint as fp
from pgwarden.caps import Capabilities
from pgwarden.rows import GuardState
from pgwarden.snapshot import (
    ColumnAcl,
    Database,
    DefaultAcl,
    Grant,
    Membership,
    ObjectGroup,
    ObjectRef,
    OutsideGrant,
    Role,
    RoleSetting,
    Schema,
    ServerInfo,
    Snapshot,
    TypeRef,
)
from test_plan_pure import compliant

ROWS = (Grant, Role, Membership, Database, Schema, ObjectRef, ObjectGroup, TypeRef, ColumnAcl, DefaultAcl)
ROWS += (RoleSetting, OutsideGrant, GuardState)
#: hypothesis describes its strategies for the rows at length; the warning says nothing of the test
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def reference_canon(value: Any) -> Any:
    """_canon as first written (the form of the ledgers' stored digests), checked per value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return [reference_canon(getattr(value, f.name)) for f in fields if f.name not in fp._SKIPPED_FIELDS]
    if isinstance(value, frozenset | set):
        return sorted((reference_canon(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [reference_canon(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): reference_canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return value


def _text(canon: Any) -> str:
    """What _digest hashes (compared as text: NaN is not equal to itself)."""
    return json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str)


atoms = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
rows = st.sampled_from(ROWS).flatmap(st.from_type)
hashables = st.recursive(atoms | rows, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4))
values = st.recursive(
    atoms | rows | hashables,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(hashables, max_size=5)
        | st.sets(hashables, max_size=5)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_canon_gives_the_bytes_the_generic_form_gives(value: Any) -> None:
    # fails if the fast form differs from the first one on any value: a different digest would
    # make every ledger's last entry look changed outside pgwarden
    assert _text(fp._canon(value)) == _text(reference_canon(value))


def _tuple(cls: type, max_size: int = 4) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(st.from_type(cls), max_size=max_size).map(tuple)


snapshots = st.builds(
    Snapshot,
    server=st.just(ServerInfo(160000, "16.0", "db", 10, "postgres", True, True, True, True)),
    caps=st.just(Capabilities(160000)),
    target=st.just("db"),
    roles=st.lists(st.from_type(Role), max_size=4).map(lambda rs: {r.oid: r for r in rs}),
    memberships=_tuple(Membership),
    passwords=st.none(),
    database=st.none() | st.from_type(Database),
    schemas=_tuple(Schema),
    objects=_tuple(ObjectGroup, 6),
    default_acls=_tuple(DefaultAcl),
    role_settings=_tuple(RoleSetting),
    types=_tuple(TypeRef),
    guard=st.none() | st.from_type(GuardState),
    columns=_tuple(ColumnAcl),
    outside=_tuple(OutsideGrant),
)


def reference_fingerprint(snap: Snapshot) -> tuple[list[tuple[str, str]], str]:
    """fingerprint as first written: every part digested from its rows in the generic form, nothing
    kept from one snapshot to the next; (its parts in order, its digest)."""

    def digest(value: Any, length: int = 16) -> str:
        return hashlib.sha256(_text(reference_canon(value)).encode()).hexdigest()[:length]

    name = snap.role_name
    schemas = {s.oid: s.name for s in snap.schemas}
    rows: list[tuple[str, Any]] = [(f"membership:{name(m.role)}:{name(m.member)}", m) for m in snap.memberships]
    rows += [(f"role-settings:{name(s.role)}", s) for s in snap.role_settings]
    rows += [(f"objects:{schemas.get(g.schema, g.schema)}:{g.kind}", g) for g in snap.objects]
    rows += [(f"types:{schemas.get(t.schema, t.schema)}", t) for t in snap.types]
    rows += [(f"columns:{c.schema_name or c.schema}.{c.table}", c) for c in snap.columns]
    rows += [(f"default-privileges:{name(d.role)}", d) for d in snap.default_acls]
    rows += [(f"outside:{o.kind}", o) for o in snap.outside]
    parts: dict[str, Any] = {f"role:{r.name}": dataclasses.replace(r, valid_until=None) for r in snap.roles.values()}
    for key, row in rows:
        parts.setdefault(key, []).append(row)
    if snap.database is not None:
        parts["database"] = snap.database
    parts.update((f"schema:{s.name}", s) for s in snap.schemas if s.name != fp.LEDGER_SCHEMA)
    if snap.guard is not None:
        parts["guard"] = snap.guard
    digests = [(k, digest(v)) for k, v in parts.items()]
    return digests, "sha256:" + digest(sorted(digests), 64)


def _same(snap: Snapshot) -> None:
    fast = fp.fingerprint(snap)
    parts, digest = reference_fingerprint(snap)
    assert list(fast.parts.items()) == parts
    assert fast.digest == digest


@settings(max_examples=150, deadline=None)
@given(snapshots)
def test_fingerprint_of_a_snapshot_is_the_one_the_generic_form_gives(snap: Snapshot) -> None:
    _same(snap)
    _same(snap)  # again: what the first one kept (by the rows' identity) gives the same


fleet = st.tuples(
    st.lists(st.from_type(Role), max_size=3).map(lambda rs: {r.oid: r for r in rs}),
    _tuple(Membership),
    st.lists(st.from_type(OutsideGrant), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.none() | st.from_type(OutsideGrant)), max_size=8),
)


@settings(max_examples=100, deadline=None)
@given(snapshots, fleet)
def test_a_fleets_databases_sharing_rows_keep_their_own_fingerprints(snap: Snapshot, shared: Any) -> None:
    # a fleet's databases share the cluster's rows (the same objects: pgwarden.shared), each without
    # its own database's grants and with grants of its own: what one database's fingerprint keeps
    # must never stand for another's rows, only for the same objects
    roles, memberships, others, databases = shared
    for skip, new_roles, own in databases:
        rows = tuple(g for i, g in enumerate(others) if i != skip) + ((own,) if own is not None else ())
        roles_now = dict(roles) if new_roles else roles  # an equal mapping, another object
        _same(dataclasses.replace(snap, roles=roles_now, memberships=memberships, outside=rows))


def test_a_known_snapshot_keeps_its_digest() -> None:
    # computed by the generic form before the fast one (main at 6a5372e): a ledger entry recorded
    # then must still match the same state now, or check reports a change outside pgwarden
    snap = compliant()
    _same(snap)
    assert fp.fingerprint(snap).digest == PINNED


PINNED = "sha256:44616b0595c8532ee59fce34da5d5875979023cb1e4ed4241ebe80242c393a70"
