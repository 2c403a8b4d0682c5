"""Bad input never crashes: random policy files and random argv end in exit 2 and one `error:` line."""

from __future__ import annotations

import contextlib
import json
import os
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import CliResult, run_cli
from pgwarden.errors import PolicyError
from pgwarden.policy import Policy, parse_policy

# Pure tests: no server. A DSN nobody listens on, so a policy that happens to be valid fails fast
# with a connection error (still exit 2, still one line) instead of reaching a real database.
DEAD_DSN = "host=127.0.0.1 port=1 user=nobody dbname=postgres connect_timeout=2"
ENV = {"PGWARDEN_DSN": DEAD_DSN, "PGHOST": "127.0.0.1", "PGPORT": "1", "PGPASSWORD": None}
EXAMPLES = int(os.environ.get("PGWARDEN_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextlib.contextmanager
def _in_tmpdir() -> Iterator[Path]:
    """Each example in its own empty directory: `init` may write files, no pgwarden.toml is found by accident."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="pgwarden-fuzz-") as d:
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)


def assert_clean_failure(result: CliResult, allow_ok: bool = False) -> None:
    """Exit 2 with one line starting `error:` (click's usage errors say `Error:`), no traceback."""
    assert "Traceback" not in result.stderr + result.stdout, str(result)
    assert "internal error" not in result.stderr, str(result)
    if allow_ok and result.exit_code == 0:
        return
    assert result.exit_code == 2, str(result)
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, str(result)
    assert len(errors[0]) > len("error: "), str(result)


# --- policy files -----------------------------------------------------------------------------------------

_KEYS = [
    "version",
    "database",
    "owner",
    "access",
    "hardening",
    "ignore",
    "apply",
    "name",
    "schemas",
    "level",
    "login",
    "password_env",
    "createdb",
    "createrole",
    "deploy_logins",
    "roles",
    "lock_timeout",
    "revoke_public_connect",
    "revoke_public_execute",
    "bogus",
    "Name",
    "é",
]
_scalars = st.one_of(
    st.text(max_size=80),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["readwrite", "readonly", "owner", "public", "pg_monitor", "5s", "-1s", "x" * 64, "é" * 32]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5),
    ),
    max_leaves=12,
)


def _toml_key(key: str) -> str:
    return key if key and all(c in string.ascii_letters + string.digits + "_-" for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer (inline tables) so that structured garbage reaches the validator, not the parser."""
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()) + "\n"


_structured = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=7)


def _near_valid() -> st.SearchStrategy[dict[str, Any]]:
    """Policies close to valid: one thing wrong (duplicates, owner also access, wrong types, unknown keys)."""
    role = st.sampled_from(["app", "owner", "ro", "App", "a b", "x" * 64, "public", "", "pg_x", 7, None, True])
    level = st.sampled_from(["readwrite", "readonly", "admin", 1, None])
    access = st.fixed_dictionaries(
        {"name": role, "level": level}, optional={"login": st.sampled_from([True, "yes"]), "extra": st.integers()}
    )
    return st.fixed_dictionaries(
        {
            "database": st.fixed_dictionaries(
                {"name": st.sampled_from(["db", "template1", "", "d" * 64, 3])},
                optional={"schemas": st.sampled_from([[], ["public", "public"], ["pg_x"], "public", [1]])},
            ),
            "owner": st.fixed_dictionaries({"name": role}, optional={"createdb": st.sampled_from([1, "true", True])}),
            "access": st.lists(access, max_size=3),
        },
        optional={
            "apply": st.fixed_dictionaries({"lock_timeout": st.sampled_from(["5", "5 s", "five", 5, "5min", "1h"])}),
            "version": st.sampled_from([1, 2, "1"]),
            "ignore": st.fixed_dictionaries({"roles": st.lists(role, max_size=2)}),
            "unknown": st.integers(),
        },
    )


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def _parse(text: str) -> Policy | None:
    """parse_policy either returns a Policy or raises PolicyError with one line; nothing else."""
    try:
        return parse_policy(text, "fuzz.toml")
    except PolicyError as exc:
        assert exc.message and "\n" not in exc.message, repr(exc.message)
        assert "Traceback" not in exc.message
        return None


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_as_policy_never_crashes(text: str) -> None:
    _parse(text)
    with _in_tmpdir() as d:
        (d / "p.toml").write_text(text, encoding="utf-8")
        assert_clean_failure(run_cli(["plan", "-c", "p.toml"], env=ENV))


def _near_valid_v2() -> st.SearchStrategy[dict[str, Any]]:
    """Version 2 files close to valid: scopes, exceptions, members and profiles with one thing wrong."""
    name = st.sampled_from(["app", "owner", "grp", "alice", "x" * 64, "pg_x", "", 3, None])
    schema_list = st.sampled_from([["public"], ["other"], [], "public", ["public", "public"], None])
    table_list = st.sampled_from([["public.t"], ["other.t"], ["t"], [""], None, [1]])
    grant = st.fixed_dictionaries(
        {"role": name, "profile": st.sampled_from(["readwrite", "append", "mine", "nope", 1, None])},
        optional={
            "schemas": schema_list,
            "tables": table_list,
            "except_tables": table_list,
            "except_columns": st.sampled_from([{"public.t": ["c"]}, {"other.t": ["c"]}, {"public.t": []}, [], None]),
        },
    )
    role = st.fixed_dictionaries(
        {"name": name},
        optional={
            "member_of": st.sampled_from([["grp"], ["owner"], [{"role": "grp", "set": False}], "grp", [1], None]),
            "login": st.sampled_from([True, False, "no"]),
            "connection_limit": st.sampled_from([5, -2, "5", None]),
            "valid_until": st.sampled_from(["2027-01-01", "soon", "infinity", 3, None]),
            "settings": st.sampled_from([{"statement_timeout": "5s"}, {"role": "x"}, {"a b": 1}, [], None]),
        },
    )
    return st.fixed_dictionaries(
        {
            "version": st.just(2),
            "owner": st.fixed_dictionaries({"name": name}),
            "roles": st.lists(role, max_size=3),
            "databases": st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["db", "template0", 1]), "grants": st.lists(grant, max_size=2)}
                ),
                max_size=2,
            ),
        },
        optional={
            "profiles": st.sampled_from(
                [{"mine": {"table": ["SELECT"]}}, {"mine": {"table": ["EXECUTE"]}}, {"readwrite": {}}]
            ),
            "retired": st.sampled_from([["old"], ["owner"], [{"name": "old", "objects": "burn"}], "old"]),
        },
    )


@FUZZ
@given(data=st.one_of(_structured, _near_valid().map(_drop_none), _near_valid_v2().map(_drop_none)))
def test_structured_garbage_policy_never_crashes(data: dict[str, Any]) -> None:
    text = to_toml(data)
    policy = _parse(text)
    with _in_tmpdir() as d:
        (d / "p.toml").write_text(text, encoding="utf-8")
        result = run_cli(["plan", "-c", "p.toml"], env=ENV)
    assert_clean_failure(result)
    if policy is None:
        assert "fuzz.toml" not in result.stderr and "p.toml" in result.stderr, str(result)
    else:  # valid by chance: it got as far as connecting, and said so
        assert "cannot open" in result.stderr, str(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[database]\nname="d"\n[owner]\nname="o"\n[[access]]\nname="a"\nlevel="readwrite"\n'
            '[[access]]\nname="a"\nlevel="readonly"\n',
            "both access role and an access role",
        ),
        (
            '[database]\nname="d"\n[owner]\nname="o"\n[[access]]\nname="o"\nlevel="readwrite"\n',
            "both owner and an access role",
        ),
        ('[database]\nname="d"\nbogus=1\n[owner]\nname="o"\n', "unknown key"),
        ('[database]\nname=1\n[owner]\nname="o"\n', "database.name"),
        ('[database]\nname="' + "d" * 64 + '"\n[owner]\nname="o"\n', "at most 63 bytes"),
        ('[database]\nname="d"\n[owner]\nname="' + "é" * 32 + '"\n', "64 bytes long"),
        ("[database\n", "invalid TOML"),
    ],
)
def test_known_bad_policies_say_what_is_wrong(text: str, expected: str) -> None:
    with _in_tmpdir() as d:
        (d / "p.toml").write_text(text, encoding="utf-8")
        result = run_cli(["plan", "-c", "p.toml"], env=ENV)
    assert_clean_failure(result)
    assert expected in result.stderr, str(result)
    assert "p.toml:" in result.stderr, str(result)  # file (and line) named


# --- command lines ------------------------------------------------------------------------------------------

_COMMANDS = ["init", "plan", "apply", "check", "probe", "adopt", "report", "run", "nope"]
_ARGS = [
    "--database",
    "--owner",
    "--app",
    "--readonly",
    "--schema",
    "-o",
    "--output",
    "--force",
    "-c",
    "--config",
    "--dsn",
    "--format",
    "json",
    "sql",
    "text",
    "yaml",
    "--yes",
    "-y",
    "--exit-code",
    "--lock-timeout",
    "5s",
    "five",
    "--skip-unprivileged",
    "-q",
    "-v",
    "--debug-not",
    "--",
    "-",
    "x" * 64,
    "a'b",
    'a"b',
    "é",
    "",
    "--as",
    "missing.toml",
    "/nonexistent/dir/p.toml",
    "--no-color",
    "--color",
    "-Z",
]
_argv = st.lists(st.one_of(st.sampled_from(_ARGS), st.text(max_size=12)), max_size=8)


@FUZZ
@given(command=st.sampled_from(_COMMANDS), args=_argv, global_flags=st.lists(st.sampled_from(["-q", "-v"]), max_size=2))
def test_random_argv_never_crashes(command: str, args: list[str], global_flags: list[str]) -> None:
    # --debug deliberately shows tracebacks; --help/--version exit 0; init may succeed in the temp dir
    args = [a for a in args if a not in ("--debug", "-h", "--help", "-V", "--version")]
    with _in_tmpdir():
        result = run_cli([*global_flags, command, *args], env=ENV)
    assert_clean_failure(result, allow_ok=command == "init" or "--help" in args)


@pytest.mark.parametrize("command", ["init", "plan", "apply", "check", "probe", "adopt", "report", "run"])
def test_help_exits_zero(command: str) -> None:
    result = run_cli([command, "--help"], env=ENV)
    if result.exit_code == 2 and "No such command" in result.stderr:
        pytest.skip(f"`pgwarden {command}` does not exist yet")
    assert result.exit_code == 0, str(result)
    assert "Traceback" not in result.stderr


def test_long_names_refused_by_init_before_anything() -> None:
    with _in_tmpdir() as d:
        result = run_cli(["init", "--database", "d" * 64, "--owner", "o", "--app", "a"], env=ENV)
        assert_clean_failure(result)
        assert "63 bytes" in result.stderr and not (d / "pgwarden.toml").exists(), str(result)
