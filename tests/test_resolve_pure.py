"""Name resolution without a server: what counts as a typo, the did-you-mean, and `expected` checked
when the file is read."""

from __future__ import annotations

import pytest

from pgwarden.errors import PolicyError
from pgwarden.policy import parse_policies
from pgwarden.resolve import closest, typo_of


@pytest.mark.parametrize(
    ("value", "candidates", "typo"),
    [
        ("reportng", ["reporting", "public"], "reporting"),  # a letter missing
        ("appx", ["app"], "app"),  # a letter extra
        ("shop_odl", ["shop_old"], "shop_old"),  # two swapped
        ("Reporting", ["reporting"], "reporting"),  # case
        ("erp_monitor", ["erp_owner"], None),  # alike, not a typo: a role that may well not exist yet
        ("audit", ["app"], None),
        ("ab", ["cd"], None),
    ],
)
def test_a_typo_is_one_or_two_edits_away(value: str, candidates: list[str], typo: str | None) -> None:
    assert typo_of(value, candidates) == typo


def test_the_hint_names_the_closest_name() -> None:
    assert closest("emial", ["id", "email", "name"]) == "email"
    assert closest("app.custmers", ["app.customers", "app.secrets"]) == "app.customers"
    assert closest("zzz", ["email"]) is None


FILE = """version = 2
[owner]
name = "o"
[[roles]]
name = "a"
[[databases]]
name = "d"
schemas = ["app"]
expected = [{expected}]
grants = [{{ role = "a", profile = "readonly", schemas = ["app"], except_columns = {{ "app.customers" = ["email"] }} }}]
"""


def test_expected_may_list_only_names_the_database_uses() -> None:
    parse_policies(FILE.format(expected='"app.customers", "app.customers.email", "app"'))
    with pytest.raises(PolicyError) as caught:
        parse_policies(FILE.format(expected='"app.customers.emial"'), "p.toml")
    assert "did you mean 'app.customers.email'" in str(caught.value) and "p.toml:9" in str(caught.value)
