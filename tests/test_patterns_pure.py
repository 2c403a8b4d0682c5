"""Glob database names without a server: the syntax, matching, expansion, overlaps, settings keyed by a pattern."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import run_cli
from pgwarden.errors import ConnectError
from pgwarden.multi import select_in_file
from pgwarden.policy import parse_policies
from pgwarden.policy.patterns import Overlap, check_pattern, concrete, expand, is_pattern, matches, unmatched

FILE = """\
version = 2

[owner]
name = "own"
login = false

[[roles]]
name = "app"
password_env = "PGWARDEN_PASSWORD_APP"
{settings}
{tables}"""


def _file(*names: str) -> str:
    tables = "".join(
        f'\n[[databases]]\nname = "{n}"\ngrants = [{{ role = "app", profile = "readwrite", schemas = ["public"] }}]\n'
        for n in names
    )
    # work_mem for "tenant_*" and for shop, where the file lists them
    given = {"tenant_*": "7MB", "shop": "8MB"}
    settings = ", ".join(f'"{k}" = {{ work_mem = "{v}" }}' for k, v in given.items() if k in names)
    return FILE.format(tables=tables, settings=f"database_settings = {{ {settings} }}" if settings else "")


def test_which_names_are_patterns() -> None:
    assert all(is_pattern(n) for n in ("tenant_*", "db?", "t[12]", "[*]"))
    assert not any(is_pattern(n) for n in ("tenant_1", "shop-eu", "Straße", "a]b"))


@pytest.mark.parametrize("good", ["tenant_*", "t[12]", "t[!0]*", "t[]]", "t[!]]x", "a[*]b", "[[]x", "*"])
def test_well_formed_patterns(good: str) -> None:
    assert check_pattern(good) == good


@pytest.mark.parametrize("bad", ["tenant_[", "t[12", "t[!]", "t[]", "x" * 62 + "*?"])
def test_malformed_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        check_pattern(bad)


def test_matching_is_case_sensitive_and_never_a_template() -> None:
    assert matches("tenant_1", "tenant_*") and not matches("Tenant_1", "tenant_*")
    assert not matches("template1", "templ*") and not matches("template0", "*")
    assert matches("a*b", "a[*]b") and not matches("axb", "a[*]b")  # a literal * written in brackets
    assert matches("t3", "t[!12]") and not matches("t1", "t[!12]")


@given(st.text(alphabet="ab*?[]!", min_size=1, max_size=6), st.text(alphabet="ab*?[]!", max_size=6))
def test_matches_is_fnmatchcase_but_for_templates(pattern: str, name: str) -> None:
    assert matches(name, pattern) == fnmatch.fnmatchcase(name, pattern)


def test_expand_covers_existing_names_and_keeps_plain_ones() -> None:
    policies = parse_policies(_file("shop", "tenant_*", "audit_?"))
    entries = expand(policies, ["tenant_2", "tenant_1", "audit_1", "audit_10", "template1", "other"])
    assert [(e.name, e.covers) for e in entries] == [
        ("shop", ("shop",)),  # a plain name whether or not it exists (apply creates it)
        ("tenant_*", ("tenant_1", "tenant_2")),
        ("audit_?", ("audit_1",)),
    ]
    assert unmatched(expand(policies, ["shop"])) == ["tenant_*", "audit_?"]


def test_a_database_covered_twice_names_both_entries() -> None:
    with pytest.raises(Overlap, match=r"'tenant_1' is covered by two \[\[databases\]\] entries: 'tenant_\*' and 't\*'"):
        expand(parse_policies(_file("tenant_*", "t*")), ["tenant_1"])
    with pytest.raises(Overlap, match="'tenant_1' and 'tenant_\\*'"):
        expand(parse_policies(_file("tenant_1", "tenant_*")), ["tenant_1"])
    # disjoint patterns over the same cluster are fine
    assert [e.covers for e in expand(parse_policies(_file("tenant_[12]", "tenant_[!12]")), ["tenant_1", "tenant_3"])]


def test_concrete_policy_has_the_database_name_and_the_patterns_settings() -> None:
    entry = expand(parse_policies(_file("shop", "tenant_*")), ["tenant_7"])[1]
    policy = concrete(entry, "tenant_7")
    assert policy.database.name == "tenant_7"
    assert policy.access[0].database_settings == {"shop": {"work_mem": "8MB"}, "tenant_7": {"work_mem": "7MB"}}
    assert entry.policy.database.name == "tenant_*"  # the file's policy is left as it was


def test_select_in_file_without_patterns_never_connects() -> None:
    # dsn None and a port nobody listens on would fail: a file of plain names is not resolved against a cluster
    assert list(select_in_file(parse_policies(_file("shop", "audit")), "host=127.0.0.1 port=1", ("a*",))) == ["audit"]


def test_select_in_file_with_a_pattern_reads_the_cluster() -> None:
    with pytest.raises(ConnectError) as exc:
        select_in_file(parse_policies(_file("tenant_*")), "host=127.0.0.1 port=1 connect_timeout=1", ())
    assert exc.value.exit_code == 2 and "cannot open the admin connection" in exc.value.message


def test_a_malformed_pattern_in_the_file_is_located(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file("shop", "tenant_["))
    result = run_cli(["policy", "validate", str(cfg)])
    assert result.exit_code == 2, result
    assert "databases[1].name" in result.stderr and "not closed with ']'" in result.stderr, result.stderr


def test_database_settings_may_name_a_pattern_entry_only_as_written(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file("shop", "tenant_*").replace('"tenant_*" = ', '"tenant_1" = '))
    result = run_cli(["policy", "validate", str(cfg)])
    assert result.exit_code == 2 and "'tenant_1' is not one of the file's [[databases]]" in result.stderr, result


def test_init_writes_a_pattern_entry(tmp_path: Path) -> None:
    out = tmp_path / "p.toml"
    result = run_cli(["init", "--database", "tenant_*", "--owner", "own", "--app", "app", "-o", str(out)])
    assert result.exit_code == 0, result
    assert "is a pattern" in result.stderr
    (policy,) = parse_policies(out.read_text())
    assert policy.version == 2 and policy.database.name == "tenant_*"
    validated = run_cli(["policy", "validate", str(out)])
    assert validated.exit_code == 0 and validated.stdout.startswith(
        "tenant_* (a pattern: every matching database of the cluster): schemas public"
    ), validated
    bad = run_cli(["init", "--database", "tenant_[", "--owner", "own", "--app", "app", "-o", str(out), "--force"])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 2 and "hint:" in bad.stderr, bad


V1 = """\
version = 1

# every tenant's database
[database]
name = "tenant_template"
schemas = ["public", "sales"]

[owner]
name = "tenant_owner"

[[access]]
name = "tenant_app"
level = "readwrite"
password_env = "PGWARDEN_PASSWORD_TENANT_APP"
"""


def test_policy_upgrade_databases_writes_a_glob_entry(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(V1)
    result = run_cli(["policy", "upgrade", str(cfg), "--databases", "tenant_*", "-o", "-"])
    assert result.exit_code == 0, result
    (v1,) = parse_policies(V1)
    (v2,) = parse_policies(result.stdout)
    assert v2.version == 2 and v2.database.name == "tenant_*"
    assert v2.database.schemas == v1.database.schemas and v2.database.grants == v1.grants()
    assert "# every tenant's database" in result.stdout  # the comment above [database] is carried over
    for bad, why in (("tenant_1", "is not a pattern"), ("tenant_[", "not closed")):
        refused = run_cli(["policy", "upgrade", str(cfg), "--databases", bad, "-o", "-"])
        assert refused.exit_code == 2 and why in refused.stderr and refused.stdout == "", refused
    assert cfg.read_text() == V1
