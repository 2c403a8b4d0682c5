"""The floor of a fleet command's reads: the statements it sends each database, captured from it, replayed bare.

    from bench import fleet_floor
    captured = fleet_floor.capture(["check", "-c", POLICY, "--dsn", DSN], names[:3], oids, env, workdir)
    argv = [sys.executable, "-c", fleet_floor.replay_script(8), str(captured.path), *dsns]

`capture` runs the command in a child process over a few databases of the fleet (`--jobs 1`: its
databases one after the other, in that process) with psycopg's `Cursor.execute` and
`Connection._exec_command` wrapped, so it records every statement, with its parameters as Python
values and whether it went in a pipeline, on every connection the command opened; what it keeps
is the last database's own connections (the first carries the fleet's shared read). The database's
name and oid (`oids`: every database's), wherever they are parameters, become placeholders the
replay fills in. `REPLAY` sends exactly those statements to each database, `threads` at once, each
on a fresh connection opened as pgwarden opens its own (autocommit, the same application_name), in
the same pipelines, and fetches every row:
what any client reading what the command's rules read costs, without the rules. The statements
come from the command itself, so the floor follows its queries as they change.

One database (bench.ab's "floor: check's own statements" row): `capture_one` records `check` on it the
same way, and `REPLAY_ONE` sends every statement on every connection check opened, a big database's
second connection in a thread through the first's exported snapshot.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The child that runs pgwarden with its statements recorded: argv = OUT, pgwarden's argv...
CAPTURE = r"""
import os, pickle, sys
import psycopg

if os.environ.get("BENCH_SECOND_FROM_BYTES"):  # tests: a small database read on two connections too
    import pgwarden.parallel
    pgwarden.parallel.THRESHOLD_BYTES = int(os.environ["BENCH_SECOND_FROM_BYTES"])

out, argv = sys.argv[1], sys.argv[2:]
seen = []  # (connection number, database, kind, query, params, in a pipeline)
numbers = {}

def record(conn, kind, query, params):
    key = numbers.setdefault(id(conn), (len(numbers), conn))[0]  # the connection kept: ids stay unique
    if not isinstance(query, (str, bytes)):
        query = query.as_string(conn)
    if isinstance(query, bytes):
        query = query.decode()
    seen.append((key, conn.info.dbname, kind, query, params, conn._pipeline is not None))

execute = psycopg.Cursor.execute
def traced_execute(self, query, params=None, **kw):
    record(self.connection, "execute", query, params)
    return execute(self, query, params, **kw)

command = psycopg.Connection._exec_command
def traced_command(self, cmd, *args, **kw):
    record(self, "command", cmd, None)
    return command(self, cmd, *args, **kw)

psycopg.Cursor.execute = traced_execute
psycopg.Connection._exec_command = traced_command
from pgwarden.cli import main
code = 0
try:
    main(argv)
except SystemExit as exc:
    code = exc.code
with open(out, "wb") as fh:
    pickle.dump((code, seen), fh)
"""

#: The bare client: argv = the replay file (`capture`), then one DSN per database.
REPLAY = r"""
import pickle, sys
import psycopg
from psycopg.conninfo import conninfo_to_dict
from concurrent.futures import ThreadPoolExecutor

with open(sys.argv[1], "rb") as fh:
    placeholders, oids, connections = pickle.load(fh)
dsns = sys.argv[2:]

def fill(value, name):
    if isinstance(value, str) and value in placeholders:
        return name if value == placeholders[0] else oids[name]
    if isinstance(value, dict):
        return {k: fill(v, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, name) for v in value)
    return value

def send(conn, kind, query, params, name):
    if kind == "command":
        conn.execute(query)
        return 0
    cur = conn.execute(query, fill(params, name))
    return len(cur.fetchall()) if cur.description is not None else 0

def one(dsn):
    name = conninfo_to_dict(dsn)["dbname"]
    rows = 0
    for statements in connections:
        with psycopg.connect(dsn, autocommit=True, application_name="pgwarden") as conn:
            i = 0
            while i < len(statements):
                kind, query, params, piped = statements[i]
                if not piped:
                    rows += send(conn, kind, query, params, name)
                    i += 1
                    continue
                cursors = []
                with conn.pipeline():
                    while i < len(statements) and statements[i][3]:
                        kind, query, params, _ = statements[i]
                        cursors.append(conn.execute(query, fill(params, name)))
                        i += 1
                rows += sum(len(c.fetchall()) for c in cursors if c.description is not None)
    return rows

with ThreadPoolExecutor(THREADS) as pool:
    print(sum(pool.map(one, dsns)))
"""

#: A parameter equal to the captured database's name, or to its oid, in the replay file
PLACEHOLDERS = ("\x00the database's name\x00", "\x00the database's oid\x00")


@dataclass
class Captured:
    """What `capture` found: the replay file, and the statements per database (for the row's note)."""

    path: Path
    statements: int  # on the database's own connections
    connections: int
    admin: list[str]  # statements sent on other connections while this database was worked on (first lines)


def capture(command: list[str], names: list[str], oids: dict[str, int], env: dict[str, str], workdir: Path) -> Captured:
    """Run `pgwarden COMMAND -d NAME... --jobs 1` (names: two or three of the fleet's databases) with
    its statements recorded; write the last database's as the replay file, with `oids` (every
    database's of the fleet: a parameter equal to the captured one's becomes the replayed one's)."""
    raw = workdir / f"capture-{command[0]}.pickle"
    argv = [sys.executable, "-c", CAPTURE, str(raw), *command, "--jobs", "1"]
    for name in names:
        argv += ["-d", name]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0 or not raw.exists():
        raise RuntimeError(f"capturing {command[0]}'s statements failed: {proc.stderr[-2000:]}")
    with raw.open("rb") as fh:
        code, seen = pickle.load(fh)
    if code not in (0, 1, None):
        raise RuntimeError(f"capturing {command[0]}'s statements: pgwarden exited {code}: {proc.stderr[-2000:]}")
    target = names[-1]
    mine = sorted({key for key, db, *_ in seen if db == target})
    if not mine:
        raise RuntimeError(f"capturing {command[0]}'s statements: no connection to {target}")
    connections = [[_entry(s, target, oids[target]) for s in seen if s[0] == key] for key in mine]
    # the other connections' statements between the previous database's last statement and this one's
    previous = max(i for i, s in enumerate(seen) if s[1] == names[-2])
    last = max(i for i, s in enumerate(seen) if s[1] == target)
    admin = [s[3].strip().splitlines()[0][:80] for s in seen[previous + 1 : last] if s[0] not in mine]
    path = workdir / f"replay-{command[0]}.pickle"
    with path.open("wb") as fh:
        pickle.dump((PLACEHOLDERS, oids, connections), fh)
    return Captured(path, sum(len(c) for c in connections), len(connections), admin)


def _entry(seen: tuple[object, ...], target: str, oid: int) -> tuple[object, ...]:
    _, _, kind, query, params, piped = seen
    assert isinstance(query, str)
    if target in query:  # a statement naming its database in its text cannot be replayed on another
        raise RuntimeError(f"a statement names database {target} in its text: {query[:200]}")
    return kind, query, _placeholder(params, target, oid), piped


def _placeholder(value: object, target: str, oid: int) -> object:
    if isinstance(value, str) and value == target:
        return PLACEHOLDERS[0]
    if isinstance(value, int) and not isinstance(value, bool) and value == oid:
        return PLACEHOLDERS[1]
    if isinstance(value, dict):
        return {k: _placeholder(v, target, oid) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_placeholder(v, target, oid) for v in value)
    return value


def replay_script(threads: int) -> str:
    return REPLAY.replace("THREADS", str(threads))


# One database: every statement check sent, on every connection it opened, replayed in its order.

#: The bare client for one database: argv = the replay file (`capture_one`), then the DSN check was given.
#: The main thread sends the statements of the connections check used one after the other (the admin
#: connection's and the database's), in their captured order; the connection that imports the first's
#: snapshot runs its own in a thread, started once the first has exported it (as pgwarden.parallel does),
#: and the first waits for that thread before it ends its transaction (the snapshot must stay valid).
REPLAY_ONE = r"""
import pickle, sys, threading
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

with open(sys.argv[1], "rb") as fh:
    dbnames, steps, second = pickle.load(fh)
dsn = sys.argv[2]
conns = {}
counted = [0, 0]  # rows fetched by the main thread, by the second connection's

def conn_for(i):
    if i not in conns:
        conninfo = make_conninfo(dsn, dbname=dbnames[i], application_name="pgwarden", connect_timeout=10)
        conns[i] = psycopg.connect(conninfo, autocommit=True)
    return conns[i]

def run(conn, statements, slot, on_sent=None):
    i = 0
    while i < len(statements):
        kind, query, params, piped = statements[i]
        if not piped:
            if on_sent is not None:
                on_sent(query, None, before=True)
            cur = conn.execute(query, params) if kind == "execute" else conn.execute(query)
            rows = cur.fetchall() if cur.description is not None else []
            counted[slot] += len(rows)
            if on_sent is not None:
                on_sent(query, rows)
            i += 1
            continue
        cursors = []
        with conn.pipeline():
            while i < len(statements) and statements[i][3]:
                cursors.append(conn.execute(statements[i][1], statements[i][2]))
                i += 1
        counted[slot] += sum(len(c.fetchall()) for c in cursors if c.description is not None)

snapshot = []
thread = None

def second_reads():
    conn = psycopg.connect(make_conninfo(dsn, dbname=dbnames[second[0]], application_name="pgwarden",
                                         connect_timeout=10), autocommit=True)
    statements = [(k, sql.SQL(q).format(sql.Literal(snapshot[0])) if k == "import" else q, p, piped)
                  for k, q, p, piped in second[1]]
    run(conn, statements, 1)
    conn.close()

def on_sent(query, rows, before=False):
    global thread
    if before:
        if thread is not None and query.strip().upper() == "COMMIT":
            thread.join()  # the snapshot stays valid until the second connection has imported it
            thread = None
        return
    if second is not None and "pg_export_snapshot" in query and thread is None and not snapshot:
        snapshot.append(rows[0][0])
        thread = threading.Thread(target=second_reads)
        thread.start()

# the main thread's steps, grouped by connection where they follow one another
groups = []
for index, *statement in steps:
    if groups and groups[-1][0] == index:
        groups[-1][1].append(tuple(statement))
    else:
        groups.append((index, [tuple(statement)]))
for index, statements in groups:
    run(conn_for(index), statements, 0, on_sent)
if thread is not None:
    thread.join()
for conn in conns.values():
    conn.close()
print(sum(counted))
"""


@dataclass
class CapturedOne:
    """What `capture_one` found: the replay file, and what check sent (for the row's note)."""

    path: Path
    statements: int  # on every connection, the second's included
    connections: int  # connections that sent a statement
    second: int  # statements on the connection that imported the snapshot (0: none)


def capture_one(
    command: list[str], env: dict[str, str], workdir: Path, *, second_from_bytes: int | None = None
) -> CapturedOne:
    """Run `pgwarden COMMAND` (one database) with its statements recorded, and write them as the
    replay file of REPLAY_ONE: each connection's database, the main thread's statements in their
    order, and the connection that imported the exported snapshot with its own (its snapshot's
    literal left to fill in). `second_from_bytes`: pg_class's size from which check reads on two
    connections, in place of pgwarden.parallel's (tests: a small database read as a big one)."""
    raw = workdir / f"capture-one-{command[0]}.pickle"
    if second_from_bytes is not None:
        env = {**env, "BENCH_SECOND_FROM_BYTES": str(second_from_bytes)}
    proc = subprocess.run(
        [sys.executable, "-c", CAPTURE, str(raw), *command], capture_output=True, text=True, env=env, check=False
    )
    if not raw.exists():
        raise RuntimeError(f"capturing {command[0]}'s statements failed: {proc.stderr[-2000:]}")
    with raw.open("rb") as fh:
        code, seen = pickle.load(fh)
    if code not in (0, 1, None):
        raise RuntimeError(f"capturing {command[0]}'s statements: pgwarden exited {code}: {proc.stderr[-2000:]}")
    keys = list(dict.fromkeys(s[0] for s in seen))  # connections in the order of their first statement
    dbnames = {i: next(s[1] for s in seen if s[0] == key) for i, key in enumerate(keys)}
    importer = next((s[0] for s in seen if str(s[3]).startswith("SET TRANSACTION SNAPSHOT")), None)
    steps, second = [], []
    for key, _db, kind, query, params, piped in seen:
        if key == importer:
            if query.startswith("SET TRANSACTION SNAPSHOT"):
                kind, query = "import", re.sub(r"'[^']*'", "{}", query)
            second.append((kind, query, params, piped))
        else:
            steps.append((keys.index(key), kind, query, params, piped))
    path = workdir / f"replay-one-{command[0]}.pickle"
    with path.open("wb") as fh:
        pickle.dump((dbnames, steps, None if importer is None else (keys.index(importer), second)), fh)
    return CapturedOne(path, len(seen), len(keys), len(second))
