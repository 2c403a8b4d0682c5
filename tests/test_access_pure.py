"""The effective-access model without a server: membership chains, schema USAGE, views with their
owner's rights, security_invoker, parents, definer routines, triggers, PUBLIC; labels and their
errors located in the file; review --since as a set difference; the review schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from helpers import run_cli
from pgwarden.access.facts import Column, Derived, Facts, Relation, Routine
from pgwarden.access.labels import labels_of, parts
from pgwarden.access.model import Model
from pgwarden.access.paths import Access, Hop
from pgwarden.access.review import Review, since
from pgwarden.policy import load_policies, parse_policies
from pgwarden.policy.render import render_toml_v2
from pgwarden.snapshot import Grant, Membership, Role

TEAM = Path(__file__).resolve().parent.parent / "docs" / "examples" / "team.toml"
OWNER, GROUP, ALICE, BOB, ADMIN, READ_ALL = 10, 11, 12, 13, 14, 15


def _role(oid: int, name: str, *, superuser: bool = False, inherit: bool = True) -> Role:
    return Role(oid, name, superuser, inherit, False, False, True, False, False, -1)


ROLES = {
    r.oid: r
    for r in (
        _role(OWNER, "owner"),
        _role(GROUP, "group"),
        _role(ALICE, "alice"),
        _role(BOB, "bob", inherit=False),
        _role(ADMIN, "admin", superuser=True),
        _role(READ_ALL, "pg_read_all_data"),
    )
}


def _acl(*grants: tuple[int, str]) -> frozenset[Grant]:
    return frozenset(Grant(OWNER, grantee, privilege, False) for grantee, privilege in grants)


def _rel(oid: int, name: str, acl: frozenset[Grant], *, kind: str = "r", invoker: bool = False) -> Relation:
    columns = (Column("id", 1, frozenset()), Column("email", 2, frozenset()))
    usage = _acl((GROUP, "USAGE"))
    return Relation(oid, "app", name, kind, OWNER, False, invoker, acl, OWNER, usage, columns)


def _model(facts: Facts, memberships: tuple[Membership, ...], options: bool = True) -> Model:
    return Model(ROLES, memberships, facts, options)


#: Roles that reach everything (the superuser, the owner, the predefined reader): left out below.
EVERYTHING = ("admin", "owner", "pg_read_all_data")


def _chains(model: Model, obj: str, column: str | None = None, privilege: str = "SELECT") -> set[str]:
    return {
        a.chain()
        for a in model.accesses()
        if a.object == obj and a.column == column and a.privilege == privilege and a.role not in EVERYTHING
    }


MEMBER = Membership(GROUP, ALICE, ADMIN, False, True, True)


def test_a_view_exposes_its_base_columns_with_its_owners_rights_unless_security_invoker() -> None:
    table = _rel(1, "customers", frozenset())
    view = _rel(2, "contacts", _acl((GROUP, "SELECT")), kind="v")
    facts = Facts({1: table, 2: view}, (Derived(2, 1, 2, "view"),), ())
    model = _model(facts, (MEMBER,))
    assert _chains(model, "app.customers", "email") == {
        "group → SELECT on app.contacts → view app.contacts → app.customers.email",
        "alice → group → SELECT on app.contacts → view app.contacts → app.customers.email",
    }
    assert _chains(model, "app.customers", "id") == set()  # the view does not read id
    invoker = Facts({1: table, 2: _rel(2, "contacts", view.acl, kind="v", invoker=True)}, facts.derived, ())
    assert _chains(_model(invoker, (MEMBER,)), "app.customers", "email") == set()


def test_a_view_whose_owner_cannot_read_the_table_exposes_nothing() -> None:
    table = Relation(1, "app", "t", "r", ADMIN, False, False, frozenset(), OWNER, _acl((GROUP, "USAGE")), ())
    view = _rel(2, "v", _acl((GROUP, "SELECT")), kind="v")
    model = _model(Facts({1: table, 2: view}, (Derived(2, 1, 0, "view"),), ()), ())
    assert _chains(model, "app.t") == set()


def test_membership_options_decide_inherit_and_set_role() -> None:
    table = _rel(1, "t", _acl((GROUP, "SELECT")))
    facts = Facts({1: table}, (), ())
    noinherit = Membership(GROUP, ALICE, ADMIN, False, False, True)
    admin_only = Membership(GROUP, ALICE, ADMIN, True, False, False)
    assert _chains(_model(facts, (MEMBER,)), "app.t") >= {"alice → group → SELECT on app.t"}
    assert "alice → group (SET ROLE) → SELECT on app.t" in _chains(_model(facts, (noinherit,)), "app.t")
    assert "alice → group (ADMIN OPTION: grants itself) → SELECT on app.t" in _chains(
        _model(facts, (admin_only,)), "app.t"
    )
    # before 16: the member's INHERIT attribute decides (bob has NOINHERIT), SET ROLE always works
    bob = Membership(GROUP, BOB, ADMIN, False, None, None)
    assert "bob → group (SET ROLE) → SELECT on app.t" in _chains(_model(facts, (bob,), options=False), "app.t")


def test_schema_usage_predefined_roles_public_and_superusers() -> None:
    table = _rel(1, "t", _acl((0, "SELECT")))
    reader = Membership(READ_ALL, BOB, ADMIN, False, True, True)
    chains = _chains(_model(Facts({1: table}, (), ()), (MEMBER, reader)), "app.t")
    # PUBLIC cannot look into app: the roles that can (group, alice by inheritance) hold it
    assert {"group → PUBLIC → SELECT on app.t", "alice → group → SELECT on app.t"} - chains == {
        "alice → group → SELECT on app.t"
    }
    assert "alice → PUBLIC → SELECT on app.t" in chains
    assert "bob → pg_read_all_data → SELECT on app.t (predefined role)" in chains
    every = {a.chain() for a in _model(Facts({1: table}, (), ()), ()).accesses() if a.object == "app.t"}
    assert "admin → superuser admin" in every and "owner → owner of app.t" in every


def test_parents_definer_routines_and_triggers() -> None:
    parent = _rel(1, "leads", _acl((GROUP, "SELECT"), (GROUP, "INSERT")), kind="p")
    child = _rel(2, "leads_vip", frozenset())
    secret = _rel(3, "secret", frozenset())
    definer = Routine(
        4,
        "app",
        "f",
        "f",
        "",
        OWNER,
        True,
        _acl((GROUP, "EXECUTE")),
        OWNER,
        _acl((GROUP, "USAGE")),
        references=((3, 2),),
        triggers=((1, 4),),
    )
    facts = Facts({1: parent, 2: child, 3: secret}, (Derived(1, 2, 0, "parent"),), (definer,))
    chains = _chains(_model(facts, ()), "app.leads_vip") | _chains(_model(facts, ()), "app.secret", "email")
    assert "group → SELECT on app.leads → parent app.leads → app.leads_vip" in chains
    assert "group → EXECUTE on app.f() → routine app.f() → app.secret.email as owner" in chains
    assert "group → INSERT on app.leads → trigger app.leads (INSERT) → app.f() → app.secret.email as owner" in chains


def test_labels_match_by_pattern_and_are_validated_where_they_are_written(tmp_path: Path) -> None:
    labels = {"pii": ("app.customers.email", "app.*.phone"), "other": ("reporting.daily.day",)}
    assert labels_of(labels, "app", "suppliers", "phone") == ("pii",)
    assert labels_of(labels, "app", "customers", "name") == ()
    assert parts("app.customers") is None
    text = TEAM.read_text().replace("\n[[databases]]", '\n[labels]\npii = ["app.customers.email"]\n\n[[databases]]')
    text = text.replace('except_columns = { "app.customers" = ["email"] }', 'except_labels = ["pii"]')
    [policy] = parse_policies(text)
    assert policy.labels == {"pii": ("app.customers.email",)}
    assert parse_policies(render_toml_v2(policy)) == [policy]
    for bad, needle in [
        (text.replace('except_labels = ["pii"]', 'except_labels = ["pci"]'), "grants[4].except_labels[0]: unknown"),
        (text.replace('pii = ["app.customers.email"]', 'pii = ["customers.email"]'), "labels.pii[0]:"),
        (text.replace('pii = ["app.customers.email"]', 'pii = ["nope.t.c"]'), "not a managed schema"),
    ]:
        path = tmp_path / "bad.toml"
        path.write_text(bad)
        result = run_cli(["plan", "-c", str(path), "--dsn", "host=/nonexistent"])
        lines = result.stderr.splitlines()
        assert result.exit_code == 2 and len(lines) == 2 and lines[0].startswith(f"error: {path}:"), str(result)
        assert needle in lines[0], lines[0]
    assert load_policies(TEAM)[0].labels == {}


def _access(role: str, *hops: Hop) -> Access:
    return Access("app.t", "table", None, role, "SELECT", hops)


def test_since_is_exactly_the_set_difference_of_paths() -> None:
    kept, gone, new = (
        _access("a", Hop("grant", "app.t", "SELECT")),
        _access("b", Hop("owner", "app.t")),
        _access("c", Hop("member", "b"), Hop("owner", "app.t")),
    )
    base = Review("shop", "17", "1", "sha256:" + "0" * 64, "2026-01-01T00:00:00Z", {}, (), (kept, gone))
    earlier = json.loads(json.dumps(base.to_json()))
    now = since(Review("shop", "17", "1", base.policy_digest, "2026-04-01T00:00:00Z", {}, (), (kept, new)), earlier)
    assert now.changes is not None
    assert (now.changes.appeared, now.changes.disappeared, now.changes.since) == ((new,), (gone,), base.generated_at)
    schema = json.loads(resources.files("pgwarden.schemas").joinpath("review.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate({"schema_version": 1, **now.to_json()})


@pytest.mark.parametrize("doc", [{"database": "other", "access": []}, {"databases": []}])
def test_since_refuses_a_review_of_another_database(doc: dict[str, object]) -> None:
    from pgwarden.errors import PgwardenError

    review = Review("shop", "17", None, "sha256:" + "0" * 64, "t", {}, (), ())
    with pytest.raises(PgwardenError, match="has no database shop"):
        since(review, doc)


def test_an_exception_another_grant_of_the_role_gives_back_is_not_judged() -> None:
    from pgwarden.access.exceptions import targets

    text = TEAM.read_text().replace(
        '{ role = "analysts", profile = "readonly", schemas = ["reporting"] },',
        '{ role = "analysts", profile = "readonly", schemas = ["reporting"], except_tables = ["reporting.daily"] },\n'
        '  { role = "analysts", profile = "readonly", tables = ["reporting.daily"] },',
    )
    [policy] = parse_policies(text)
    analysts = [g for g in policy.grants() if g.role == "analysts"]
    assert [targets(policy, g) for g in analysts] == [[], [], [("app.customers", "email")]]
