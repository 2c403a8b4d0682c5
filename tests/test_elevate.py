"""Time-bound access on real servers: elevate, expire ending live sessions, check reporting what outlived its end."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo
from test_change_control import _ledger
from test_core import Split, make_split
from test_json_schemas import schema


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, schemas=("app",))
    s.apply()
    return s


def _person(split: Split, admin_conn: psycopg.Connection[Any], name: str) -> str:
    password = "pw-" + secrets.token_hex(8)
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    admin_conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(split.database), sql.Identifier(name))
    )
    return password


def _login(split: Split, role: str, password: str) -> psycopg.Connection[Any]:
    return psycopg.connect(role_conninfo(split.admin_dsn, role, password, split.database), autocommit=True)


def _about_membership(split: Split, person: str) -> list[dict[str, Any]]:
    result = split.cli("check", "--format", "json")
    assert result.exit_code in (0, 1), str(result)
    return [
        f
        for f in result.json()["findings"]
        if f["rule"].startswith("elevation") or ("membership" in f["message"] and person in f["message"])
    ]


def test_elevation_works_at_once_and_expire_ends_it_and_its_sessions(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    person = pg_cleanup.role(unique_name("oncall"))
    password = _person(split, admin_conn, person)
    result = split.cli("elevate", person, "--to", split.app, "--for", "3s", "--reason", "INC-1: fix orders")
    assert result.exit_code == 0, str(result)
    live = _login(split, person, password)
    live.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.app)))  # at once
    assert live.execute("SELECT current_user").fetchone() == (split.app,)
    # in force: intended (the CONNECT given by hand to the person above is drift, and reported as such)
    assert _about_membership(split, person) == []

    time.sleep(4)
    result = split.cli("check", "--format", "json")  # no sweeper ran: check says so
    assert result.exit_code == 1, str(result)
    (found,) = [f for f in result.json()["findings"] if f["rule"] == "elevation.expired"]
    assert person in found["message"] and split.app in found["message"] and "INC-1" in found["message"]

    result = split.cli("expire", "--format", "json")
    assert result.exit_code == 0, str(result)
    jsonschema.Draft202012Validator(schema("expire")).validate(result.json())
    (ended,) = result.json()["ended"]
    assert (ended["kind"], ended["role"], ended["group"], ended["sessions_ended"]) == (
        "elevation",
        person,
        split.app,
        1,
    )
    with pytest.raises(psycopg.OperationalError):
        live.execute("SELECT 1")  # the session that still used it is gone
    with _login(split, person, password) as again:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            again.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.app)))
    assert _about_membership(split, person) == []  # expired and ended: nothing left to report
    actions = [a for _, a, _, _ in _ledger(split)]
    assert actions[-2:] == ["elevate", "expire"]


@pytest.mark.minversion(16)
def test_elevation_is_set_without_inherit(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    with split.admin_db() as conn:
        conn.execute("CREATE TABLE app.t (id int)")
    split.apply()
    person = pg_cleanup.role(unique_name("oncall"))
    password = _person(split, admin_conn, person)
    assert split.cli("elevate", person, "--to", split.app, "--for", "1h", "--reason", "r").exit_code == 0
    with _login(split, person, password) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM app.t")  # not inherited: only after SET ROLE
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.app)))
        conn.execute("SELECT * FROM app.t")
    split.cli("expire")  # not yet: nothing ends
    admin_conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(split.app), sql.Identifier(person)))


def test_temporary_policy_entry_is_planned_applied_and_expired(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    import datetime as dt

    person = pg_cleanup.role(unique_name("oncall"))
    password = "pw-" + secrets.token_hex(8)
    admin_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(person), sql.Literal(password))
    )
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)).isoformat(timespec="seconds")
    with split.path.open("a") as f:  # reviewed like any change: it is in the file
        f.write(f'\n[[temporary]]\nrole = "{person}"\ngroup = "{split.app}"\nuntil = {until}\nreason = "INC-9"\n')
    plan = split.plan_json()
    (grant,) = [s for s in plan["steps"] if s["action"] == "grant-membership" and s["object"] == f"role {person}"]
    assert "INC-9" in grant["reason"]
    split.apply()
    split.assert_clean()  # in force: wanted
    # in the postgres database (the split revokes CONNECT on its own from roles it does not know)
    live = psycopg.connect(role_conninfo(split.admin_dsn, person, password, "postgres"), autocommit=True)
    live.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.app)))
    row = admin_conn.execute(
        "SELECT to_jsonb(m) FROM pg_auth_members m WHERE m.roleid = to_regrole(%s) AND m.member = to_regrole(%s)",
        (split.app, person),
    ).fetchone()
    assert row is not None
    if "set_option" in row[0]:  # 16+: SET without INHERIT unless the entry says otherwise
        assert (row[0]["set_option"], row[0]["inherit_option"]) == (True, False)

    time.sleep(7)
    plan = split.plan_json()  # ended: drift
    assert any(s["action"] == "revoke-membership" and s["object"] == f"role {person}" for s in plan["steps"]), plan
    result = split.cli("expire")
    assert result.exit_code == 0 and "1 session(s) ended" in result.stdout, str(result)
    with pytest.raises(psycopg.OperationalError):
        live.execute("SELECT 1")
    with psycopg.connect(role_conninfo(split.admin_dsn, person, password, "postgres"), autocommit=True) as again:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            again.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.app)))
    split.assert_clean()


def test_ansible_expire_module_ends_an_expired_elevation(
    split: Split,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    tmp_path: Path,
) -> None:
    from test_ansible import _run_module

    person = pg_cleanup.role(unique_name("oncall"))
    _person(split, admin_conn, person)
    assert split.cli("elevate", person, "--to", split.app, "--for", "1h", "--reason", "INC-7").exit_code == 0
    args = {"policy": str(split.path), "dsn": split.admin_dsn}
    early = _run_module("expire", args, tmp_path)
    assert early["changed"] is False and early["results"][0]["ended"] == [], early
    with split.admin_db() as conn:  # the hour is over (a module run takes seconds here: no sleeping through it)
        conn.execute("UPDATE pgwarden_ledger.grants SET until = now() - interval '1 second' WHERE role = %s", (person,))
    checked = _run_module("expire", {**args, "_ansible_check_mode": True}, tmp_path)
    assert checked["changed"] is False
    done = _run_module("expire", args, tmp_path)
    assert done["changed"] is True, done
    (ended,) = done["results"][0]["ended"]
    assert (ended["role"], ended["group"]) == (person, split.app)
    held = admin_conn.execute(
        "SELECT 1 FROM pg_auth_members WHERE roleid = to_regrole(%s) AND member = to_regrole(%s)", (split.app, person)
    ).fetchone()
    assert held is None


def test_a_login_made_for_the_occasion_is_refused_by_the_server_after_its_end(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    login = pg_cleanup.role(unique_name("inc"))
    password = "pw-" + secrets.token_hex(8)
    result = split.cli(
        "elevate", login, "--to", split.app, "--for", "3s", "--reason", "INC-5",
        "--create-login", "--password-env", "INC_PASSWORD", env={"INC_PASSWORD": password},
    )  # fmt: skip
    assert result.exit_code == 0, str(result)
    row = admin_conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (login,)).fetchone()
    assert row and row[0].startswith("SCRAM-SHA-256$")  # never the password in clear
    info = role_conninfo(split.admin_dsn, login, password, "postgres")
    with psycopg.connect(info, autocommit=True) as conn:  # at once
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.app)))
    time.sleep(4)  # nothing runs: the server refuses it by itself (VALID UNTIL)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(info, connect_timeout=5).close()
    assert [f["rule"] for f in _about_membership(split, login)] == ["elevation.expired"]
    assert split.cli("expire").exit_code == 0
    state = admin_conn.execute(
        "SELECT r.rolcanlogin, EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) "
        "FROM pg_roles r WHERE r.rolname = %s",
        (login,),
    ).fetchone()
    assert state == (False, False)
    taken = split.cli("elevate", login, "--to", split.app, "--for", "1h", "--reason", "x", "--create-login",
                      "--password-env", "INC_PASSWORD", env={"INC_PASSWORD": password})  # fmt: skip
    assert taken.exit_code == 2 and "exists" in taken.stderr, str(taken)


def test_every_apply_expires_what_is_due_first(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    person = pg_cleanup.role(unique_name("oncall"))
    _person(split, admin_conn, person)
    assert split.cli("elevate", person, "--to", split.app, "--for", "2s", "--reason", "INC-8").exit_code == 0
    time.sleep(3)
    result = split.apply()
    assert f"expired: {person} in {split.app}" in result.stderr, str(result)
    held = admin_conn.execute(
        "SELECT 1 FROM pg_auth_members WHERE roleid = to_regrole(%s) AND member = to_regrole(%s)", (split.app, person)
    ).fetchone()
    assert held is None
    assert "expire" in [a for _, a, _, _ in _ledger(split)]
