"""`pgwarden adopt`: every object kind moves from postgres to the owner; grants survive; live writes continue."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from helpers import db_conninfo, role_conninfo, run_cli, write_policy
from pgwarden.adopt import OwnedObject, alter_owner_sql

# One object of every kind adopt moves, created by the bootstrap superuser; {schema} is a quoted
# schema name with awkward characters, to show names go through sql.Identifier.
OBJECTS = """
CREATE SCHEMA {schema};
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE {schema}.t (id serial PRIMARY KEY, ident int GENERATED ALWAYS AS IDENTITY, a int, b int);
CREATE TABLE {schema}.parted (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE {schema}.parted_1 PARTITION OF {schema}.parted FOR VALUES FROM (0) TO (100);
CREATE VIEW {schema}.v AS SELECT id FROM {schema}.t;
CREATE MATERIALIZED VIEW {schema}.mv AS SELECT id FROM {schema}.t;
CREATE SEQUENCE {schema}.standalone_seq;
CREATE FUNCTION {schema}."odd fn"(x int, "y z" text DEFAULT 'a') RETURNS int LANGUAGE sql AS 'SELECT x';
CREATE PROCEDURE {schema}.proc(x int) LANGUAGE sql AS 'SELECT 1';
CREATE AGGREGATE {schema}.agg(int) (SFUNC = int4pl, STYPE = int);
CREATE TYPE {schema}.mood AS ENUM ('ok', 'sad');
CREATE TYPE {schema}.pair AS (a int, b text);
CREATE TYPE {schema}.floatrange AS RANGE (subtype = float8);
CREATE DOMAIN {schema}.posint AS int CHECK (VALUE > 0);
CREATE COLLATION {schema}.mycoll FROM "C";
CREATE CONVERSION {schema}.myconv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
CREATE OPERATOR {schema}.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
CREATE OPERATOR CLASS {schema}.myopc FOR TYPE int4 USING btree AS OPERATOR 1 <, FUNCTION 1 btint4cmp(int4, int4);
CREATE TEXT SEARCH CONFIGURATION {schema}.mycfg (COPY = simple);
CREATE TEXT SEARCH DICTIONARY {schema}.mydict (TEMPLATE = simple);
CREATE STATISTICS {schema}.st ON a, b FROM {schema}.t;
CREATE FOREIGN DATA WRAPPER adopt_fdw;
CREATE SERVER adopt_srv FOREIGN DATA WRAPPER adopt_fdw;
CREATE FOREIGN TABLE {schema}.ft (a int) SERVER adopt_srv;
CREATE PUBLICATION adopt_pub FOR TABLE {schema}.t;
CREATE FUNCTION {schema}.evt() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
CREATE EVENT TRIGGER adopt_evt ON ddl_command_start EXECUTE FUNCTION {schema}.evt();
SELECT lo_create(0);
CREATE TABLE public.pt (id bigserial PRIMARY KEY, v text);
"""

MUST_STAY = {"FOREIGN DATA WRAPPER", "EVENT TRIGGER", "EXTENSION"}

ACLS = """
SELECT c.oid::regclass::text, c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', %(schema)s) AND c.relkind IN ('r','p','v','m','f','S')
UNION ALL SELECT n.nspname, n.nspacl::text FROM pg_namespace n WHERE n.nspname IN ('public', %(schema)s)
UNION ALL SELECT p.oid::regprocedure::text, p.proacl::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s
ORDER BY 1
"""


def _owned_by_postgres(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """What the F7.6 query still finds owned by the bootstrap superuser (kind, identity)."""
    from pgwarden.adopt import enumerate_owned

    moved, reported = enumerate_owned(conn, "postgres")
    return [(o.kind, o.label) for o in moved + reported]


def _setup(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> tuple[str, str, str, str, Path]:
    db = pg_cleanup.database(unique_name("adoptdb"))
    owner = pg_cleanup.role(unique_name("owner"))
    app = pg_cleanup.role(unique_name("app"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'ownerpw'").format(sql.Identifier(owner)))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'apppw'").format(sql.Identifier(app)))
    policy = write_policy(
        tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app], schemas=["public", 'we"ird S']
    )
    return db, owner, app, admin_dsn, policy


def test_adopt_every_kind(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
    pg_version: int,
) -> None:
    db, owner, app, _, policy = _setup(admin_conn, admin_dsn, unique_name, pg_cleanup, tmp_path)
    schema = 'we"ird S'
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute(sql.SQL(OBJECTS).format(schema=sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "GRANT USAGE ON SCHEMA {s} TO {a}; GRANT SELECT, INSERT ON {s}.t TO {a} WITH GRANT OPTION; "
                "GRANT USAGE ON SEQUENCE {s}.t_id_seq TO {a}; "
                "GRANT EXECUTE ON FUNCTION {s}.{f}(int, text) TO {a}; "
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {a}"
            ).format(s=sql.Identifier(schema), a=sql.Identifier(app), f=sql.Identifier("odd fn"))
        )
        before = conn.execute(ACLS, {"schema": schema}).fetchall()
        found = {k for k, _ in _owned_by_postgres(conn)}
    # every listed kind is found before adopt
    for kind in (
        "DATABASE",
        "SCHEMA",
        "TABLE",
        "VIEW",
        "MATERIALIZED VIEW",
        "SEQUENCE",
        "FUNCTION",
        "PROCEDURE",
        "AGGREGATE",
        "TYPE",
        "DOMAIN",
        "COLLATION",
        "CONVERSION",
        "OPERATOR",
        "OPERATOR CLASS",
        "OPERATOR FAMILY",
        "TEXT SEARCH CONFIGURATION",
        "TEXT SEARCH DICTIONARY",
        "STATISTICS",
        "SERVER",
        "FOREIGN TABLE",
        "LARGE OBJECT",
        "PUBLICATION",
        *MUST_STAY,
    ):
        assert kind in found, kind

    dry = run_cli(["adopt", "-c", str(policy), "--dsn", admin_dsn, "--from", "postgres"])
    assert dry.exit_code == 0, dry
    assert "ALTER TABLE" in dry.stdout and "dry run" in dry.stderr
    assert "adopt_evt" in dry.stderr and "ALTER DEFAULT PRIVILEGES FOR ROLE" in dry.stderr

    res = run_cli(
        [
            "adopt",
            "-c",
            str(policy),
            "--dsn",
            admin_dsn,
            "--from",
            "postgres",
            "--yes",
            "--batch-size",
            "7",
            "--format",
            "json",
        ]
    )
    assert res.exit_code == 0, res
    data = res.json()
    assert data["moved"] == len(data["statements"]) > 25
    assert data["batches"] == -(-data["moved"] // 7)
    assert {r["kind"] for r in data["reported"]} == {k.lower() for k in MUST_STAY}
    assert any(d["grantee"] == app for d in data["default_privileges"])

    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        left = _owned_by_postgres(conn)
        assert {k for k, _ in left} == MUST_STAY, left
        after = conn.execute(ACLS, {"schema": schema}).fetchall()
        # the serial and identity sequences moved with their table
        seq_owners = dict(
            conn.execute(
                "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.relkind = 'S' "
                "AND c.relnamespace::regnamespace::text <> 'pgwarden_ledger'"  # the ledger stays the admin's
            ).fetchall()
        )
        assert set(seq_owners.values()) == {owner}, seq_owners
        # every relation moved, asked of the catalog itself (a partitioned parent once stayed behind)
        stayed = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
            "AND pg_get_userbyid(c.relowner) <> %s",
            (schema, owner),
        ).fetchall()
        assert stayed == [], stayed
        # extension members stayed with postgres
        ext = conn.execute("""SELECT count(*) FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass
            AND d.objid = p.oid WHERE d.deptype = 'e' AND p.proowner <> 10""").fetchone()
        assert ext == (0,)
    # grants unchanged modulo the owner rename
    rename = lambda acl: acl and acl.replace("postgres", "OWNER").replace(owner, "OWNER")  # noqa: E731
    assert [(n, rename(a)) for n, a in before] == [(n, rename(a)) for n, a in after]
    # the app kept its access
    with psycopg.connect(role_conninfo(admin_dsn, app, "apppw", db), autocommit=True) as appconn:
        appconn.execute(sql.SQL("INSERT INTO {}.t (a) VALUES (1)").format(sql.Identifier(schema)))

    # idempotent: nothing left to move
    again = run_cli(["adopt", "-c", str(policy), "--dsn", admin_dsn, "--from", "postgres", "--yes"])
    assert again.exit_code == 0 and "moved 0 object(s)" in again.stdout, again

    # apply sets the policy's grants; then plan is clean
    applied = run_cli(
        ["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"],
        env={f"PGWARDEN_PASSWORD_{owner.upper()}": "ownerpw", f"PGWARDEN_PASSWORD_{app.upper()}": "apppw"},
    )
    assert applied.exit_code == 0, applied
    clean = run_cli(
        ["plan", "-c", str(policy), "--dsn", admin_dsn, "--exit-code"],
        env={f"PGWARDEN_PASSWORD_{owner.upper()}": "ownerpw", f"PGWARDEN_PASSWORD_{app.upper()}": "apppw"},
    )
    assert clean.exit_code == 0, clean


def test_adopt_under_live_writes(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    """The app keeps inserting while adopt moves its tables; it sees no error and waits little."""
    db, owner, app, _, policy = _setup(admin_conn, admin_dsn, unique_name, pg_cleanup, tmp_path)
    ntables = 40
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        for i in range(ntables):
            conn.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v int)").format(sql.Identifier(f"t{i}")))
        conn.execute(
            sql.SQL(
                "GRANT INSERT, SELECT ON ALL TABLES IN SCHEMA public TO {a}; "
                "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {a}"
            ).format(a=sql.Identifier(app))
        )

    stop = threading.Event()
    errors: list[BaseException] = []
    waits: list[float] = []

    def writer() -> None:
        try:
            with psycopg.connect(role_conninfo(admin_dsn, app, "apppw", db), autocommit=False) as c:
                i = 0
                while not stop.is_set():
                    t0 = time.monotonic()
                    # a short transaction holding a lock on two tables, like an app request
                    c.execute(sql.SQL("INSERT INTO {} (v) VALUES (%s)").format(sql.Identifier(f"t{i % ntables}")), (i,))
                    time.sleep(0.05)  # think time inside the transaction: adopt must wait for it
                    c.execute(
                        sql.SQL("INSERT INTO {} (v) VALUES (%s)").format(sql.Identifier(f"t{(i + 7) % ntables}")), (i,)
                    )
                    c.commit()
                    waits.append(time.monotonic() - t0 - 0.05)
                    i += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    res = run_cli(
        [
            "adopt",
            "-c",
            str(policy),
            "--dsn",
            admin_dsn,
            "--from",
            "postgres",
            "--yes",
            "--batch-size",
            "5",
            "--lock-timeout",
            "30ms",
            "--format",
            "json",
        ]
    )
    adopt_time = time.monotonic() - t0
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    assert res.exit_code == 0, res
    data = res.json()
    assert not errors, errors
    batches = data["batches"]
    per_batch = adopt_time / max(batches, 1)
    worst = max(waits)
    print(
        f"\nadopt under load: {data['moved']} objects, {batches} batches, {data['retries']} retries, "
        f"{adopt_time:.2f}s total ({per_batch * 1000:.0f} ms/batch); app: {len(waits)} transactions, "
        f"no errors, worst wait {worst * 1000:.0f} ms, median {sorted(waits)[len(waits) // 2] * 1000:.1f} ms; "
        f"bound = lock_timeout 30 ms + one batch"
    )
    assert len(waits) > 5
    # the bound: lock_timeout + one batch (+ slack for a 2-core machine shared by other tests)
    assert worst < 0.03 + per_batch + 0.5, (worst, per_batch)
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = 10 AND relnamespace = 'public'::regnamespace"
        ).fetchone() == (0,)


def test_alter_owner_sql_quotes_names() -> None:
    fn = OwnedObject("pg_proc", 1, "FUNCTION", 'we"ird', "f n", 'x integer, "y z" text', "alter")
    assert (
        alter_owner_sql(fn, "o'wn").as_string(None)
        == 'ALTER FUNCTION "we""ird"."f n"(x integer, "y z" text) OWNER TO "o\'wn"'
    )
    op = OwnedObject("pg_operator", 1, "OPERATOR", "s", "===", "integer, integer", "alter")
    assert alter_owner_sql(op, "o").as_string(None) == 'ALTER OPERATOR "s".=== (integer, integer) OWNER TO "o"'
    bad = OwnedObject("pg_operator", 1, "OPERATOR", "s", "=; DROP", "integer, integer", "alter")
    with pytest.raises(Exception, match="unexpected operator name"):
        alter_owner_sql(bad, "o")
    lo = OwnedObject("pg_largeobject", 1, "LARGE OBJECT", None, "16400", None, "alter")
    assert alter_owner_sql(lo, "o").as_string(None) == 'ALTER LARGE OBJECT 16400 OWNER TO "o"'
    opc = OwnedObject("pg_opclass", 1, "OPERATOR CLASS", "s", "c", "btree", "alter")
    assert alter_owner_sql(opc, "o").as_string(None) == 'ALTER OPERATOR CLASS "s"."c" USING "btree" OWNER TO "o"'


def test_adopt_bad_input(admin_dsn: str, tmp_path: Path, unique_name: Callable[[str], str]) -> None:
    policy = write_policy(tmp_path / "p.toml", database=unique_name("nodb"), owner=unique_name("o"))
    res = run_cli(["adopt", "-c", str(policy), "--dsn", admin_dsn, "--from", "postgres"])
    assert res.exit_code == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr, res


def test_adopt_retries_a_batch_that_hit_the_lock_timeout(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    """A long transaction holds a table: the batch that needs it times out, is rolled back, waits
    and is retried; once the lock is gone adopt finishes, and it says how many retries it took."""
    db, owner, _app, _, policy = _setup(admin_conn, admin_dsn, unique_name, pg_cleanup, tmp_path)
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute("CREATE TABLE busy (id int); CREATE TABLE calm (id int)")
    holder = psycopg.connect(db_conninfo(admin_dsn, db), autocommit=False)
    holder.execute("LOCK TABLE busy IN ACCESS SHARE MODE")  # blocks ALTER TABLE busy OWNER
    release = threading.Timer(1.2, holder.rollback)
    release.start()
    try:
        started = time.monotonic()
        result = run_cli(
            [
                "adopt",
                "-c",
                str(policy),
                "--from",
                "postgres",
                "--yes",
                "--lock-timeout",
                "100ms",
                "--batch-size",
                "1",
                "--format",
                "json",
            ],
            {"PGWARDEN_DSN": admin_dsn},
        )
        elapsed = time.monotonic() - started
    finally:
        release.join()
        holder.close()
    assert result.exit_code == 0, result
    data = result.json()
    assert data["retries"] >= 1, data
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        owners = dict(
            conn.execute(
                "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relname IN ('busy', 'calm')"
            ).fetchall()
        )
    assert owners == {"busy": owner, "calm": owner}
    print(f"\nadopt retry: {data['retries']} retries, finished in {elapsed:.2f}s after a 1.2 s lock")


def test_adopt_creates_the_policys_missing_roles_first(
    admin_conn: psycopg.Connection[Any],
    admin_dsn: str,
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    """A database made by postgres, a policy whose roles do not exist yet: adopt creates them as apply
    does (a SCRAM verifier, the clear password nowhere), then moves ownership; the owner logs in."""
    db = pg_cleanup.database(unique_name("adoptnew"))
    owner, app = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("app"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.legacy (id serial PRIMARY KEY, v text)")
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    env = {f"PGWARDEN_PASSWORD_{owner.upper()}": "own-pw-123", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw-123"}
    dry = run_cli(["adopt", "-c", str(policy), "--dsn", admin_dsn, "--from", "postgres"], env=env)
    assert dry.exit_code == 0 and f'CREATE ROLE "{owner}"' in dry.stdout, dry
    assert "own-pw-123" not in dry.stdout + dry.stderr and f":'PGWARDEN_PASSWORD_{owner.upper()}'" in dry.stdout
    assert admin_conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (owner,)).fetchone() == (0,)
    moved = run_cli(["adopt", "-c", str(policy), "--dsn", admin_dsn, "--from", "postgres", "--yes"], env=env)
    assert moved.exit_code == 0, moved
    stored = admin_conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (owner,)).fetchone()
    assert stored is not None and stored[0].startswith("SCRAM-SHA-256$"), stored
    with psycopg.connect(role_conninfo(admin_dsn, owner, "own-pw-123", db), autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'legacy'").fetchone()
        assert row == (owner,)
    applied = run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=env)
    assert applied.exit_code == 0, applied
    clean = run_cli(["plan", "-c", str(policy), "--dsn", admin_dsn, "--exit-code"], env=env)
    assert clean.exit_code == 0, clean
