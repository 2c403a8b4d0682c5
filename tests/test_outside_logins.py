"""Roles outside the policy that can act as the owner or as an access role: each path is proved by
logging in as the role, then check finds it, then apply (owner) or the finding's fix (access) takes it
back and the proof fails."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo
from test_check import check_json
from test_core import Split, applied_split


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return applied_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        "CREATE TABLE public.accounts (id int PRIMARY KEY, balance int)",
    )


def _login(split: Split, admin: psycopg.Connection[Any], name: str, pg_cleanup: PgCleanup) -> str:
    """A LOGIN role outside the policy, with a password of its own."""
    pg_cleanup.role(name)
    password = "pw-" + secrets.token_hex(8)
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    split.passwords[name] = password
    return name


def _acts_as_owner(split: Split, login: str) -> bool:
    """Log in as `login`, SET ROLE to the owner and drop the owner's table (rolled back)."""
    try:
        with split.login(login) as conn, conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(split.owner)))
            conn.execute("DROP TABLE public.accounts")
            return True
    except (psycopg.errors.InsufficientPrivilege, psycopg.OperationalError):
        return False


def _findings(split: Split, rule: str) -> list[dict[str, Any]]:
    code, data = check_json(split)
    found = [f for f in data["findings"] if f["rule"] == rule]
    assert code == (1 if found else 0), json.dumps(data["findings"], indent=1)
    return found


def test_a_login_made_a_member_of_the_owner_is_found_and_revoked(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    alice = _login(split, admin_conn, unique_name("alice2"), pg_cleanup)
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(alice)))
    assert _acts_as_owner(split, alice)  # the path is real
    (found,) = _findings(split, "outside.member-of-owner")
    assert (found["role"], found["object"], found["severity"]) == (alice, f"role {split.owner}", "high")
    assert "apply revokes it" in found["message"]
    plan = split.cli("plan", "--exit-code")
    assert plan.exit_code == 1 and f"REVOKE {sql.Identifier(split.owner).as_string(None)}" in plan.stdout, str(plan)
    split.apply()
    assert not _acts_as_owner(split, alice)
    assert _findings(split, "outside.member-of-owner") == []


def test_a_chain_through_a_role_outside_the_policy_names_every_login(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    helpers = pg_cleanup.role(unique_name("helpers"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(helpers)))
    bob = _login(split, admin_conn, unique_name("bob"), pg_cleanup)
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(helpers)))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(helpers), sql.Identifier(bob)))
    assert _acts_as_owner(split, bob)
    (found,) = _findings(split, "outside.member-of-owner")
    assert found["role"] == helpers and f"{bob} -> {helpers}" in found["message"], found
    # the fix the finding prints runs, and takes the path away for everyone in the chain
    with split.admin_db() as db:
        db.execute(found["fix"])
    assert not _acts_as_owner(split, bob)
    assert _findings(split, "outside.member-of-owner") == []


def test_admin_option_alone_is_a_path_to_the_owner(
    split: Split,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    pg_version: int,
) -> None:
    if pg_version < 16:
        pytest.skip("membership options INHERIT/SET are PostgreSQL 16+ (before, every membership allows SET ROLE)")
    carol = _login(split, admin_conn, unique_name("carol"), pg_cleanup)
    admin_conn.execute(
        sql.SQL("GRANT {} TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(
            sql.Identifier(split.owner), sql.Identifier(carol)
        )
    )
    # CONNECT comes through PUBLIC's revoked grant only for members that inherit: give carol its own
    with split.admin_db() as db:
        db.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(split.database), sql.Identifier(carol))
        )
    assert not _acts_as_owner(split, carol)  # no SET: not directly ...
    with split.login(carol) as conn:  # ... but ADMIN OPTION lets it grant itself the rest
        conn.execute(sql.SQL("GRANT {} TO {} WITH SET TRUE").format(sql.Identifier(split.owner), sql.Identifier(carol)))
    assert _acts_as_owner(split, carol)
    with split.login(carol) as conn:
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(split.owner), sql.Identifier(carol)))
    assert not _acts_as_owner(split, carol)
    (found,) = _findings(split, "outside.member-of-owner")
    assert found["role"] == carol and "(member: ADMIN;" in found["message"], found
    split.apply()  # (it also takes back the CONNECT the policy does not give: act as carol from here)
    with split.admin_db() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(carol)))
        conn.execute(sql.SQL("GRANT {} TO {} WITH SET TRUE").format(sql.Identifier(split.owner), sql.Identifier(carol)))
    assert _findings(split, "outside.member-of-owner") == []


def test_a_login_made_a_member_of_an_access_role_is_reported_not_changed(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    dave = _login(split, admin_conn, unique_name("dave"), pg_cleanup)
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.app), sql.Identifier(dave)))
    with split.login(dave) as conn:
        conn.execute("INSERT INTO public.accounts VALUES (1, 100)")  # the path is real: it writes rows
    (found,) = _findings(split, "outside.member-of-access")
    assert (found["role"], found["object"], found["severity"]) == (dave, f"role {split.app}", "medium")
    split.apply()  # detect-only: apply leaves it
    assert _findings(split, "outside.member-of-access") != []
    with split.admin_db() as db:
        db.execute(found["fix"])
    with pytest.raises(psycopg.OperationalError):  # without the app's CONNECT it cannot even log in
        psycopg.connect(role_conninfo(split.admin_dsn, dave, split.passwords[dave], split.database)).close()
    assert _findings(split, "outside.member-of-access") == []
