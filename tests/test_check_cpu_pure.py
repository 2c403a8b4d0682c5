"""check's client CPU (issue 25): the policy file read once, machine-readable output without rich, apply's
retirement module only for a policy that retires a role. Each shortcut gives what the long way gives."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pgwarden.cli import load_all, load_targets
from pgwarden.commands.check import _LATER, _database_named, _later, _read
from pgwarden.errors import PolicyError
from pgwarden.policy import parse_policy

GOOD = """
version = 2
owner = {name = "app_owner"}
roles = [{name = "app_rw"}, {name = "app_ro"}]
[[databases]]
name = "app"
schemas = ["public", "sales"]
grants = [
  {role = "app_rw", profile = "readwrite", schemas = ["public", "sales"]},
  {role = "app_ro", profile = "readonly", schemas = ["sales"]},
]
"""

V1 = """
[database]
name = "shop"
schemas = ["public"]
[owner]
name = "shop_owner"
[[access]]
name = "shop_rw"
level = "readwrite"
"""

#: Files that parse as TOML but that the model refuses, one problem each (and a few with several)
BAD = [
    GOOD.replace('profile = "readonly"', 'profile = "readonyl"'),
    GOOD.replace('schemas = ["sales"]', 'schemas = ["nowhere"]'),
    GOOD.replace('owner = {name = "app_owner"}', 'owner = {name = "app_owner", colour = "red"}'),
    GOOD.replace('roles = [{name = "app_rw"}, {name = "app_ro"}]', 'roles = [{name = "app_rw"}]'),
    GOOD.replace("version = 2", "version = 3"),
    GOOD.replace('name = "app"', "name = 7"),
    GOOD + '\n[[databases]]\nname = "app"\nschemas = ["public"]\n',
    GOOD.replace('{name = "app_ro"}', '{name = "app_ro", member_of = ["app_owner"]}'),
    V1.replace('level = "readwrite"', 'level = "admin"'),
    V1 + "\n[[roles]]\nname = 'x'\n",
    V1.replace('level = "readwrite"', ""),
    V1.replace('name = "shop_owner"', 'name = "shop_rw"'),
]

#: Files that the early read cannot parse: the loading reads them again and reports them
UNREADABLE = ["version = 2\nowner = {name = ", "version = 2\nversion = 2\n", "[database\n"]


def _error(call: object) -> str:
    with pytest.raises(PolicyError) as info:
        call()  # type: ignore[operator]
    return f"{info.value}\nhint: {info.value.hint}"


@pytest.mark.parametrize("text", BAD)
def test_a_bad_file_read_early_gives_the_error_of_a_file_read_by_the_loader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pgwarden.toml"
    path.write_text(text, encoding="utf-8")
    read = _read(str(path))
    assert read is not None  # valid TOML: handed on, not read again
    expected = _error(lambda: load_all(str(path)))
    assert expected.startswith(f"{path}:")  # the file and line are named, as always
    assert _error(lambda: load_all(str(path), None, read)) == expected
    assert _error(lambda: load_targets(str(path), None, None, (), read)) == expected


@pytest.mark.parametrize("text", UNREADABLE)
def test_a_file_the_early_read_cannot_parse_is_reported_by_the_loader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pgwarden.toml"
    path.write_text(text, encoding="utf-8")
    assert _read(str(path)) is None
    assert "invalid TOML" in _error(lambda: load_all(str(path)))
    assert _database_named(None, ()) is None


def test_a_missing_file_is_left_to_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert _read(str(path)) is None
    assert _error(lambda: load_targets(str(path), None, None, (), None)).startswith(f"policy file {path} not found")


@pytest.mark.parametrize("text", [GOOD, V1])
def test_a_good_file_read_early_gives_the_same_policies(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pgwarden.toml"
    path.write_text(text, encoding="utf-8")
    read = _read(str(path))
    assert read is not None and read[0] == text
    assert load_all(str(path), "additive", read) == load_all(str(path), "additive")
    assert load_targets(str(path), None, None, (), read) == load_targets(str(path), None, None, ())
    assert _database_named(read, ()) == ("app" if text == GOOD else "shop")
    assert _database_named(read, ("other",)) == "other"
    policies = load_all(str(path))
    path.unlink()  # what was read early is what is validated: the file is not read again
    assert load_all(str(path), None, read) == policies


def test_the_retirement_module_is_imported_only_for_a_policy_that_retires_a_role() -> None:
    plain = parse_policy(GOOD)
    retiring = parse_policy('retired = ["old_app"]\n' + GOOD)
    assert "pgwarden.retirement" in _LATER and _later(retiring) == _LATER
    assert _later(plain) == tuple(m for m in _LATER if m != "pgwarden.retirement")


#: Renders a check result in one format in a fresh interpreter; prints whether rich was imported
RENDER = textwrap.dedent(
    """
    import io, sys
    from pgwarden.check import CheckResult
    from pgwarden.findings import Finding
    from pgwarden.plan.model import Plan
    from pgwarden.render.check import render_check
    from pgwarden.ui import UI

    finding = Finding("drift.grant", "high", "table public.t", "app_rw", "app_rw lacks SELECT", "GRANT ...")
    result = CheckResult("app", "16.4", (finding,), Plan("app", ()))
    out, sys.stdout = sys.stdout, io.StringIO()
    render_check(UI(color=False), result, sys.argv[1], "low")
    text, sys.stdout = sys.stdout.getvalue(), out
    print(any(m == "rich" or m.startswith("rich.") for m in sys.modules))
    print(text)
    """
)


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "text"])
def test_only_text_output_imports_rich(fmt: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", RENDER, fmt], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    imported, _, rendered = out.partition("\n")
    assert imported == ("True" if fmt == "text" else "False"), out
    assert "table public.t" in rendered and "app_rw lacks SELECT" in rendered


def test_what_check_imports_builds_none_of_the_other_commands_classes() -> None:
    """Every module check imports (commands/check.py's _LATER, with the retirement left out as for a policy
    that retires no role) leaves out the access model (only for a policy with exceptions), the rows only
    other commands read (command_rows.py), the retirement and rich: each class they declare is compiled at
    import (dataclasses, pydantic), and check would pay it for nothing."""
    later = [m for m in _LATER if m != "pgwarden.retirement"]
    modules = ["pgwarden.session", "pgwarden.check", "pgwarden.snapshot", "pgwarden.parallel", *later]
    never = ("pgwarden.access", "pgwarden.command_rows", "pgwarden.retirement", "pgwarden.plan.retire", "rich")
    never += ("pgwarden.scram",)  # a password to set or compare: not in a check without secrets
    code = f"import importlib, json, sys; [importlib.import_module(m) for m in {modules!r}]; "
    # the hazards' read of the exceptions' facts, for a policy without exceptions: nothing to read, nothing imported
    code += "from pgwarden.hazards import _exception_facts; from pgwarden.policy import parse_policy; "
    code += f"assert _exception_facts(None, parse_policy({GOOD!r})) is None; "
    code += "print(json.dumps(list(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    loaded = json.loads(out.stdout)
    assert "pgwarden.render.check" in loaded and "pgwarden.rules.exceptions" in loaded  # what it does import
    assert not [m for m in loaded if any(m == n or m.startswith(n + ".") for n in never)]
