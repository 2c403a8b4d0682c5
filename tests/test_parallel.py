"""check's reads on two connections (pgwarden.parallel): the same findings as on one, through one exported snapshot."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import pgwarden.check
from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo
from pgwarden.check import CheckResult, run_check
from pgwarden.parallel import FAILED, Pending, SecondReader, outcome, start
from pgwarden.policy import load_policy
from pgwarden.session import Session
from test_check import ident
from test_core import Split, applied_split


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return applied_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        "CREATE TABLE items (id serial PRIMARY KEY, name text)",
        "CREATE TABLE notes (id int)",
    )


def check(split: Split, parallel: bool) -> CheckResult:
    """run_check with the side reads on a second connection (parallel) or on the first."""
    with Session.open(split.admin_dsn, load_policy(split.path)) as session:
        session.parallel = parallel
        return run_check(session, split.passwords)


def as_json(result: CheckResult) -> str:
    return json.dumps(result.to_json(), sort_keys=True)


def recording(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The results the second connection handed back (FAILED when the first had to do the reads):
    the column ACLs' (given at once), the side reads' and the row security read's (given with the
    roles and schemas). The first connection takes none back (take_back), which it does with a job
    the second has not started when the first is free: the split is then the same in every run."""
    got: list[Any] = []
    original = Pending.result
    monkeypatch.setattr(SecondReader, "take_back", lambda self, pending: False)

    def result(self: Pending[Any]) -> Any:
        value = original(self)
        got.append(value)
        return value

    monkeypatch.setattr(Pending, "result", result)
    return got


def by_second(got: list[Any]) -> bool:
    """Whether the second connection did its three reads (none was left to the first)."""
    return len(got) == 3 and all(value is not FAILED for value in got)


def test_two_connections_find_exactly_what_one_finds(
    split: Split, admin_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # drift and hazards of several kinds, read by the hazard queries (which the second connection
    # runs) and by the snapshot's (which the first runs meanwhile)
    items, notes, app, owner = ident("public", "items"), ident("public", "notes"), ident(split.app), ident(split.owner)
    with split.admin_db() as db:
        db.execute(f"GRANT TRUNCATE ON {items} TO {app}")
        db.execute(f"ALTER TABLE {notes} OWNER TO {app}")
        db.execute(f"GRANT CREATE ON SCHEMA public TO {app}")
        # column privileges (the second connection reads them): one to PUBLIC alone, which leaves no
        # pg_shdepend row, and one to a role
        db.execute(f"GRANT SELECT (name) ON {items} TO PUBLIC")
        db.execute(f"GRANT UPDATE (id) ON {notes} TO {app}")
        db.execute(f"ALTER TABLE {items} ENABLE ROW LEVEL SECURITY")
        db.execute(
            f"CREATE FUNCTION public.peek() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'; "
            f"ALTER FUNCTION public.peek() OWNER TO {owner}"
        )
    admin_conn.execute(f"GRANT {owner} TO {app}")
    got = recording(monkeypatch)
    one = check(split, parallel=False)
    two = check(split, parallel=True)
    assert by_second(got)  # the second connection read the column ACLs, row security and the side reads
    assert as_json(two) == as_json(one)
    monkeypatch.undo()  # the first takes back what the second has not started (a split that varies): the same
    assert as_json(check(split, parallel=True)) == as_json(one)
    rules = {f.rule for f in one.findings}
    # both column grants are found (the snapshot's column ACLs), on either path
    revoked = {f.object for f in two.findings if f.rule == "drift.revoke"}
    assert {"SELECT (name) of table public.items", "UPDATE (id) of table public.notes"} <= revoked, revoked
    # the hazard reads found something (else equality would prove little)
    assert "access.owns-objects" in rules, rules
    assert any(r.startswith("rls.") for r in rules), rules  # row security
    assert any(f.rule.startswith("drift.") for f in one.findings), rules
    assert any(not f.rule.startswith("drift.") for f in one.findings), rules


def test_a_change_committed_between_the_two_connections_reads_is_seen_by_neither(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = check(split, parallel=False)
    assert before.findings == (), as_json(before)
    items, app = ident("public", "items"), ident(split.app)
    original = pgwarden.check._side_reads

    def side_reads_after_a_change(policy: Any, snap: Any, **options: Any) -> Any:
        # the first connection has read the roles, schemas and database; it has still to read the
        # objects, the second the hazards: another session changes both meanwhile
        with split.admin_db() as db:
            db.execute(f"ALTER TABLE {items} OWNER TO {app}")
            db.execute(f"GRANT TRUNCATE ON {items} TO {app}")
            db.execute(f"GRANT SELECT (name) ON {items} TO PUBLIC")  # a column ACL, which the second reads
        return original(policy, snap, **options)

    monkeypatch.setattr(pgwarden.check, "_side_reads", side_reads_after_a_change)
    got = recording(monkeypatch)
    during = check(split, parallel=True)
    assert by_second(got)
    # both connections read the state the first one's snapshot was taken in: no finding, not half of them
    assert during.findings == (), as_json(during)
    monkeypatch.undo()
    after = check(split, parallel=True)
    rules = {f.rule for f in after.findings}
    assert "access.owns-objects" in rules, rules  # the hazard read sees it now
    assert any(f.rule.startswith("drift.") and "items" in f.object for f in after.findings), rules
    assert as_json(after) == as_json(check(split, parallel=False))


def test_a_plain_login_exports_and_imports_the_snapshot(
    admin_conn: psycopg.Connection[Any], admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    # no superuser, no privilege but CONNECT (which a new database grants to PUBLIC)
    db, role = pg_cleanup.database(unique_name("db")), pg_cleanup.role(unique_name("plain"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'plain-pw'").format(sql.Identifier(role)))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    info = role_conninfo(admin_dsn, role, "plain-pw", db)

    def open_second() -> psycopg.Connection[Any]:
        return psycopg.connect(info, autocommit=True)

    def job(conn: psycopg.Connection[Any]) -> tuple[int, int]:
        row = conn.execute("SELECT count(*), pg_backend_pid() FROM pg_class WHERE relname = 'late'").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    with psycopg.connect(info, autocommit=True) as first, psycopg.connect(db_conninfo(admin_dsn, db)) as other:
        second = SecondReader(first, open_second)
        other.execute("CREATE TABLE late (id int)")
        other.commit()  # committed after the export, before the second connection's read
        second.submit(job)
        got = second.result()
        assert got is not FAILED
        count, pid = got  # type: ignore[misc]
        assert count == 0 and pid != first.info.backend_pid
        assert first.execute("SELECT count(*) FROM pg_class WHERE relname = 'late'").fetchone() == (0,)
        second.close()
        assert first.execute("SELECT count(*) FROM pg_class WHERE relname = 'late'").fetchone() == (1,)


def test_without_a_second_connection_the_first_does_the_reads(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as first:

        def refused() -> psycopg.Connection[Any]:
            raise psycopg.OperationalError("too many connections")

        second = SecondReader(first, refused)
        second.submit(lambda conn: 1)
        assert second.result() is FAILED  # run_check then reads on `first`
        second.close()
        failing = SecondReader(first, lambda: psycopg.connect(admin_dsn, autocommit=True))
        failing.submit(lambda conn: conn.execute("SELECT 1/0").fetchone())
        assert failing.result() is FAILED  # the first connection reads again, and fails as it would have
        failing.close()
        assert first.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_where_the_snapshot_cannot_be_exported_the_reads_stay_on_one_connection(
    admin_conn: psycopg.Connection[Any], admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    # a hardened server may revoke pg_export_snapshot from PUBLIC: the check still runs, on one connection
    db, role = pg_cleanup.database(unique_name("db")), pg_cleanup.role(unique_name("plain"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'plain-pw'").format(sql.Identifier(role)))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as owner:
        owner.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_export_snapshot() FROM PUBLIC")
    info = role_conninfo(admin_dsn, role, "plain-pw", db)
    with psycopg.connect(info, autocommit=True) as first, psycopg.connect(info, autocommit=True) as probe:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # what start() meets
            probe.execute("SELECT pg_catalog.pg_export_snapshot()")
        assert start(first, lambda: psycopg.connect(info, autocommit=True)) is None
        assert first.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # no transaction left open
        assert first.execute("SELECT 1").fetchone() == (1,)


def test_the_second_connection_runs_its_jobs_in_order_and_none_after_one_fails(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as first:
        reader = SecondReader(first, lambda: psycopg.connect(admin_dsn, autocommit=True))
        pid = reader.submit(lambda conn: conn.info.backend_pid)
        same = reader.submit(lambda conn: conn.info.backend_pid)
        failing = reader.submit(lambda conn: conn.execute("SELECT 1/0").fetchone())
        after = reader.submit(lambda conn: 1)  # its transaction is aborted: the first connection runs it
        got = pid.result()
        assert isinstance(got, int) and got != first.info.backend_pid and same.result() == got
        assert failing.result() is FAILED and after.result() is FAILED
        assert reader.submit(lambda conn: 1).result() is FAILED  # nothing more runs there
        reader.close()
        # closed: what was not started is not run (and nothing waits for it)
        closed = SecondReader(first, lambda: psycopg.connect(admin_dsn, autocommit=True))
        closed.close()
        assert closed.submit(lambda conn: 1).result() is FAILED
        assert first.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_job_the_second_connection_has_not_started_is_taken_back_by_the_first(admin_dsn: str) -> None:
    ran: list[str] = []
    opened = threading.Event()

    def slow_second() -> psycopg.Connection[Any]:
        opened.wait(5)  # still connecting while the first is free
        return psycopg.connect(admin_dsn, autocommit=True)

    def job(name: str) -> Callable[[psycopg.Connection[Any]], int]:
        def run(conn: psycopg.Connection[Any]) -> int:
            ran.append(name)
            return conn.info.backend_pid

        return run

    with psycopg.connect(admin_dsn, autocommit=True) as first:
        reader = SecondReader(first, slow_second)
        early, late = reader.submit(job("early")), reader.submit(job("late"))
        assert outcome(reader, early, first) == first.info.backend_pid  # not started: run on the first
        opened.set()
        got = outcome(reader, late, first)  # the second may have started it by now: either way one result
        assert got in (first.info.backend_pid, late.value) and isinstance(got, int)
        reader.close()
    assert sorted(ran) == ["early", "late"]  # each ran once, on one connection or the other
