"""Policy loading and validation (no server): every error names file:line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.errors import PolicyError
from pgwarden.policy import build_policy, load_policy, parse_policy, password_env_for, render_toml

GOOD = """\
version = 1

[database]
name = "shop"
schemas = ["public", "sales"]

[owner]
name = "shop_owner"
password_env = "PGWARDEN_PASSWORD_SHOP_OWNER"

[[access]]
name = "shop_rw"
level = "readwrite"

[[access]]
name = "bi"
level = "readonly"
login = false

[apply]
lock_timeout = "750ms"
"""


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    policy = load_policy(path)
    assert policy.database.schemas == ("public", "sales")
    assert [(a.name, a.level, a.login) for a in policy.access] == [
        ("shop_rw", "readwrite", True),
        ("bi", "readonly", False),
    ]
    assert policy.owner.createdb and not policy.owner.createrole
    assert policy.apply.lock_timeout == "750ms"
    assert policy.login_roles() == [("shop_owner", "PGWARDEN_PASSWORD_SHOP_OWNER"), ("shop_rw", None)]


@pytest.mark.parametrize(
    ("edit", "line", "needles"),
    [
        (("[owner]", "[owner]\ncolour = 'blue'"), 8, ["owner.colour", "unknown key"]),
        (('level = "readonly"', 'level = "admin"'), 17, ["access[1].level", "readwrite"]),
        (('name = "shop_rw"', 'name = "' + "é" * 32 + '"'), 12, ["access[0].name", "64 bytes", "at most 63"]),
        (('name = "shop_owner"', 'name = "pg_owner"'), 8, ["owner.name", "reserved"]),
        (('lock_timeout = "750ms"', 'lock_timeout = "soon"'), 21, ["apply.lock_timeout", "duration"]),
        (('schemas = ["public", "sales"]', 'schemas = ["public", "public"]'), 4, ["database", "twice"]),
        (('name = "bi"', 'name = "shop_owner"'), None, ["both owner and an access role"]),
        (("login = false", "login = 1"), 18, ["access[1].login", "boolean"]),
    ],
)
def test_each_error_names_file_line_and_key(
    tmp_path: Path, edit: tuple[str, str], line: int | None, needles: list[str]
) -> None:
    path = tmp_path / "p.toml"
    assert edit[0] in GOOD
    path.write_text(GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}"), message
    for needle in needles:
        assert needle in message, message
    assert "\n" not in message


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(GOOD.replace("[owner]", "[owner"))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}:7: invalid TOML: "), str(info.value)
    assert "(at line" not in str(info.value)


def test_missing_file_and_missing_keys(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found") as info:
        load_policy(tmp_path / "nope.toml")
    assert info.value.hint and "pgwarden init" in info.value.hint
    with pytest.raises(PolicyError, match="owner: required key is missing"):
        parse_policy('[database]\nname = "x"\n', "p.toml")


@pytest.mark.parametrize(
    "names",
    [
        {
            "database": 'Bäcker "DB"',
            "owner": "O'Brien owner",
            "app": ['app "x"'],
            "readonly": ["Read Only"],
            "schemas": ["Schéma Ü", "public"],
        },
        {"database": "d", "owner": "o", "app": ["a", "b"], "readonly": [], "schemas": []},
    ],
)
def test_render_toml_round_trips(names: dict[str, object]) -> None:
    policy = build_policy(**names)  # type: ignore[arg-type]
    text = render_toml(policy)
    assert parse_policy(text) == policy
    assert render_toml(parse_policy(text)) == text


def test_build_policy_errors_are_policy_errors() -> None:
    with pytest.raises(PolicyError, match="63 bytes"):
        build_policy(database="d", owner="o" * 64, app=["a"])
    with pytest.raises(PolicyError, match="both owner and an access role"):
        build_policy(database="d", owner="o", app=["o"])


@pytest.mark.parametrize(
    ("role", "env"),
    [
        ("django", "PGWARDEN_PASSWORD_DJANGO"),
        ("sqlMigrations", "PGWARDEN_PASSWORD_SQLMIGRATIONS"),
        ("app-rw 2", "PGWARDEN_PASSWORD_APP_RW_2"),
        ('O\'Brien "x"', "PGWARDEN_PASSWORD_O_BRIEN__X_"),
        ("ünï", "PGWARDEN_PASSWORD__N_"),
    ],
)
def test_password_env_for(role: str, env: str) -> None:
    assert password_env_for(role) == env
