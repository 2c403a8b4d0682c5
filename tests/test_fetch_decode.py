"""Typed catalog rows on a real server: the JSON columns a reader used to index by key arrive as frozen
rows (the outside hazards' schemas and user mappings), and init reads roles through the snapshot's rows."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo
from pgwarden.fetch import fetch
from pgwarden.generate.catalog import read
from pgwarden.rows import OutsideHazardRow, SchemaCreateRow, UserMappingRow


def test_outside_schemas_and_user_mappings_arrive_as_typed_rows(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    role = pg_cleanup.role(unique_name("mapped"))
    db = pg_cleanup.database(unique_name("db"))
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA open_door")
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA open_door TO {}").format(sql.Identifier(role)))
        conn.execute("CREATE FOREIGN DATA WRAPPER w_typed")  # no handler: no extension needed
        conn.execute("CREATE SERVER s_typed FOREIGN DATA WRAPPER w_typed")
        conn.execute(
            sql.SQL("CREATE USER MAPPING FOR {} SERVER s_typed OPTIONS (user 'remote_bob')").format(
                sql.Identifier(role)
            )
        )
        oid = conn.execute("SELECT %s::regrole::oid::int8", (role,)).fetchone()[0]  # type: ignore[index]
        row = fetch(conn, "hazard_outside", OutsideHazardRow, {"roles": [oid], "access": [oid]})[0]
    door = next(s for s in row.schemas if s.name == "open_door")
    assert isinstance(door, SchemaCreateRow)
    assert oid in door.grantees and oid in door.creators  # the role can create there, by its own grant
    assert row.mappings == (UserMappingRow(role=oid, server="s_typed", remote_user="remote_bob"),)


def test_init_reads_valid_until_in_the_session_time_zone(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """A role expiring at midnight where the session is gets a date; one expiring mid-day gets its UTC
    instant; the same as the session sees it in another time zone (init reads through the snapshot's
    roles query, whose local time and epoch it converts)."""
    at_midnight = pg_cleanup.role(unique_name("midnight"))
    mid_day = pg_cleanup.role(unique_name("midday"))
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} VALID UNTIL '2031-01-01 00:00:00+05'").format(sql.Identifier(at_midnight))
        )
        admin.execute(sql.SQL("CREATE ROLE {} VALID UNTIL '2030-06-01 12:30:00+00'").format(sql.Identifier(mid_day)))
        admin.execute("SET TimeZone = 'Asia/Karachi'")  # UTC+5, no summer time
        karachi = read(admin, ["public"]).roles
        admin.execute("SET TimeZone = 'UTC'")
        utc = read(admin, ["public"]).roles
    assert karachi[at_midnight].valid_until == "2031-01-01"
    assert utc[at_midnight].valid_until == "2030-12-31T19:00:00+00:00"
    assert karachi[mid_day].valid_until == utc[mid_day].valid_until == "2030-06-01T12:30:00+00:00"
    assert not any(name.startswith("pg_") for name in utc)  # predefined roles are not a policy's
