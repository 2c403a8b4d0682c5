"""SCRAM-SHA-256 verifiers computed on the client: libpq's format, matches(), and the server accepts them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo
from pgwarden import scram

# The salt of RFC 7677's example exchange; the comparison with libpq is in test_same_as_libpq.
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def test_format_and_round_trip() -> None:
    verifier = scram.make_verifier("pencil", salt=SALT)
    assert verifier.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert scram.is_verifier(verifier)
    assert scram.matches("pencil", verifier)
    assert not scram.matches("pencil2", verifier)
    assert not scram.matches("pencil", None)
    assert not scram.matches("pencil", "md5" + "0" * 32)
    assert not scram.matches("pencil", "SCRAM-SHA-256$4096:!!$x:y")
    assert scram.make_verifier("pencil") != scram.make_verifier("pencil")  # a fresh salt each time


@pytest.mark.parametrize(
    "password", ["pencil", "ünïcödé päss", "Ⅻ\u00adfull\u200bwidth", "\u0627\u0644", "a\u3000b", "\u0627a", "ﬁ\u2002x"]
)
def test_same_as_libpq(admin_conn: psycopg.Connection[Any], password: str) -> None:
    """libpq's PQencryptPasswordConn gives the same verifier for the same salt (SASLprep included)."""
    theirs = admin_conn.pgconn.encrypt_password(password.encode(), b"ignored", b"scram-sha-256").decode()
    assert scram.matches(password, theirs)
    iterations = int(theirs.split("$")[1].split(":")[0])
    salt = base64.b64decode(theirs.split("$")[1].split(":")[1])
    assert scram.make_verifier(password, salt=salt, iterations=iterations) == theirs


def test_server_accepts_our_verifier(
    admin_conn: psycopg.Connection[Any], admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    role = pg_cleanup.role(unique_name("scram"))
    password = "ünï pass 'quoted'"
    admin_conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(scram.make_verifier(password))
        )
    )
    with psycopg.connect(role_conninfo(admin_dsn, role, password, "postgres")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(role_conninfo(admin_dsn, role, password + "x", "postgres"))
    stored = admin_conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert stored is not None and scram.matches(password, stored[0])
