"""init --from-database without a server: fitting privileges to profiles, exceptions, merging, --suggest."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from pgwarden.generate import Live, generate, to_policy
from pgwarden.generate.catalog import LiveDefault, LiveMembership, LiveObject, LiveRole, LiveSchema
from pgwarden.generate.fit import ProfileBook, fit_role, majority
from pgwarden.generate.suggest import privilege_diff, smaller
from pgwarden.scopes import Scopes

RW = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
RO = frozenset({"SELECT"})
SEQ_RW = frozenset({"USAGE", "SELECT"})


def table(schema: str, name: str, **acl: frozenset[str]) -> LiveObject:
    return LiveObject(schema, "table", name, "owner", acl={"owner": RW, **acl})


def no_defaults(schema: str, kind: str) -> frozenset[str]:
    return frozenset()


def test_one_profile_on_every_object_is_one_grant_per_profile_merged_over_schemas() -> None:
    # issue 20: without default privileges the grant sets none (`defaults = []`), where it used to
    # add default privileges for every kind
    objects = [table("app", "a", app=RW), table("app", "b", app=RW), table("sales", "c", app=RW)]
    objects.append(LiveObject("app", "sequence", "a_id_seq", "owner", acl={"app": SEQ_RW}, table="a"))
    fit = fit_role("app", ["app", "sales"], objects, no_defaults, ProfileBook(), routines=False)
    assert [d.spec() for d in fit.grants] == [
        {"role": "app", "profile": "readwrite", "schemas": ["app", "sales"], "defaults": []}
    ]
    assert fit.notes == []


def test_a_table_holding_nothing_is_excepted_and_one_holding_more_gets_its_own_grant() -> None:
    objects = [table("app", n, bi=RO) for n in ("a", "b", "c")]
    objects += [table("app", "secret"), table("app", "log", bi=RO | {"INSERT"})]

    def defaults(schema: str, kind: str) -> frozenset[str]:
        return RO

    book = ProfileBook()
    fit = fit_role("bi", ["app"], objects, defaults, book, routines=False)
    specs = [d.spec() for d in fit.grants]
    assert specs == [
        {"role": "bi", "profile": "readonly", "schemas": ["app"], "except_tables": ["app.log", "app.secret"]},
        {"role": "bi", "profile": "readonly_insert", "tables": ["app.log"]},
    ]
    assert book.custom["readonly_insert"]["table"] == {"SELECT", "INSERT"} and not fit.notes


def test_column_grants_become_the_profile_minus_columns_or_grants_on_listed_columns() -> None:
    customers = LiveObject(
        "app",
        "table",
        "customers",
        "owner",
        acl={"owner": RW},
        columns=(("id", {"analysts": RO}), ("name", {"analysts": RO}), ("email", {})),
    )
    fit = fit_role("analysts", ["app"], [customers, table("app", "orders", analysts=RO)], no_defaults, ProfileBook(),
                   routines=False)  # fmt: skip
    assert [d.spec() for d in fit.grants] == [
        {"role": "analysts", "profile": "readonly", "schemas": ["app"],
         "except_columns": {"app.customers": ["email"]}, "defaults": []},
    ]  # fmt: skip
    # issue 20: SELECT (id, name) where the schema's grant would give nothing is said as `columns`
    others = [table("app", n) for n in ("a", "b")]
    fit = fit_role("bi", ["app"], [customers, *others], no_defaults, ProfileBook(), routines=False)
    assert [d.spec() for d in fit.grants] == []
    fit = fit_role("analysts", ["app"], [customers, *others], no_defaults, ProfileBook(), routines=False)
    assert [d.spec() for d in fit.grants] == [
        {"role": "analysts", "profile": "readonly", "columns": {"app.customers": ["id", "name"]}}
    ]
    uneven = LiveObject("app", "table", "t", "owner", columns=(("a", {"x": RO}), ("b", {"x": frozenset({"UPDATE"})})))
    specs = [d.spec() for d in fit_role("x", ["app"], [uneven], no_defaults, ProfileBook(), routines=False).grants]
    assert [s["columns"] for s in specs] == [{"app.t": ["a"]}, {"app.t": ["b"]}]


def test_majority_prefers_the_larger_set_on_a_tie() -> None:
    assert majority([RO, RW, RW, RO]) == RW
    assert majority([RO, RO, RW]) == RO


def test_a_custom_profile_is_made_once_and_named_after_what_it_adds() -> None:
    book = ProfileBook()
    etl = RW | {"TRUNCATE"}
    assert book.name_for({"table": etl}, "etl") == "readwrite_truncate"
    assert book.name_for({"table": etl, "sequence": SEQ_RW}, "other") == "readwrite_truncate"
    assert book.notes["readwrite_truncate"] == [
        "readwrite plus TRUNCATE on tables: no built-in profile fits what etl holds"
    ]
    assert book.name_for({"table": RO, "sequence": RO}, "x") == "readonly"
    assert book.name_for({"table": frozenset({"INSERT"})}, "x") == "append"


def _live(**extra: object) -> Live:
    roles = {n: LiveRole(n, login=n not in ("owner", "readers")) for n in ("owner", "app", "etl", "readers", "alice")}
    objects = (
        table("app", "a", app=RW, readers=RO),
        table("app", "b", app=RW, readers=RO),
        table("rep", "daily", etl=RW | {"TRUNCATE"}, readers=RO),
    )
    usage = {"owner": frozenset({"USAGE", "CREATE"}), "app": frozenset({"USAGE"}), "readers": frozenset({"USAGE"})}
    schemas = (
        LiveSchema("app", "owner", usage, 2),
        LiveSchema("rep", "owner", usage | {"etl": frozenset({"USAGE"})}, 1),
    )
    defaults = (
        LiveDefault("owner", "app", "r", {"app": RW, "readers": RO}),
        LiveDefault("owner", "rep", "r", {"etl": RW | {"TRUNCATE"}, "readers": RO}),
    )
    base: dict[str, object] = {
        "database": "shop",
        "version": 17,
        "db_owner": "owner",
        "db_acl": {"owner": frozenset({"CONNECT", "CREATE", "TEMPORARY"}), None: frozenset({"CONNECT"})},
        "roles": roles,
        "memberships": (LiveMembership("readers", "alice", True, True),),
        "schemas": schemas,
        "objects": objects,
        "defaults": defaults,
    }
    return Live(**{**base, **extra})  # type: ignore[arg-type]


def test_groups_people_and_hardening_come_from_the_catalog() -> None:
    gen = generate(_live())
    policy = to_policy(gen)
    assert [(m.name, [x.role for x in m.member_of]) for m in policy.members] == [("alice", ["readers"])]
    assert {a.name for a in policy.access} == {"app", "etl", "readers"}
    assert not policy.hardening.revoke_public_connect and not policy.hardening.revoke_public_execute
    assert any("PUBLIC holds CONNECT" in line for line in gen.comments["hardening"])
    # issue 20: app holds no CONNECT of its own: said (`database = []`), where plan used to grant it
    assert [g.database for g in policy.grants() if g.role == "app"][0] == ()
    assert gen.header == []
    assert gen.hazards == []


def test_the_owner_is_who_owns_most_and_a_tie_is_an_error() -> None:
    live = _live(objects=(table("app", "a", app=RW), LiveObject("app", "table", "b", "app", acl={"app": RW})))
    with pytest.raises(Exception, match="owner is ambiguous"):
        generate(live)
    gen = generate(live, "owner")
    assert (
        "table app.b is owned by access role app, not owner: plan moves it to owner and grants on it what the "
        "policy says" in gen.hazards
    )
    # what app holds on b is the owner's implicit right, moving with it: b is no exception
    app = [g for g in to_policy(gen).grants() if g.role == "app"]
    # issue 20: app's USAGE on schema rep, where it holds nothing else, is said (profile usage)
    assert [(g.profile, g.schemas, g.except_tables) for g in app] == [
        ("readwrite", ("app",), ()),
        ("usage", ("rep",), ()),
    ]


def test_suggest_drops_custom_profiles_and_exceptions_and_lists_the_difference() -> None:
    live = _live()
    gen = generate(live)
    exact = to_policy(gen)
    assert "readwrite_truncate" in exact.profiles
    small = smaller(gen)
    suggested = to_policy(small)
    assert suggested.profiles == {} and {g.profile for g in suggested.grants()} == {"readwrite", "readonly", "usage"}
    assert privilege_diff(exact, suggested, live.objects, routines=False) == ["- etl TRUNCATE on table rep.daily"]
    assert Scopes.of(suggested).objects("readers", "table", "rep", "daily") == RO


def test_from_database_refuses_init_arguments_and_an_existing_file(tmp_path: Path) -> None:
    result = run_cli(["init", "--from-database", "shop", "--app", "x", "-o", str(tmp_path / "p.toml")])
    assert result.exit_code == 2 and "--from-database reads the roles" in result.stderr, str(result)
    existing = tmp_path / "e.toml"
    existing.write_text("keep")
    result = run_cli(["init", "--from-database", "shop", "--dsn", "host=/nonexistent", "-o", str(existing)])
    assert result.exit_code == 2 and "already exists" in result.stderr and existing.read_text() == "keep"
    result = run_cli(["init", "--database", "d", "--owner", "o", "--app", "a", "--suggest", "-o", "-"])
    assert result.exit_code == 2 and "--suggest works with --from-database" in result.stderr


def test_what_cannot_be_said_exactly_is_in_the_header() -> None:
    acl = {"owner": frozenset({"CONNECT", "CREATE", "TEMPORARY"}), "alice": frozenset({"CONNECT"})}
    handed = LiveObject("app", "table", "c", "owner", acl={"app": RW}, grantors=frozenset({("app", "etl")}))
    live = _live(db_acl=acl, objects=(*_live().objects, handed))
    gen = generate(live)
    assert (
        "alice, a member of a group, holds privileges itself: plan revokes them (its rights come from its groups)"
        in (gen.header)
    )
    assert "privileges of app were granted by etl, not the owner owner: plan grants them again as owner" in gen.header
    assert generate(live).header == gen.header  # the same database, the same words
