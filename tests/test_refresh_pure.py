"""The `refresh` key without a server: what the file may say, how it renders, what the scopes make of it."""

from __future__ import annotations

from typing import Any

import pytest

from pgwarden.errors import PolicyError
from pgwarden.policy import parse_policy, upgrade
from pgwarden.refresh import ARGS, Refresh, create_sql, declared, routine_name, source
from pgwarden.scopes import Scopes

BASE = """
version = 2
[owner]
name = "shop_owner"
[[roles]]
name = "shop_app"
[[roles]]
name = "bi"
[[roles]]
name = "alice"
member_of = ["bi"]
[[databases]]
name = "shop"
schemas = ["app", "reporting"]
{extra}
grants = [
  {{ role = "shop_app", profile = "readwrite", schemas = ["app", "reporting"] }},
  {{ role = "bi", profile = "readonly", schemas = ["app"] }},
]
"""


def _policy(extra: str) -> Any:
    return parse_policy(BASE.format(extra=extra), "pgwarden.toml")


def _refused(extra: str) -> str:
    with pytest.raises(PolicyError) as info:
        _policy(extra)
    return str(info.value)


def test_declared_refreshes_group_by_role_and_schema_and_render_back() -> None:
    policy = _policy(
        'refresh = [{ role = "shop_app", views = ["app.daily", "reporting.totals"] },'
        ' { role = "shop_app", views = ["app.weekly"] }, { role = "bi", views = ["app.daily"] }]'
    )
    assert declared(policy) == (
        Refresh("shop_app", "app", ("daily", "weekly")),
        Refresh("shop_app", "reporting", ("totals",)),
        Refresh("bi", "app", ("daily",)),
    )
    again = parse_policy(policy.to_toml(), "again.toml")
    assert again.database.refresh == policy.database.refresh  # the file pgwarden writes keeps them


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('refresh = [{ role = "alice", views = ["app.daily"] }]', "not an access role"),
        ('refresh = [{ role = "nobody", views = ["app.daily"] }]', "not an access role"),
        ('refresh = [{ role = "shop_app", views = ["audit.daily"] }]', "not in a managed schema"),
        ('refresh = [{ role = "shop_app", views = [] }]', "at least one materialized view"),
        ('refresh = [{ role = "shop_app", views = ["app.d", "app.d"] }]', "same view twice"),
        ('refresh = [{ role = "shop_app", views = ["daily"] }]', "schema.table"),
    ],
)
def test_a_refresh_the_file_cannot_mean_is_refused(extra: str, message: str) -> None:
    assert message in _refused(extra)


def test_a_role_too_long_for_its_routine_name_is_refused() -> None:
    role = "r" * 47  # 17 + 47 = 64 bytes: PostgreSQL would truncate the routine's name
    text = BASE.format(extra=f'refresh = [{{ role = "{role}", views = ["app.daily"] }}]').replace("shop_app", role)
    with pytest.raises(PolicyError, match="over 63 bytes"):
        parse_policy(text, "pgwarden.toml")
    ok = "r" * 46
    parse_policy(
        BASE.format(extra=f'refresh = [{{ role = "{ok}", views = ["app.daily"] }}]').replace("shop_app", ok), "p"
    )


def test_scopes_give_maintain_on_the_listed_view_and_the_routine_to_its_role_only() -> None:
    policy = _policy('refresh = [{ role = "shop_app", views = ["app.daily"] }]')
    scopes = Scopes.of(policy)
    assert "MAINTAIN" in scopes.objects("shop_app", "table", "app", "daily")
    assert "MAINTAIN" not in scopes.objects("shop_app", "table", "app", "weekly")
    assert "MAINTAIN" not in scopes.objects("bi", "table", "app", "daily")
    routine = f"{routine_name('shop_app')}({ARGS})"
    assert scopes.objects("shop_app", "routine", "app", routine) == {"EXECUTE"}
    # bi's readonly profile gives EXECUTE on app's routines, PUBLIC nothing: not on this one
    assert scopes.objects("bi", "routine", "app", routine) == frozenset()
    assert scopes.objects("PUBLIC", "routine", "app", routine) == frozenset()
    assert scopes.objects("bi", "routine", "app", "other()") == {"EXECUTE"}
    # a routine of that name in a schema without listed views is an ordinary routine
    assert scopes.objects("shop_app", "routine", "reporting", routine) == {"EXECUTE"}
    assert scopes.detailed("app") and not scopes.detailed("reporting")


def test_the_routine_checks_names_as_literals() -> None:
    odd = Refresh("shop_app", "app", ("it's", 'we"ird'))
    body = source(odd)
    assert "('app', 'it''s')" in body and "('app', 'we\"ird')" in body
    assert "format('REFRESH MATERIALIZED VIEW %I.%I'" in body  # the name is quoted by the server
    statement = create_sql(odd).as_string(None)
    assert "SECURITY DEFINER SET search_path = pg_catalog, pg_temp" in statement


def test_a_version_1_file_keeps_its_refresh_through_upgrade() -> None:
    text = """
version = 1
[database]
name = "shop"
schemas = ["app"]
refresh = [{ role = "shop_app", views = ["app.daily"] }]
[owner]
name = "shop_owner"
[[access]]
name = "shop_app"
level = "readwrite"
"""
    v1 = parse_policy(text, "v1.toml")
    assert parse_policy(v1.to_toml(), "again.toml").database.refresh == v1.database.refresh
    v2 = parse_policy(upgrade(v1).to_toml(), "v2.toml")
    assert v2.version == 2 and v2.database.refresh == v1.database.refresh
