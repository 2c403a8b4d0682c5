"""fetch's typed rows: JSON columns decoded once into frozen rows by their annotations, and no catalog
row declares a dict or Any (what every reader would otherwise index by key)."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass
from typing import Any

import pytest

from pgwarden import acl, command_rows, pooler, rows, shared, snapshot
from pgwarden.access import facts
from pgwarden.fetch import decoder
from pgwarden.generate import rows as init_rows
from pgwarden.generate.catalog import _valid_until
from pgwarden.snapshot import Role


@dataclass(frozen=True, slots=True)
class Inner:
    oid: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Outer:
    inner: Inner
    many: tuple[Inner, ...]
    maybe: Inner | None
    pairs: tuple[tuple[int, int], ...]
    names: frozenset[str]


def test_an_object_decodes_by_field_name_and_an_array_by_position() -> None:
    decode = decoder(Outer)
    assert decode is not None
    value = decode(
        {
            "inner": {"oid": "16384", "name": "a"},  # an oid as JSON renders it: a string
            "many": [[1, "x"], [2]],  # by position; a missing trailing field takes its default
            "maybe": None,
            "pairs": [[1, 2], [3, 0]],
            "names": ["p", "q", "p"],
        }
    )
    assert value == Outer(Inner(16384, "a"), (Inner(1, "x"), Inner(2)), None, ((1, 2), (3, 0)), frozenset({"p", "q"}))
    assert type(value.inner.oid) is int


def test_a_json_null_is_an_empty_collection_and_stays_none_where_none_is_allowed() -> None:
    decode = decoder(Outer)
    assert decode is not None
    value = decode({"inner": [1], "many": None, "maybe": None, "pairs": None, "names": None})
    assert (value.many, value.maybe, value.pairs, value.names) == ((), None, (), frozenset())


def test_a_row_that_does_not_match_its_declaration_is_refused() -> None:
    decode = decoder(Inner)
    assert decode is not None
    with pytest.raises(TypeError):
        decode({"oid": 1, "unknown": 2})  # a column the row does not declare
    with pytest.raises(TypeError):
        decode([1, "x", "extra"])  # more values than fields
    with pytest.raises(TypeError):
        decode("1")


def test_catalog_acls_decode_to_grants_by_oid_and_init_acls_to_acl_grants() -> None:
    catalog = decoder(rows.Acl)
    named = decoder(acl.AclState)
    assert catalog is not None and named is not None
    assert catalog([["10", "0", "USAGE", False]]) == frozenset({rows.Grant(10, 0, "USAGE", False)})
    assert named([[None, "SELECT", "owner", True]]) == frozenset({acl.Grant(None, "SELECT", "owner", True)})


def _loose(tp: Any) -> bool:
    """A type that lets a reader index by key or guess: Any anywhere (dict[str, Any], list[list[Any]]),
    or a bare dict."""
    return tp is Any or tp is dict or any(_loose(a) for a in typing.get_args(tp) if a is not Ellipsis)


def test_no_catalog_row_declares_a_dict_or_any() -> None:
    """Every row a catalog query returns (rows.py, the other commands' (command_rows.py), init's, the snapshot's,
    the fleet's shared part, the pooler's, the access model's)."""
    modules = (rows, command_rows, init_rows, snapshot, shared, pooler, facts)
    classes = [
        c
        for m in modules
        for _, c in inspect.getmembers(m, inspect.isclass)
        if dataclasses.is_dataclass(c)
        and c.__module__ == m.__name__
        and c not in (snapshot.Snapshot, shared.ClusterPart)  # rows' holders
    ]
    seen = {"DatabaseRow", "HoldingRow", "GenerateObjectRow", "AccessRow", "Role", "ClusterRow", "PoolerState"}
    seen.add("Relation")
    assert seen <= {c.__name__ for c in classes}
    loose = {f"{c.__name__}.{name}": tp for c in classes for name, tp in typing.get_type_hints(c).items() if _loose(tp)}
    assert not loose, loose
    assert _loose(dict[str, Any]) and _loose(list[list[Any]]) and not _loose(tuple[rows.TypeRef, ...])


def _role(valid_until: str | None, epoch: float | None) -> Role:
    return Role(1, "r", False, True, False, False, True, False, False, -1, valid_until, epoch)


@pytest.mark.parametrize(
    ("local", "epoch", "written"),
    [
        (None, None, None),
        ("infinity", None, "infinity"),
        ("-infinity", None, None),  # what init always wrote (to_char of -infinity is NULL)
        ("2031-01-01T00:00:00.000000", 1924992000.0, "2031-01-01"),  # midnight in the session's TimeZone
        ("2030-06-01T14:30:00.250000", 1906547400.25, "2030-06-01T12:30:00+00:00"),  # an instant, in UTC
        ("0999-03-01T10:00:00.000000", -30636626400.0, "0999-03-01T10:00:00+00:00"),  # four-digit years
    ],
)
def test_init_writes_valid_until_as_a_date_or_a_utc_instant(
    local: str | None, epoch: float | None, written: str | None
) -> None:
    assert _valid_until(_role(local, epoch)) == written


def test_a_json_integer_decodes_to_a_float_where_a_float_is_declared() -> None:
    """An epoch the server renders as 1798761600 (an integral double) is the float 1798761600.0: the
    fingerprint's digests tell 1 from 1.0, so a role read through JSON (a fleet's shared read) must
    digest as the same role read from its own column."""
    value = decoder(float | None)
    assert value is not None
    assert value(1798761600) == 1798761600.0 and type(value(1798761600)) is float
    assert value(None) is None
    role = decoder(snapshot.Role)
    assert role is not None
    got = role(
        {
            "oid": "10",
            "name": "r",
            "superuser": False,
            "inherit": True,
            "createrole": False,
            "createdb": False,
            "login": True,
            "replication": False,
            "bypassrls": False,
            "connlimit": -1,
            "valid_until_epoch": 5,
        }
    )
    assert got.oid == 10 and type(got.valid_until_epoch) is float


def test_every_query_file_reads_whole_with_its_includes() -> None:
    """A shared part (`/* include object_rows */`) is in place in every query that names it, and
    no query file names itself through a part (the include would recurse without end)."""
    from importlib import resources

    from pgwarden.fetch import query

    names = [
        p.name.removesuffix(".sql") for p in resources.files("pgwarden.queries").iterdir() if p.name.endswith(".sql")
    ]
    texts = {name: query(name) for name in names}
    assert not [name for name, text in texts.items() if "/* include " in text]
    assert all("books" in texts[name] for name in ("objects", "objects_expected", "object_names"))
