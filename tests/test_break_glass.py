"""Break-glass on real servers: login inside the window, refused by the server after it with nothing running."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo
from test_change_control import _ledger
from test_core import Split, make_split


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, schemas=("app",))
    s.apply()
    return s


def _connect(split: Split, role: str, password: str) -> psycopg.Connection[Any]:
    return psycopg.connect(role_conninfo(split.admin_dsn, role, password, split.database), connect_timeout=5)


def _declared(split: Split, admin_conn: psycopg.Connection[Any], dba: str) -> str:
    admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(dba)))
    with split.path.open("a") as f:
        f.write(f'\n[break_glass]\nroles = ["{dba}"]\n')
    return dba


def test_login_inside_the_window_refused_after_it_without_any_sweeper(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    dba = _declared(split, admin_conn, pg_cleanup.role(unique_name("dba")))
    admin_conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(split.database), sql.Identifier(dba))
    )
    password = "pw-" + secrets.token_hex(8)
    with pytest.raises(psycopg.OperationalError):
        _connect(split, dba, password).close()  # NOLOGIN (and no password yet)

    env = {"BG_PASSWORD": password}
    result = split.cli(
        "break-glass", "open", dba, "--for", "3s", "--reason", "INC-2", "--password-env", "BG_PASSWORD", env=env
    )
    assert result.exit_code == 0, str(result)
    verifier = admin_conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (dba,)).fetchone()
    assert verifier and verifier[0].startswith("SCRAM-SHA-256$")  # never the password in clear
    _connect(split, dba, password).close()  # inside the window

    time.sleep(4)  # no pgwarden process runs now
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(split, dba, password).close()  # VALID UNTIL: the server refuses by itself
    # nothing changed the role meanwhile: same LOGIN, same verifier; only the clock moved past VALID UNTIL
    row = admin_conn.execute("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s", (dba,)).fetchone()
    assert row == (True, verifier[0])
    result = split.cli("check", "--format", "json")
    assert any(f["rule"] == "break-glass.expired" for f in result.json()["findings"]), str(result)

    assert split.cli("expire").exit_code == 0
    row = admin_conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (dba,)).fetchone()
    assert row == (False,)
    assert [a for _, a, _, _ in _ledger(split)][-2:] == ["break-glass-open", "expire"]


def test_close_locks_again_and_records(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    dba = _declared(split, admin_conn, pg_cleanup.role(unique_name("dba")))
    assert split.cli("break-glass", "open", dba, "--for", "1h", "--reason", "INC-3").exit_code == 0
    assert admin_conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (dba,)).fetchone() == (True,)
    result = split.cli("break-glass", "close", dba)
    assert result.exit_code == 0 and "NOLOGIN again" in result.stdout, str(result)
    assert admin_conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (dba,)).fetchone() == (False,)
    assert [a for _, a, _, _ in _ledger(split)][-2:] == ["break-glass-open", "break-glass-close"]
    result = split.cli("break-glass", "open", split.app, "--for", "1h", "--reason", "x")
    assert result.exit_code == 2 and "not a break-glass role of the policy" in result.stderr, str(result)
    admin_conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(dba)))  # by hand, outside a window
    result = split.cli("check", "--format", "json")
    assert any(f["object"] == f"role {dba}" and "NOLOGIN" in (f["fix"] or "") for f in result.json()["findings"])
    split.apply()
    assert admin_conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (dba,)).fetchone() == (False,)
