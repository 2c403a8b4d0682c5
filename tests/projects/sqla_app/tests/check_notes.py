"""The application's tests, as the app role on a throwaway database migrated by the owner (pgwarden's plugin)."""

import notes
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session


def test_the_app_writes_and_reads_as_the_app_role(pgwarden_url, pgwarden_database):
    engine = create_engine(pgwarden_url)
    with Session(engine) as session:
        notes.add(session, "hello")
        session.commit()
        assert "hello" in notes.bodies(session)
        user = session.execute(text("SELECT current_user")).scalar_one()
    assert user == pgwarden_database.policy.access[0].name
    engine.dispose()


def test_the_app_role_cannot_change_the_schema(pgwarden_conn):
    for ddl in ("ALTER TABLE note ADD COLUMN x int", "CREATE TABLE sneaky (id int)", "TRUNCATE note"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pgwarden_conn.execute(ddl)


@pytest.mark.pgwarden_role("readonly")
def test_a_readonly_role_reads_only():
    engine = notes.engine_from_env()  # DATABASE_URL points at the throwaway database as the marked role
    with Session(engine) as session:
        notes.bodies(session)
        with pytest.raises(Exception, match="permission denied"):
            notes.add(session, "nope")
    engine.dispose()


@pytest.mark.pgwarden_role("owner")
def test_the_owner_owns_the_schema(pgwarden_conn):
    owner = pgwarden_conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'note'").fetchone()[0]
    assert owner == pgwarden_conn.execute("SELECT current_user").fetchone()[0]
    with pgwarden_conn.transaction(force_rollback=True):
        pgwarden_conn.execute("ALTER TABLE note ADD COLUMN x int")
