"""[[leased]] and [pgbouncer] without a server: the file's checks, the printed statements, the lease
rules over given rows, the cleanup's order of databases, and the lookup routine's judgement."""

from __future__ import annotations

import re

import pytest

from pgwarden.caps import Capabilities
from pgwarden.errors import PolicyError
from pgwarden.hazards import HazardData
from pgwarden.lease_retirement import LeaseCleanup
from pgwarden.lease_statements import fill, lease_statements
from pgwarden.policy import parse_policy, render_toml_v2
from pgwarden.pooler import auth_query
from pgwarden.rows import LeaseRow
from pgwarden.rules.leases import check_leases
from test_plan_pure import compliant

BASE = """version = 2
[owner]
name = "shop_owner"
deploy_logins = ["deployer"]
[[roles]]
name = "app_leased"
login = false
[[roles]]
name = "bouncer"
[[roles]]
name = "alice"
member_of = ["app_leased"]
[[databases]]
name = "shop"
grants = [
  { role = "app_leased", profile = "readonly", schemas = ["public"] },
  { role = "bouncer", profile = "connect" },
]
[[databases]]
name = "tenant_*"
grants = [{ role = "app_leased", profile = "readonly", schemas = ["public"] }]
"""
LEASED = '[[leased]]\npattern = "v-app-*"\ngroup = "app_leased"\nissuer = "vault"\n'
BOUNCER = '[pgbouncer]\nauth_user = "bouncer"\n'


def _error(text: str) -> str:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text, "p.toml")
    return exc.value.message


def test_a_valid_file_round_trips_through_render() -> None:
    policy = parse_policy(BASE + LEASED + BOUNCER)
    assert [(lease.pattern, lease.group, lease.issuer) for lease in policy.leased] == [
        ("v-app-*", "app_leased", "vault")
    ]
    assert policy.pgbouncer is not None and policy.pgbouncer.lookup_schema == "pgbouncer"
    again = parse_policy(render_toml_v2(policy))
    assert again.leased == policy.leased and again.pgbouncer == policy.pgbouncer


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('pattern = "v-app-*"', 'pattern = "v-app-1"'), "leased[0].pattern: 'v-app-1' is not a pattern"),
        (('pattern = "v-app-*"', 'pattern = "*"'), "matches almost any role"),
        (('pattern = "v-app-*"', 'pattern = "al*"'), "names alice, a role of [[roles]]"),
        (('pattern = "v-app-*"', 'pattern = "dep*"'), "names deployer, a deploy login"),
        (('group = "app_leased"', 'group = "alice"'), "leased[0].group: 'alice' is not a group role"),
        (('group = "app_leased"', 'group = "nobody"'), "'nobody' is not a group role"),
        (('issuer = "vault"', 'issuer = "shop_owner"'), "leased[0].issuer: issuer shop_owner is the owner"),
        (('issuer = "vault"', 'issuer = "v-app-issuer"'), "issuer v-app-issuer is named by a leased pattern"),
        (('auth_user = "bouncer"', 'auth_user = "stranger"'), "pgbouncer.auth_user: auth_user 'stranger' is not in"),
        (('auth_user = "bouncer"', 'auth_user = "shop_owner"'), "is the owner's side"),
        (('auth_user = "bouncer"', 'auth_user = "app_leased"'), "is declared with login = false"),
    ],
)
def test_the_file_refuses_what_cannot_be_meant(change: tuple[str, str], message: str) -> None:
    text = (BASE + LEASED + BOUNCER).replace(*change)
    error = _error(text)
    assert message in error, error
    assert re.match(r"p\.toml:\d+: ", error), error  # names the line


def test_version_1_refuses_the_keys() -> None:
    v1 = '[database]\nname = "d"\n[owner]\nname = "o"\n' + BOUNCER
    assert "pgbouncer: needs version = 2" in _error(v1)


@pytest.mark.parametrize("major", [14, 15, 16, 17, 18])
def test_statements_follow_the_version_and_quote_every_name(major: int) -> None:
    text = (BASE + LEASED).replace('"app_leased"', r'"App \"leased\""').replace("vault", r"va\"ult")
    policy = parse_policy(text)
    s = lease_statements(policy, policy.leased[0], Capabilities(major * 10000))
    admin = [x for x in s.issuer if "ADMIN" in x]
    assert bool(admin) == (major >= 16)
    if admin:
        assert admin == ['GRANT "App ""leased""" TO "va""ult" WITH ADMIN TRUE, INHERIT FALSE, SET FALSE;']
    assert (
        s.issuer[0].startswith('CREATE ROLE "va""ult" WITH LOGIN CREATEROLE INHERIT') and "SUPERUSER" not in s.issuer[0]
    )
    assert s.databases == ("shop",)  # a pattern names no one database: its databases are the cluster's
    assert s.issuer[-1] == 'GRANT CONNECT ON DATABASE "shop" TO "va""ult";'
    (create,) = s.creation
    assert fill(create, "v-app-1", "pw", "2030-01-01") == (
        "CREATE ROLE \"v-app-1\" WITH LOGIN INHERIT NOCREATEDB NOCREATEROLE PASSWORD 'pw' "
        'VALID UNTIL \'2030-01-01\' IN ROLE "App ""leased""";'
    )
    assert [x.split()[0] for x in s.revocation] == ["ALTER", "GRANT", "SELECT", "DROP"]
    assert ("WITH INHERIT TRUE, SET FALSE" in s.revocation[1]) == (major >= 16)
    assert s.drop == ('DROP ROLE IF EXISTS "{{name}}";',)


def _row(name: str, expired: bool = False, owns: tuple[str, ...] = (), grants: tuple[str, ...] = ()) -> LeaseRow:
    return LeaseRow(0, name, expired, list(owns), list(grants))


def test_lease_rules_name_each_login_and_count_the_expired() -> None:
    policy = parse_policy(BASE + LEASED)
    rows = [_row(f"v-app-{i}", expired=True) for i in range(1, 13)]
    rows += [_row("v-app-x", grants=("table public.t",)), _row("v-app-y", owns=("table public.u",))]
    found = list(check_leases(policy, compliant(170000), HazardData(leased=tuple(rows))))
    by_rule = {f.rule: f for f in found}
    assert sorted(f.rule for f in found) == ["lease.direct-grant", "lease.expired", "lease.owns-objects"]
    assert by_rule["lease.direct-grant"].fix == 'DROP OWNED BY "v-app-x";'
    assert by_rule["lease.owns-objects"].fix == 'REASSIGN OWNED BY "v-app-y" TO "shop_owner";\nDROP OWNED BY "v-app-y";'
    expired = by_rule["lease.expired"]
    assert expired.message.startswith("12 leased login(s) named by 'v-app-*' expired and still exist: v-app-1, ")
    assert "and 2 more" in expired.message and expired.fix == "pgwarden leases retire --pattern 'v-app-*' --yes"
    assert list(check_leases(policy, compliant(170000), HazardData())) == []


def test_the_cleanup_visits_the_admins_database_first_and_only_where_the_batch_holds_something() -> None:
    cleanup = LeaseCleanup(
        ("a", "b", "c"),
        {"shop": frozenset({"a"}), "": frozenset({"b"}), "other": frozenset({"b", "c"})},
        frozenset({"a"}),
        "postgres",
    )
    assert cleanup.databases(["a", "b"]) == [("postgres", ["b"]), ("other", ["b"]), ("shop", ["a"])]
    assert cleanup.databases(["c"]) == [("other", ["c"])]


def test_auth_query_names_the_routine() -> None:
    policy = parse_policy(BASE + BOUNCER.replace("\n", '\nlookup_schema = "Pool Er"\n', 1))
    assert auth_query(policy) == 'SELECT uname, phash FROM "Pool Er"."user_lookup"($1)'
