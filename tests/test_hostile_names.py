"""Hostile names end to end (init, apply, plan, check, probe); names over 63 bytes are refused."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from conftest import PgCleanup, make_unique_name
from helpers import CliResult, db_conninfo, role_conninfo, run_cli
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer

EXAMPLES = int(os.environ.get("PGWARDEN_HOSTILE_EXAMPLES", "10"))

# Pieces that break naive quoting: quotes, backslash, statement separators, dollar quoting, comment
# openers, psycopg placeholders, keywords, capitals, non-ASCII letters, whitespace.
PIECES = [
    "'",
    '"',
    "\\",
    ";",
    "$$",
    "$x$",
    " ",
    "  ",
    "A",
    "Z",
    "é",
    "ß",
    "日本",
    "Ω",
    "--",
    "/*",
    "*/",
    "%s",
    "%(x)s",
    "{}",
    "{0}",
    "select",
    "DROP TABLE x;",
    "\t",
    "\n",
    "null",
    "user",
    ")",
    "(",
    ",",
    ".",
    "=",
    "&",
    "PUBLIC",
]

_core = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)


def compose(tag: str, core: str, fill63: bool) -> str:
    """tag + core, cut to at most 63 bytes (at a character boundary), padded to exactly 63 when asked."""
    name = tag + core
    while len(name.encode()) > 63:
        name = name[:-1]
    if fill63:
        name += "x" * (63 - len(name.encode()))
    return name


@st.composite
def hostile_names(draw: st.DrawFn) -> dict[str, str]:
    """Cluster-unique hostile names for a database, owner, app, readonly role, schema and table."""
    out = {}
    for what in ("db", "owner", "app", "ro", "schema", "table"):
        tag = make_unique_name()  # t<worker>_<n>: roles are cluster-wide
        core = draw(_core)
        if what == "db":  # `*`, `?` and `[` in a [[databases]] name make it a pattern (docs/policy.md): not here
            core = core.replace("*", "+").replace("?", "!").replace("[", "<")
        out[what] = compose(tag + "_", core, draw(st.booleans()))
    return out


def _cli(args: list[str], env: dict[str, str | None] | None = None) -> CliResult:
    result = run_cli(args, env=env)
    assert "Traceback" not in result.stderr, str(result)
    return result


def _acl_state(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT c.relname, c.relowner::regrole::text, c.relacl::text, n.nspowner::regrole::text, n.nspacl::text
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s ORDER BY c.relname""",
        (schema,),
    ).fetchall()


@pytest.fixture
def canary(pg_server: LocalServer) -> Iterator[dict[str, Any]]:
    """A role owning a table (with a grant) in its own database: pgwarden must never touch it."""
    cleanup = PgCleanup(lambda: pg_server)
    role = cleanup.role(make_unique_name("canary"))
    db = cleanup.database(make_unique_name("canarydb"))
    admin = pg_server.conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role)))
    with psycopg.connect(db_conninfo(admin, db), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA canary AUTHORIZATION {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE TABLE canary.t (id int)"))
        conn.execute(sql.SQL("ALTER TABLE canary.t OWNER TO {}").format(sql.Identifier(role)))
        conn.execute("GRANT SELECT ON canary.t TO PUBLIC")
        before = _acl_state(conn, "canary")
    yield {"role": role, "db": db, "before": before, "admin": admin}
    with psycopg.connect(db_conninfo(admin, db), autocommit=True) as conn:
        assert _acl_state(conn, "canary") == before
    cleanup.run()


@pytest.mark.pg
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(names=hostile_names(), pre_create=st.booleans())
def test_hostile_names_init_apply_clean(
    pg_server: LocalServer, canary: dict[str, Any], tmp_path: Path, names: dict[str, str], pre_create: bool
) -> None:
    cleanup = PgCleanup(lambda: pg_server)
    admin = pg_server.conninfo("postgres")
    db, owner, app, ro, schema, table = (names[k] for k in ("db", "owner", "app", "ro", "schema", "table"))
    for role in (owner, app, ro):
        cleanup.role(role)
    cleanup.database(db)
    path = tmp_path / f"{make_unique_name()}.toml"
    passwords = {r: f"pw-{i}-{make_unique_name()}" for i, r in enumerate((owner, app, ro))}
    env: dict[str, str | None] = {password_env_for(r): p for r, p in passwords.items()}
    try:
        if pre_create:
            # an existing database owned by someone else, with a foreign schema pgwarden does not manage
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            with psycopg.connect(db_conninfo(admin, db), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA other AUTHORIZATION {}").format(sql.Identifier(canary["role"])))
                conn.execute("CREATE TABLE other.keep (id int)")
                conn.execute(sql.SQL("ALTER TABLE other.keep OWNER TO {}").format(sql.Identifier(canary["role"])))
                conn.execute("GRANT SELECT ON other.keep TO PUBLIC")
                other_before = _acl_state(conn, "other")
        init = _cli(
            [
                "init",
                "--database",
                db,
                "--owner",
                owner,
                "--app",
                app,
                "--readonly",
                ro,
                "--schema",
                schema,
                "--schema",
                "public",
                "-o",
                str(path),
            ]
        )
        assert init.exit_code == 0, str(init)
        applied = _cli(["apply", "--yes", "-c", str(path), "--dsn", admin], env=env)
        assert applied.exit_code == 0, str(applied)
        planned = _cli(["plan", "--exit-code", "--format", "json", "-c", str(path), "--dsn", admin], env=env)
        assert planned.exit_code == 0 and planned.json()["steps"] == [], str(planned)

        # the names really are what was asked for (nothing truncated, nothing unquoted)
        with psycopg.connect(admin, autocommit=True) as conn:
            found = {
                r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", ([owner, app, ro],))
            }
            assert found == {owner, app, ro}
            assert conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db,)
            ).fetchone() == (owner,)

        # the owner creates a table with a hostile name; the app uses it through default privileges
        with psycopg.connect(role_conninfo(admin, owner, passwords[owner], db), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, v text)").format(sql.Identifier(schema, table))
            )
        with psycopg.connect(role_conninfo(admin, app, passwords[app], db), autocommit=True) as conn:
            # a Literal, not a parameter: a `%s` inside a composed identifier would count as a placeholder
            conn.execute(
                sql.SQL("INSERT INTO {} (v) VALUES ({})").format(sql.Identifier(schema, table), sql.Literal(table))
            )
            assert conn.execute(sql.SQL("SELECT v FROM {}").format(sql.Identifier(schema, table))).fetchall() == [
                (table,)
            ]
        with psycopg.connect(role_conninfo(admin, ro, passwords[ro], db), autocommit=True) as conn:
            assert conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone() == (1,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, table)))
        planned = _cli(["plan", "--exit-code", "--format", "json", "-c", str(path), "--dsn", admin], env=env)
        assert planned.exit_code == 0 and planned.json()["steps"] == [], str(planned)
        checked = _cli(["check", "--format", "json", "-c", str(path), "--dsn", admin], env=env)
        assert checked.exit_code == 0, str(checked)
        probed = _cli(["probe", "--format", "json", "-c", str(path), "--dsn", admin], env=env)
        assert probed.exit_code == 0, str(probed)
        probed = _cli(["probe", "--login", "--format", "json", "-c", str(path), "--dsn", admin], env=env)
        assert probed.exit_code == 0, str(probed)
        if pre_create:
            with psycopg.connect(db_conninfo(admin, db), autocommit=True) as conn:
                assert _acl_state(conn, "other") == other_before
    finally:
        cleanup.run()


def _too_long(tag: str, piece: str) -> str:
    name = tag + "_"
    while len(name.encode()) <= 63:
        name += piece
    return name


@pytest.mark.parametrize("piece", ["x", "é", "日", "'\""])
@pytest.mark.parametrize("what", ["database", "owner", "app", "schema"])
def test_names_over_63_bytes_refused_before_anything_is_sent(
    pg_server: LocalServer, admin_conn: psycopg.Connection[Any], tmp_path: Path, what: str, piece: str
) -> None:
    tag = make_unique_name()
    long_name = _too_long(tag, piece)
    names = {"database": tag + "_db", "owner": tag + "_o", "app": tag + "_a", "schema": "public"}
    names[what] = long_name
    assert len(long_name.encode()) > 63
    # init refuses it
    init = _cli(
        [
            "init",
            "--database",
            names["database"],
            "--owner",
            names["owner"],
            "--app",
            names["app"],
            "--schema",
            names["schema"],
            "-o",
            str(tmp_path / "init.toml"),
        ]
    )
    assert init.exit_code == 2 and "63 bytes" in init.stderr, str(init)
    assert not (tmp_path / "init.toml").exists()
    # a hand-written file with the long name is refused by apply before connecting
    path = tmp_path / "p.toml"
    q = json.dumps  # JSON string escapes are valid TOML
    path.write_text(
        f"[database]\nname = {q(names['database'])}\nschemas = [{q(names['schema'])}]\n"
        f'[owner]\nname = {q(names["owner"])}\n[[access]]\nname = {q(names["app"])}\nlevel = "readwrite"\n',
        encoding="utf-8",
    )
    log_size = len(pg_server.read_log().encode())
    result = _cli(["apply", "--yes", "-c", str(path), "--dsn", pg_server.conninfo("postgres")])
    assert result.exit_code == 2, str(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "63 bytes" in errors[0] and "truncated" in errors[0], str(result)
    new_log = pg_server.read_log().encode()[log_size:].decode(errors="replace")
    assert tag not in new_log, new_log  # nothing was sent
    assert admin_conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (tag + "%",)).fetchone() == (0,)
    assert admin_conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", (tag + "%",)).fetchone() == (0,)
