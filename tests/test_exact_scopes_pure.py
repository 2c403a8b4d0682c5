"""The keys that say any database exactly, as the engine reads them (Scopes): pure, no server."""

from __future__ import annotations

from typing import Any

import pytest

from pgwarden.policy import Policy
from pgwarden.policy.load import tuples
from pgwarden.policy.names import same_routine
from pgwarden.policy.v2 import PolicyFileV2
from pgwarden.scopes import Scopes


def _scopes(*grants: dict[str, Any]) -> tuple[Scopes, Policy]:
    data = {
        "version": 2,
        "owner": {"name": "o"},
        "roles": [{"name": n} for n in ("app", "bi", "etl", "mon")],
        "databases": [{"name": "d", "schemas": ["app", "staging"], "grants": list(grants)}],
    }
    policy = PolicyFileV2.model_validate(tuples(data)).resolve()[0]
    return Scopes.of(policy), policy


def test_listed_routines_and_excepted_ones_by_identity_or_types() -> None:
    s, _ = _scopes(
        {"role": "app", "profile": "readwrite", "schemas": ["app"], "except_routines": ["app.wipe(n integer)"]},
        {"role": "bi", "profile": "readonly", "routines": ["app.total(integer, text)"]},
    )
    assert s.objects("app", "routine", "app", "total(integer, text)") == {"EXECUTE"}
    assert s.objects("app", "routine", "app", "wipe(integer)") == set()  # probe's name: the types alone
    assert s.objects("app", "routine", "app", "wipe(n integer)") == set()
    assert s.objects("bi", "routine", "app", "total(integer, text)") == {"EXECUTE"}
    assert s.objects("bi", "routine", "app", "wipe(n integer)") == set()
    assert s.objects("bi", "table", "app", "orders") == set()
    assert s.schema("bi", "app") == {"USAGE"} and s.detailed("app")
    assert same_routine("app.f(a integer, b character varying)", "app.f(integer, character varying)")
    assert not same_routine("app.f(a integer)", "app.f(text)") and not same_routine("app.f()", "app.g()")


def test_columns_give_column_privileges_on_the_listed_columns_only() -> None:
    s, _ = _scopes({"role": "bi", "profile": "readonly", "columns": {"app.customers": ["id", "name"]}})
    assert s.objects("bi", "table", "app", "customers") == set()
    assert s.on_column("bi", "app", "customers", "id") == {"SELECT"}
    assert s.on_column("bi", "app", "customers", "api_key") == set()
    assert s.column_tables() == (("app", "customers"),)


def test_a_serial_sequence_excepted_by_name_and_defaults_per_kind() -> None:
    s, _ = _scopes(
        {"role": "bi", "profile": "readonly", "tables": ["app.orders"], "except_tables": ["app.orders_id_seq"]},
        {"role": "app", "profile": "readwrite", "schemas": ["app"], "defaults": ["table"]},
    )
    assert s.objects("bi", "sequence", "app", "orders_id_seq", "orders") == set()
    assert s.objects("app", "sequence", "app", "orders_id_seq", "orders") == {"USAGE", "SELECT"}
    assert s.defaults("app", "table", "app") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert s.defaults("app", "sequence", "app") == set() and s.defaults("app", "routine", "app") == set()


def test_usage_database_usage_and_connect_profiles_public_and_global_defaults() -> None:
    s, policy = _scopes(
        {"role": "app", "profile": "readwrite", "schemas": ["app"], "usage": False, "database": []},
        {"role": "app", "profile": "readonly", "schemas": ["staging"]},
        {"role": "etl", "profile": "usage", "schemas": ["staging"], "database": ["CONNECT", "TEMPORARY"]},
        {"role": "mon", "profile": "connect"},
        {"role": "PUBLIC", "profile": "readonly", "tables": ["app.countries"]},
        {"role": "bi", "profile": "append", "global_defaults": ["sequence"]},
    )
    assert s.schema("app", "app") == set() and s.schema("app", "staging") == {"USAGE"}
    assert s.database("app") == set()  # a grant of it says `database`: exactly that
    assert s.database("etl") == {"CONNECT", "TEMPORARY"} and s.objects("etl", "table", "staging") == set()
    assert s.database("mon") == {"CONNECT"} and s.schema("mon", "app") == set()
    assert s.objects("PUBLIC", "table", "app", "countries") == {"SELECT"} and "PUBLIC" not in s.holders
    assert s.database("PUBLIC") == set()  # the hardening switch's
    assert s.global_defaults("bi", "sequence") == {"USAGE"} and s.global_defaults("bi", "table") == set()
    assert policy.access[0].level is None  # a grant with usage/database is not version 1's level


@pytest.mark.parametrize(
    ("grant", "needle"),
    [
        ({"role": "bi", "profile": "readonly"}, "a grant needs schemas"),
        ({"role": "bi", "profile": "readonly", "tables": ["app.t"], "defaults": ["table"]}, "give `schemas` too"),
        ({"role": "bi", "profile": "readonly", "schemas": ["app"], "usage": ["staging"]}, "not one the grant"),
        ({"role": "PUBLIC", "profile": "readonly", "schemas": ["app"], "database": []}, "hardening"),
        ({"role": "bi", "profile": "readonly", "routines": ["app.f(integer)"], "except_routines": ["app.f()"]},
         "outside the grant's scope"),
    ],
)  # fmt: skip
def test_bad_keys_are_refused(grant: dict[str, Any], needle: str) -> None:
    with pytest.raises(Exception, match=needle):
        _scopes(grant)


def test_grant_option_is_per_grant_and_only_kept_never_granted() -> None:
    from pgwarden import acl
    from pgwarden.acl import ChangeAction, Grant

    s, _ = _scopes(
        {"role": "bi", "profile": "readonly", "tables": ["app.orders"], "grant_option": ["SELECT", "USAGE", "CONNECT"]},
        {"role": "bi", "profile": "readwrite", "tables": ["app.notes"]},
    )
    o = s.options
    assert o.objects("bi", "table", "app", "orders") == {"SELECT"}
    assert o.objects("bi", "table", "app", "notes") == set()  # the other grant says no option
    assert o.schema("bi", "app") == {"USAGE"} and o.database("bi") == {"CONNECT"}
    held = frozenset({Grant("bi", "SELECT", "o", True), Grant("bi", "INSERT", "o", True)})
    wanted = acl.Wanted({"bi": frozenset({"SELECT", "INSERT"})}, owner="o", grantable={"bi": frozenset({"SELECT"})})
    assert acl.diff(held, wanted) == [acl.Change(ChangeAction.REVOKE_GRANT_OPTION, "bi", frozenset({"INSERT"}))]
    missing = acl.diff(frozenset(), wanted)  # a missing privilege is granted without the option
    assert [(c.action, c.privs) for c in missing] == [(ChangeAction.GRANT, frozenset({"SELECT", "INSERT"}))]


def test_type_defaults_and_bad_grant_options() -> None:
    data = {
        "version": 2,
        "owner": {"name": "o"},
        "roles": [{"name": "app"}],
        "profiles": {"types": {"type": ["USAGE"]}},
        "databases": [{"name": "d", "schemas": ["app"], "grants": [
            {"role": "app", "profile": "types", "schemas": ["app"], "defaults": ["type"]},
            {"role": "app", "profile": "types", "global_defaults": ["type"]},
        ]}],
    }  # fmt: skip
    s = Scopes.of(PolicyFileV2.model_validate(tuples(data)).resolve()[0])
    assert s.defaults("app", "type", "app") == {"USAGE"} and s.global_defaults("app", "type") == {"USAGE"}
    assert s.defaults("app", "table", "app") == set() and s.objects("app", "table", "app", "t") == set()
    with pytest.raises(ValueError, match="PostgreSQL gives PUBLIC no grant option"):
        _scopes({"role": "PUBLIC", "profile": "readonly", "tables": ["app.t"], "grant_option": ["SELECT"]})
    with pytest.raises(ValueError, match="grant_option"):
        _scopes({"role": "bi", "profile": "readonly", "tables": ["app.t"], "grant_option": ["CREATE"]})
