"""The benchmark's server and databases: built server-side (DO blocks + format(%I)), once, then reused."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWNER = "bench_owner"
APP = "bench_app"
READONLY = "bench_ro"
ROLES = (OWNER, APP, READONLY)

#: Throwaway cluster: fsync off (fixture creation writes ~1 GB of catalog at 100k tables; the
#: measured work is catalog reads and one commit), every statement and its duration logged (the
#: statement count and the server-side time per command come from this log).
SERVER_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "log_min_duration_statement": "0",
    "shared_buffers": "512MB",
    "log_checkpoints": "off",
}

#: Objects per DO block: each CREATE/ALTER keeps a lock until commit, and the default lock table
#: (max_locks_per_transaction=64 x 100 connections) holds ~6,400.
CHUNK = 1000


@dataclass(frozen=True)
class Size:
    """One benchmark database size: N tables over S schemas."""

    tables: int
    schemas: int

    @property
    def prefix(self) -> str:
        return f"b{self.tables}s{self.schemas}"

    @property
    def compliant(self) -> str:
        """Database after `pgwarden apply`: everything granted as the policy says."""
        return self.prefix

    @property
    def brown_template(self) -> str:
        """Objects owned by the owner role, no grants: the state before the first apply."""
        return f"{self.prefix}_brown_tpl"

    @property
    def brown(self) -> str:
        """Copy of brown_template, recreated before each brown-field apply."""
        return f"{self.prefix}_brown"

    @property
    def adopt_template(self) -> str:
        """Everything owned by postgres (database, schemas, objects): the state before adopt."""
        return f"{self.prefix}_adopt_tpl"

    @property
    def adopt(self) -> str:
        """Copy of adopt_template, recreated before each adopt run."""
        return f"{self.prefix}_adopt"

    def schema_names(self) -> list[str]:
        return [f"s{i:03d}" for i in range(1, self.schemas + 1)]

    def per_schema(self) -> list[int]:
        base, extra = divmod(self.tables, self.schemas)
        return [base + (1 if i < extra else 0) for i in range(self.schemas)]


def default_schemas(tables: int) -> int:
    """One schema per 1,000 tables (100 at 100,000), at least one."""
    return max(1, tables // 1000)


# --------------------------------------------------------------------------------------------
# server


def start_server(
    version: int,
    server_dir: Path | None,
    log: Callable[[str], None],
    pg_bin: str | None = None,
    port: int | None = None,
) -> Any:
    """A started LocalServer; with server_dir, the cluster (and its databases) survive between runs."""
    from pgwarden.errors import ServerError
    from pgwarden.server import LocalServer, download_binaries, find_binaries

    if pg_bin is not None:
        binaries = find_binaries(pg_bin=pg_bin)
    else:
        try:
            binaries = download_binaries(version)
        except ServerError:
            binaries = find_binaries(version)
    password: str | None = None
    if server_dir is not None:
        state = server_dir / "bench-state.json"
        if state.exists():
            password = json.loads(state.read_text())["password"]
        else:
            server_dir.mkdir(parents=True, exist_ok=True)
            password = secrets.token_urlsafe(24)
            state.write_text(json.dumps({"password": password, "version": version}))
    server = LocalServer(
        binaries,
        password=password,
        log_statement="all",
        settings=dict(SERVER_SETTINGS),
        base_dir=server_dir,
        port=port,
    )
    log(f"starting PostgreSQL {binaries.full_version} ({binaries.bindir})")
    server.start()
    return server


# --------------------------------------------------------------------------------------------
# databases


def _exists(admin: Any, dbname: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone() is not None


def ensure_roles(admin: Any) -> None:
    """The owner and access roles (cluster-wide, shared by every size); no passwords."""
    from psycopg import sql

    for role in ROLES:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def copy_database(admin: Any, source: str, target: str, *, file_copy: bool = True) -> None:
    """DROP target if present, CREATE it from the template source (not timed by callers)."""
    from psycopg import sql

    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
    # 15+ copies through the WAL by default (minutes for 200,000 relation files); FILE_COPY copies
    # the directory and checkpoints: much faster for a big template on a quiet server.
    big = file_copy and admin.info.server_version >= 150000
    strategy = sql.SQL(" STRATEGY FILE_COPY") if big else sql.SQL("")
    admin.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(sql.Identifier(target), sql.Identifier(source), strategy)
    )


def _populate_blocks(size: Size) -> list[Any]:
    """DO blocks creating every schema and object, each holding at most CHUNK tables' locks."""
    from psycopg import sql

    blocks: list[Any] = []
    for schema, count in zip(size.schema_names(), size.per_schema(), strict=True):
        # Per schema: one partitioned table with 4 partitions (counted in N) when there is room,
        # a view per 100 tables and a function per 100 tables (at least one of each).
        parts = 4 if count >= 20 else 0
        plain = count - (parts + 1 if parts else 0)
        views = max(1, count // 100)
        blocks.append(
            sql.SQL(
                "DO $$ BEGIN EXECUTE format('CREATE SCHEMA %I', {s}); "
                "FOR i IN 1..{f} LOOP EXECUTE format("
                "'CREATE FUNCTION %I.%I() RETURNS int LANGUAGE sql IMMUTABLE AS ''SELECT 1''', {s}, 'f' || i);"
                " END LOOP; END $$"
            ).format(s=sql.Literal(schema), f=sql.Literal(views))
        )
        for start in range(1, plain + 1, CHUNK):
            stop = min(plain, start + CHUNK - 1)
            blocks.append(
                sql.SQL(
                    "DO $$ BEGIN FOR i IN {a}..{b} LOOP EXECUTE format("
                    "'CREATE TABLE %I.%I (id serial, v int)', {s}, 't' || i); END LOOP; END $$"
                ).format(a=sql.Literal(start), b=sql.Literal(stop), s=sql.Literal(schema))
            )
        tail = [
            sql.SQL(
                "FOR i IN 1..{v} LOOP EXECUTE format("
                "'CREATE VIEW %I.%I AS SELECT id, v FROM %I.%I', {s}, 'v' || i, {s}, 't' || i); END LOOP;"
            ).format(v=sql.Literal(min(views, plain)), s=sql.Literal(schema))
        ]
        if parts:
            tail.append(
                sql.SQL(
                    "EXECUTE format('CREATE TABLE %I.p (id serial, k int) PARTITION BY RANGE (k)', {s});"
                    " FOR i IN 1..4 LOOP EXECUTE format("
                    "'CREATE TABLE %I.%I PARTITION OF %I.p FOR VALUES FROM (%s) TO (%s)',"
                    " {s}, 'p' || i, {s}, i * 1000, i * 1000 + 1000); END LOOP;"
                ).format(s=sql.Literal(schema))
            )
        blocks.append(sql.SQL("DO $$ BEGIN {} END $$").format(sql.SQL(" ").join(tail)))
    return blocks


def adopt_floor_sql(new_owner: str) -> str:
    """The adopt floor: the same ALTER ... OWNER TO for every object, server-side in one DO block.

    It COMMITs every CHUNK objects (a DO block may when not inside a transaction block) because
    each ALTER holds a lock until commit and the default lock table holds ~6,400 locks.
    """
    from psycopg import sql

    body = sql.SQL(
        """DO $$
DECLARE r record; n int := 0;
BEGIN
  EXECUTE format('ALTER DATABASE %I OWNER TO %I', current_database(), {o});
  FOR r IN SELECT n.nspname FROM pg_namespace n
           WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND n.nspname <> 'public'
  LOOP EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, {o}); END LOOP;
  FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
             AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
             AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO %I', r.rel, {o});
    n := n + 1;
    IF n % {chunk} = 0 THEN COMMIT; END IF;
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  LOOP EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.fn, {o}); END LOOP;
END $$"""
    ).format(o=sql.Literal(new_owner), chunk=sql.Literal(CHUNK))
    return body.as_string(None)


def count_objects(conn: Any) -> dict[str, int]:
    """What the database holds, by kind (reported so that the sizes are facts, not intentions)."""
    rows = conn.execute(
        """SELECT c.relkind::text, count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname ~ '^s[0-9]+$' GROUP BY 1
           UNION ALL
           SELECT 'function', count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname ~ '^s[0-9]+$'"""
    ).fetchall()
    names = {"r": "tables", "p": "partitioned", "v": "views", "S": "sequences", "function": "functions"}
    return {names.get(kind, kind): int(n) for kind, n in rows}


def ensure_adopt_template(server: Any, admin: Any, size: Size, log: Callable[[str], None]) -> float:
    """Create the postgres-owned template database for this size unless it exists; seconds taken."""
    import psycopg
    from psycopg import sql

    name = size.adopt_template
    if _exists(admin, name):
        return 0.0
    log(f"creating {name}: {size.tables} tables in {size.schemas} schemas (once; reused afterwards)")
    started = time.perf_counter()
    tmp = f"{name}_building"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(tmp)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(tmp)))
    with psycopg.connect(server.conninfo(tmp), autocommit=True) as conn:
        blocks = _populate_blocks(size)
        for i, block in enumerate(blocks, 1):
            conn.execute(block)
            if i % 50 == 0:
                log(f"  {i}/{len(blocks)} blocks, {time.perf_counter() - started:.0f} s")
        conn.execute("VACUUM ANALYZE pg_class")
    # Renamed only when complete, so an interrupted build is never mistaken for a template.
    admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(tmp), sql.Identifier(name)))
    admin.execute("CHECKPOINT")  # fsync is off: make the template survive an immediate shutdown
    return time.perf_counter() - started


def ensure_brown_template(server: Any, admin: Any, size: Size, log: Callable[[str], None]) -> None:
    """The adopt template with everything handed to the owner role: owned right, nothing granted."""
    import psycopg
    from psycopg import sql

    name = size.brown_template
    if _exists(admin, name):
        return
    log(f"creating {name} (owner {OWNER}, no grants)")
    tmp = f"{name}_building"
    copy_database(admin, size.adopt_template, tmp)
    with psycopg.connect(server.conninfo(tmp), autocommit=True) as conn:
        conn.execute(adopt_floor_sql(OWNER))
        conn.execute("VACUUM ANALYZE pg_class")
    admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(tmp), sql.Identifier(name)))
    admin.execute("CHECKPOINT")
