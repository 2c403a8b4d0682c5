"""The ledger on real servers: an entry exactly when a change committed; a failed apply's own entry tells the truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from conftest import PgCleanup
from helpers import write_policy
from test_change_control import _ledger, _seeded
from test_cli_manners import LAUNCH
from test_core import Split, make_split
from test_json_schemas import schema


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, schemas=("app",))


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def test_failed_apply_records_what_was_kept_and_never_a_commit(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    _seeded(split)  # app.orders owned by the admin: the database part must ALTER its owner
    before = _ledger(split)
    newcomer = pg_cleanup.role(unique_name("ro2"))
    write_policy(
        split.path,
        database=split.database,
        owner=split.owner,
        app=[split.app],
        readonly=[split.readonly, newcomer],
        schemas=["app"],
    )
    with split.admin_db() as locker, locker.transaction():
        locker.execute("LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE")  # live traffic holds it
        result = split.cli("apply", "--yes", "--lock-timeout", "300ms")
    assert result.exit_code == 2, str(result)
    assert "lock_timeout" in result.stderr and "stays" in result.stderr
    assert _role_exists(admin_conn, newcomer)  # the roles phase committed: it is kept
    entries = _ledger(split)
    assert len(entries) == len(before) + 1
    _, action, outcome, steps = entries[-1]
    assert (action, outcome) == ("apply", "partial")
    assert steps and all(s["phase"] == "roles" for s in steps)
    assert any(s["object"] == f"role {newcomer}" for s in steps)
    with split.admin_db() as conn:
        (detail,) = conn.execute("SELECT detail FROM pgwarden_ledger.entries ORDER BY id DESC LIMIT 1").fetchone()
    assert detail["database_part"] == "rolled back" and "lock_timeout" in detail["error"]


def test_failed_apply_that_kept_nothing_records_nothing(split: Split) -> None:
    _seeded(split)
    before = _ledger(split)
    with split.admin_db() as locker, locker.transaction():
        locker.execute("LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE")
        result = split.cli("apply", "--yes", "--lock-timeout", "300ms")
    assert result.exit_code == 2 and "nothing was changed" in result.stderr, str(result)
    assert _ledger(split) == before


def test_log_shows_who_what_and_when(split: Split) -> None:
    _seeded(split)
    split.apply()
    result = split.cli("log", "--format", "json")
    assert result.exit_code == 0, str(result)
    data = result.json()
    jsonschema.Draft202012Validator(schema("log")).validate(data)
    newest = data["entries"][0]
    assert newest["action"] == "apply" and newest["outcome"] == "committed"
    assert newest["database"] == split.database and newest["session_user"]
    assert newest["policy_digest"].startswith("sha256:") and newest["steps"]
    assert any(s["object"] == "table app.orders" for s in newest["steps"])
    text = split.cli("log", "--steps")
    assert text.exit_code == 0 and f"{split.database}: apply committed by" in text.stdout, str(text)
    assert "ALTER TABLE" in text.stdout


def test_adopt_records_each_batch_and_leaves_the_ledger_to_the_admin(split: Split) -> None:
    split.apply()  # the ledger exists now, the admin's
    with split.admin_db() as conn:  # tables created by the wrong role: adopt moves them
        conn.execute("CREATE TABLE app.a (id int)")
        conn.execute("CREATE TABLE app.b (id int)")
    result = split.cli("adopt", "--from", "postgres", "--yes")
    assert result.exit_code == 0, str(result)
    with split.admin_db() as conn:
        owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'pgwarden_ledger'")
        assert owner.fetchone() == ("postgres",)  # not handed to the owner: it could rewrite it
        (detail,) = conn.execute(
            "SELECT detail FROM pgwarden_ledger.entries WHERE action = 'adopt' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert detail["to"] == split.owner and {"table app.a", "table app.b"} <= set(detail["objects"])


def test_ctrl_c_during_apply_records_what_was_kept(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    _seeded(split)
    before = _ledger(split)
    newcomer = pg_cleanup.role(unique_name("ro3"))
    write_policy(
        split.path,
        database=split.database,
        owner=split.owner,
        app=[split.app],
        readonly=[split.readonly, newcomer],
        schemas=["app"],
    )
    with split.admin_db() as locker, locker.transaction():
        locker.execute("LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE")
        args = ["apply", "--yes", "--lock-timeout", "60s", "-c", str(split.path), "--dsn", split.admin_dsn]
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args],  # Ctrl-C handled even where the test worker ignores SIGINT
            env={**os.environ, **{k: v for k, v in split.env.items() if v}},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        waiting = None
        while time.monotonic() < deadline and waiting is None:  # the database part waits for the lock
            waiting = admin_conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                "AND application_name LIKE 'pgwarden%%'",
                (split.database,),
            ).fetchone()
            time.sleep(0.2)
        assert waiting is not None, proc.communicate(timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "stays" in err, err
    assert _role_exists(admin_conn, newcomer)  # the roles phase had committed
    entries = _ledger(split)
    assert len(entries) == len(before) + 1, entries
    _, action, outcome, steps = entries[-1]
    assert (action, outcome) == ("apply", "partial")
    assert any(s["object"] == f"role {newcomer}" for s in steps) and all(s["phase"] == "roles" for s in steps)


def test_a_compliant_apply_logs_in_to_its_database_once_and_records_nothing(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from pgwarden import session as session_module
    from pgwarden.apply import apply
    from pgwarden.cli import load_all
    from pgwarden.commands.apply import ledger_hooks
    from pgwarden.session import Session

    split.apply()
    before = _ledger(split)
    assert before  # the ledger exists: its state is read by every plan (time-bound access)
    for name, value in split.env.items():
        monkeypatch.setenv(name, str(value))
    loaded = load_all(str(split.path), None)
    opened: list[str | None] = []  # the databases of the (real) connections the session opens
    real = session_module.connect

    def counted(conninfo: str, **kwargs: Any) -> psycopg.Connection[Any]:
        opened.append(conninfo_to_dict(conninfo).get("dbname"))
        return real(conninfo, **kwargs)

    monkeypatch.setattr(session_module, "connect", counted)
    with Session.open(split.admin_dsn, loaded[0]) as session:
        result = apply(session, loaded[0].secrets(), hooks=ledger_hooks(session, loaded))
    # nothing to change: the first read and the ledger's state on one login, no lock, no entry
    assert result.executed == [] and result.plan.empty, result.plan.steps
    assert opened.count(split.database) == 1, opened
    assert _ledger(split) == before
