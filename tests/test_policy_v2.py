"""Policy version 2 without a server: loading, errors with file:line, scopes, and plans (a version 1
policy and its upgrade plan the same; scopes and exceptions plan what they say)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpers import run_cli
from pgwarden.errors import PolicyError
from pgwarden.plan import plan
from pgwarden.policy import build_policy, load_policies, parse_policies, parse_policy, render_toml_v2, upgrade
from pgwarden.scopes import Scopes
from pgwarden.snapshot import ColumnAcl, ObjectGroup
from test_plan_pure import APP, OWNER, PUBLIC_NS, RO, _sqls, _table_group, acl, compliant

TEAM = Path(__file__).resolve().parent.parent / "docs" / "examples" / "team.toml"


def test_the_team_example_loads_and_renders_back_to_itself() -> None:
    [policy] = load_policies(TEAM)
    assert policy.version == 2 and policy.database.name == "shop"
    assert [a.name for a in policy.access] == ["shop_app", "analysts", "etl"]
    assert [(m.name, [g.role for g in m.member_of]) for m in policy.members] == [
        ("alice", ["analysts"]),
        ("bob", ["analysts"]),
    ]
    assert parse_policies(render_toml_v2(policy)) == [policy]


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (
            ('table = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"]', 'table = ["SELECT", "EXECUTE"]'),
            [":40: profiles.etl.table:", "cannot carry EXECUTE"],
        ),
        (
            ('"app.customers" = ["email"]', '"reporting.daily" = ["day"]'),
            [":52: databases[0].grants[4].except_columns:", "outside the grant's scope"],
        ),
        (
            ('schemas = ["reporting"] }', 'schemas = ["reporting"], except_tables = ["app.orders"] }'),
            [":49: databases[0].grants[1].except_tables:", "outside the grant's scope"],
        ),
        (('name = "etl"\n', 'name = "alice"\n'), [":35: roles[4]:", "declared twice"]),
        (
            ('{ role = "etl", profile = "etl"', '{ role = "alice", profile = "etl"'),
            [":53: databases[0].grants[5].role:", "never granted anything directly"],
        ),
        (('profile = "etl", schemas', 'profile = "etx", schemas'), [":53:", "unknown profile 'etx'"]),
        (
            ('profile = "etl", schemas = ["reporting"]', 'profile = "etl", schemas = ["other"]'),
            [":53: databases[0].grants[5].schemas:", "not a managed schema"],
        ),
        (('member_of = ["analysts"]\nvalid', 'member_of = ["shop_owner"]\nvalid'), [":31:", "deploy_logins"]),
        (('"2027-01-01"', '"soon"'), [":32: roles[3].valid_until:", "not a date"]),
        (('statement_timeout = "5s"', 'role = "x"'), [":16: roles[0].settings.role:", "pgwarden's own"]),
        (("connection_limit = 20", "connection_limt = 20"), [":15: roles[0].connection_limt: unknown key"]),
    ],
)
def test_bad_v2_input_is_one_error_naming_file_line_and_key(
    tmp_path: Path, edit: tuple[str, str], needles: list[str]
) -> None:
    text = TEAM.read_text()
    assert edit[0] in text
    path = tmp_path / "team.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    result = run_cli(["plan", "-c", str(path), "--dsn", "host=/nonexistent"])
    assert result.exit_code == 2, str(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"error: {path}:") and lines[1].startswith("hint: "), str(result)
    for needle in needles:
        assert needle in lines[0], str(result)


def test_v1_only_keys_and_v2_keys_do_not_mix() -> None:
    v1 = 'version = 1\n[database]\nname = "d"\n[owner]\nname = "o"\nconnection_limit = 3\n'
    with pytest.raises(PolicyError, match=r"<policy>:6: owner.connection_limit: needs version = 2"):
        parse_policy(v1)
    v2 = 'version = 2\n[owner]\nname = "o"\n[[databases]]\nname = "d"\n[[access]]\nname = "a"\nlevel = "readonly"\n'
    with pytest.raises(PolicyError, match=r"<policy>:6: access: unknown key"):
        parse_policy(v2)


# --- scopes -------------------------------------------------------------------------------------


def test_scopes_are_the_union_of_a_roles_grants_minus_their_exceptions() -> None:
    [policy] = load_policies(TEAM)
    s = Scopes.of(policy)
    assert s.holders == ("shop_app", "analysts", "etl")
    assert s.objects("shop_app", "table", "app") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert s.objects("shop_app", "table", "reporting") == {"SELECT"}
    assert s.objects("shop_app", "table", "audit") == {"INSERT"}
    assert s.objects("shop_app", "sequence", "audit") == {"USAGE"}
    assert s.objects("shop_app", "routine", "audit") == set()
    assert s.objects("etl", "table", "app") == set() and s.schema("etl", "app") == set()
    assert s.database("etl") == {"CONNECT"} and s.database("alice") == set()
    # the column exception: no table-level SELECT on customers, SELECT on every column but email
    assert s.objects("analysts", "table", "app", "customers") == set()
    assert s.objects("analysts", "table", "app", "orders") == {"SELECT"}
    assert s.on_column("analysts", "app", "customers", "name") == {"SELECT"}
    assert s.on_column("analysts", "app", "customers", "email") == set()
    assert s.detailed("app") and not s.detailed("reporting")
    assert s.column_tables() == (("app", "customers"),)


def test_another_grant_without_the_exception_gives_the_column_back() -> None:
    v1 = build_policy(database="shop", owner="own", app=["app"], schemas=["app"])
    grants = (
        {"role": "app", "profile": "readonly", "schemas": ("app",), "except_columns": {"app.t": ("secret",)}},
        {"role": "app", "profile": "append", "tables": ("app.t",)},
    )
    policy = v1.model_copy(
        update={"database": v1.database.model_validate({"name": "shop", "schemas": ("app",), "grants": grants})}
    )
    s = Scopes.of(policy)
    assert s.objects("app", "table", "app", "t") == {"INSERT"}  # the append grant has no exception
    assert s.on_column("app", "app", "t", "secret") == set()
    assert s.on_column("app", "app", "t", "id") == {"SELECT"}  # INSERT is held on the whole table


# --- plans --------------------------------------------------------------------------------------


def _drifted(version: int) -> list[ObjectGroup]:
    owner_privs = "SELECT INSERT UPDATE DELETE TRUNCATE REFERENCES TRIGGER" + (" MAINTAIN" if version >= 170000 else "")
    return [
        _table_group(2, version=version),
        _table_group(3, acl_=acl((OWNER, OWNER, owner_privs), (OWNER, APP, "SELECT")), version=version),
        _table_group(1, acl_=acl((OWNER, OWNER, owner_privs), (OWNER, RO, "SELECT DELETE", True)), version=version),
        _table_group(250, named=False, acl_=acl((OWNER, OWNER, owner_privs), (OWNER, 0, "SELECT")), version=version),
    ]


@pytest.mark.parametrize("version", [140000, 160000, 170000])
def test_a_version_1_policy_and_its_upgrade_plan_the_same(version: int) -> None:
    v1 = build_policy(database="shop", owner="own", app=["app"], readonly=["ro"], version=1)
    v2 = upgrade(v1)
    assert v1.version == 1 and v2.version == 2
    assert parse_policy(v2.to_toml()) == v2
    for snap in (compliant(version), compliant(version, _drifted(version))):
        assert _sqls(plan(v2, snap)) == _sqls(plan(v1, snap))
    assert _sqls(plan(v1, compliant(version, _drifted(version))))  # the drift is planned at all


def _scoped_policy() -> object:
    text = """version = 2
[owner]
name = "own"
[[roles]]
name = "app"
[[roles]]
name = "ro"
[[databases]]
name = "shop"
grants = [
  { role = "app", profile = "readwrite", schemas = ["public"], except_tables = ["public.t1"] },
  { role = "ro", profile = "readonly", schemas = ["public"], except_columns = { "public.t0" = ["secret"] } },
]
"""
    return parse_policy(text)


def test_exceptions_are_planned_per_table_never_in_bulk() -> None:
    policy = _scoped_policy()
    snap = compliant(160000)
    sqls = _sqls(plan(policy, snap))  # type: ignore[arg-type]
    assert 'REVOKE ALL ON TABLE "public"."t1" FROM "app" CASCADE' in sqls
    assert 'REVOKE ALL ON TABLE "public"."t0" FROM "ro" CASCADE' in sqls  # SELECT goes column by column
    assert len([s for s in sqls if '"app"' in s]) == 1, sqls  # t0 and t2 keep the app's grants
    assert not any("ALL TABLES IN SCHEMA" in s for s in sqls), sqls
    # 300 unnamed tables in a detailed schema are named, not granted `ON ALL ... IN SCHEMA`
    big = dataclasses.replace(compliant(160000), objects=(_table_group(300, named=False),))
    from pgwarden.plan import groups_to_name

    assert groups_to_name(policy, big, changing=False) == [big.objects[0]]  # type: ignore[arg-type]


def test_a_column_exception_grants_the_other_columns_and_revokes_the_excepted_one() -> None:
    policy = _scoped_policy()
    cols = [
        ColumnAcl(20000, PUBLIC_NS, "t0", "r", OWNER, c, acl((OWNER, RO, "SELECT")) if c == "secret" else frozenset())
        for c in ("id", "name", "secret")
    ]
    snap = dataclasses.replace(compliant(160000), columns=tuple(cols))
    sqls = _sqls(plan(policy, snap))  # type: ignore[arg-type]
    assert 'GRANT SELECT ("id", "name") ON TABLE "public"."t0" TO "ro"' in sqls
    assert 'REVOKE SELECT ("secret") ON TABLE "public"."t0" FROM "ro" CASCADE' in sqls


def test_a_profile_with_maintain_needs_postgresql_17() -> None:
    text = """version = 2
[owner]
name = "own"
[[roles]]
name = "app"
[profiles.upkeep]
table = ["SELECT", "MAINTAIN"]
[[databases]]
name = "shop"
grants = [{ role = "app", profile = "upkeep", schemas = ["public"] }]
"""
    policy = parse_policy(text)
    with pytest.raises(PolicyError, match="MAINTAIN on tables, which PostgreSQL 16 does not have"):
        plan(policy, compliant(160000))
    sqls = _sqls(plan(policy, compliant(170000, [_table_group(1, named=True, version=170000)])))
    assert any("MAINTAIN" in s and '"app"' in s for s in sqls), sqls


def test_several_databases_resolve_to_one_policy_each() -> None:
    text = """version = 2
[owner]
name = "own"
[[roles]]
name = "app"
[[databases]]
name = "one"
grants = [{ role = "app", profile = "readwrite", schemas = ["public"] }]
[[databases]]
name = "two"
schemas = ["s"]
grants = [{ role = "app", profile = "readonly", schemas = ["s"] }]
"""
    one, two = parse_policies(text)
    assert (one.database.name, two.database.name) == ("one", "two")
    assert one.databases == two.databases and len(one.databases) == 2
    assert Scopes.of(two).objects("app", "table", "s") == {"SELECT"}
    assert one.access[0].level == "readwrite" and two.access[0].level == "readonly"


def test_a_sequence_goes_with_the_table_it_belongs_to() -> None:
    text = """version = 2
[owner]
name = "own"
[[roles]]
name = "app"
[[databases]]
name = "shop"
schemas = ["app", "audit"]
grants = [
  { role = "app", profile = "append", tables = ["audit.events"] },
  { role = "app", profile = "readwrite", schemas = ["app"], except_tables = ["app.secrets"] },
]
"""
    s = Scopes.of(parse_policy(text))
    assert s.objects("app", "sequence", "audit", "events_id_seq", "events") == {"USAGE"}
    assert s.objects("app", "sequence", "audit", "other_id_seq", "other") == set()
    assert s.objects("app", "sequence", "app", "secrets_id_seq", "secrets") == set()
    assert s.objects("app", "sequence", "app", "orders_id_seq", "orders") == {"USAGE", "SELECT"}
    assert s.objects("app", "sequence", "app", "free_standing") == {"USAGE", "SELECT"}
