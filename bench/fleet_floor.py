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
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: The child that runs pgwarden with its statements recorded: argv = OUT, pgwarden's argv...
CAPTURE = r"""
import pickle, sys
import psycopg

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
