"""Never wider, never narrower: random databases, a recorder of effective privileges, the adoption path, the diff."""

from __future__ import annotations

import contextlib
import io
import os
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import make_conninfo

# A recorded privilege: (role, kind, object, privilege). kind is database, schema, table, column, sequence,
# routine, type, member (object: the role it is about) or default (object: "schema kind", role may be PUBLIC).
Fact = tuple[str, str, str, str]

TABLE_PRIVS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVS = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
SEQUENCE_PRIVS = ("USAGE", "SELECT", "UPDATE")
KINDS = ("TABLES", "SEQUENCES", "FUNCTIONS", "TYPES")
KIND_PRIVS = {"TABLES": TABLE_PRIVS, "SEQUENCES": SEQUENCE_PRIVS, "FUNCTIONS": ("EXECUTE",), "TYPES": ("USAGE",)}


@dataclass
class Example:
    """One generated database: the SQL that builds it (run as the bootstrap superuser) and who is who."""

    version: int
    prefix: str
    owner: str  # the owner-to-be, given to init with --owner
    owner_exists: bool
    roles: list[str]
    statements: list[str] = field(default_factory=list)

    @property
    def database(self) -> str:
        return f"{self.prefix}db"

    def script(self) -> str:
        """The whole build as a psql script (what goes in the failures notes)."""
        return "\n".join(s.rstrip(";") + ";" for s in self.statements)


# ----------------------------------------------------------------------------------------------------------
# the builder


@st.composite
def examples(
    draw: st.DrawFn, version: int, prefix: str = "xq_", grant_options: bool = True, type_defaults: bool = True
) -> Example:
    """A random database shaped like the ones people have: owners mixed, grants by hand, PUBLIC, defaults
    (`grant_options`: some grants WITH GRANT OPTION; `type_defaults`: default privileges ON TYPES; the policy
    cannot say either yet: issue 20's E3 and E9)."""
    n_roles = draw(st.integers(1, 4))
    roles = [f"{prefix}r{i}" for i in range(1, n_roles + 1)]
    owner = f"{prefix}own"
    ex = Example(version, prefix, owner, draw(st.booleans()), roles)
    s = ex.statements
    s.append(f"CREATE DATABASE {ex.database}")
    s.append(f"\\c {ex.database}")
    _roles(draw, ex)
    owners = ["postgres", *([owner] if ex.owner_exists else []), *roles]
    pick_owner = st.sampled_from(owners)
    db_owner = draw(pick_owner)
    if db_owner != "postgres":
        s.append(f"ALTER DATABASE {ex.database} OWNER TO {db_owner}")
    schemas = [f"s{i}" for i in range(1, draw(st.integers(1, 2)) + 1)]
    if draw(st.booleans()):
        schemas.append("public")
    objects: dict[str, list[str]] = {"table": [], "column": [], "sequence": [], "routine": [], "type": []}
    for schema in schemas:
        if schema != "public":
            s.append(f"CREATE SCHEMA {schema} AUTHORIZATION {draw(pick_owner)}")
        elif draw(st.booleans()):
            s.append(f"ALTER SCHEMA public OWNER TO {draw(pick_owner)}")
        _objects(draw, s, schema, pick_owner, objects)
    grantees = st.sampled_from([*roles, "PUBLIC"])
    for _ in range(draw(st.integers(0, 8))):
        s.append(_grant(draw, ex, schemas, objects, grantees, grant_options))
    for _ in range(draw(st.integers(0, 3))):
        s.append(_default(draw, owners, schemas, grantees, type_defaults))
    return ex


def _roles(draw: st.DrawFn, ex: Example) -> None:
    """The roles, LOGIN or not, and memberships among them (a group before its members: no cycle)."""
    s = ex.statements
    if ex.owner_exists:
        s.append(f"CREATE ROLE {ex.owner} {draw(st.sampled_from(['LOGIN', 'NOLOGIN']))}")
    for r in ex.roles:
        s.append(f"CREATE ROLE {r} {draw(st.sampled_from(['LOGIN', 'NOLOGIN']))}")
    for i, group in enumerate(ex.roles):
        for member in ex.roles[i + 1 :]:
            if draw(st.integers(0, 3)) == 0:
                s.append(f"GRANT {group} TO {member}{_membership_options(draw, ex.version)}")


def _membership_options(draw: st.DrawFn, version: int) -> str:
    if version >= 16:
        opts = [
            f"{o} {draw(st.sampled_from(['TRUE', 'FALSE']))}"
            for o in ("INHERIT", "SET", "ADMIN")
            if draw(st.booleans())
        ]
        return f" WITH {', '.join(opts)}" if opts else ""
    return " WITH ADMIN OPTION" if draw(st.integers(0, 4)) == 0 else ""


def _objects(
    draw: st.DrawFn, s: list[str], schema: str, pick_owner: st.SearchStrategy[str], objects: dict[str, list[str]]
) -> None:
    for i in range(1, draw(st.integers(0 if objects["table"] else 1, 3)) + 1):
        name = f"{schema}.t{i}"
        shape = draw(st.sampled_from(["plain", "partitioned", "view"]))
        if shape == "plain":
            s.append(f"CREATE TABLE {name} (id serial, a int, b text)")
            objects["column"] += [f"{name} a", f"{name} b"]
        elif shape == "partitioned":
            s.append(f"CREATE TABLE {name} (k int, a int) PARTITION BY RANGE (k)")
            s.append(f"CREATE TABLE {name}_p1 PARTITION OF {name} FOR VALUES FROM (0) TO (10)")
            objects["column"] += [f"{name} a"]
            s.append(f"ALTER TABLE {name}_p1 OWNER TO {draw(pick_owner)}")
            objects["table"].append(f"{name}_p1")
        else:
            s.append(f"CREATE VIEW {name} AS SELECT 1 AS a")
        kind = "VIEW" if shape == "view" else "TABLE"
        s.append(f"ALTER {kind} {name} OWNER TO {draw(pick_owner)}")
        objects["table"].append(name)
        if shape == "plain":
            objects["sequence"].append(f"{name}_id_seq")
    if draw(st.booleans()):
        s.append(f"CREATE SEQUENCE {schema}.q1")
        s.append(f"ALTER SEQUENCE {schema}.q1 OWNER TO {draw(pick_owner)}")
        objects["sequence"].append(f"{schema}.q1")
    if draw(st.booleans()):
        s.append(f"CREATE FUNCTION {schema}.f1(x int) RETURNS int LANGUAGE sql AS 'SELECT x'")
        s.append(f"ALTER FUNCTION {schema}.f1(int) OWNER TO {draw(pick_owner)}")
        objects["routine"].append(f"FUNCTION {schema}.f1(int)")
    if draw(st.booleans()):
        s.append(f"CREATE TYPE {schema}.e1 AS ENUM ('a', 'b')")
        s.append(f"ALTER TYPE {schema}.e1 OWNER TO {draw(pick_owner)}")
        objects["type"].append(f"{schema}.e1")


def _privs(draw: st.DrawFn, choices: Sequence[str]) -> str:
    return ", ".join(draw(st.lists(st.sampled_from(choices), min_size=1, max_size=len(choices), unique=True)))


def _grant(
    draw: st.DrawFn,
    ex: Example,
    schemas: list[str],
    objects: dict[str, list[str]],
    grantees: st.SearchStrategy[str],
    grant_options: bool = True,
) -> str:
    kinds = ["database", "schema", *(k for k, v in objects.items() if v)]
    kind = draw(st.sampled_from(kinds))
    grantee = draw(grantees)
    option = " WITH GRANT OPTION" if grant_options and grantee != "PUBLIC" and draw(st.integers(0, 3)) == 0 else ""
    revoke = draw(st.integers(0, 4)) == 0
    if kind == "database":
        target, privs = f"DATABASE {ex.database}", _privs(draw, ("CONNECT", "CREATE", "TEMPORARY"))
    elif kind == "schema":
        target, privs = f"SCHEMA {draw(st.sampled_from(schemas))}", _privs(draw, ("USAGE", "CREATE"))
    elif kind == "table":
        target, privs = f"TABLE {draw(st.sampled_from(objects['table']))}", _privs(draw, TABLE_PRIVS)
    elif kind == "column":
        table, col = draw(st.sampled_from(objects["column"])).split()
        target, privs = f"TABLE {table}", f"{_privs(draw, COLUMN_PRIVS).replace(',', f' ({col}),')} ({col})"
    elif kind == "sequence":
        target, privs = f"SEQUENCE {draw(st.sampled_from(objects['sequence']))}", _privs(draw, SEQUENCE_PRIVS)
    elif kind == "routine":
        target, privs = draw(st.sampled_from(objects["routine"])), "EXECUTE"
    else:
        target, privs = f"TYPE {draw(st.sampled_from(objects['type']))}", "USAGE"
    if revoke:
        return f"REVOKE {privs} ON {target} FROM {grantee}"
    return f"GRANT {privs} ON {target} TO {grantee}{option}"


def _default(
    draw: st.DrawFn, owners: list[str], schemas: list[str], grantees: st.SearchStrategy[str], types: bool = True
) -> str:
    kind = draw(st.sampled_from([k for k in KINDS if types or k != "TYPES"]))
    role = draw(st.sampled_from(owners))
    grantee = draw(grantees)
    privs = _privs(draw, KIND_PRIVS[kind])
    if grantee == "PUBLIC" and kind in ("FUNCTIONS", "TYPES"):
        return f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} REVOKE {privs} ON {kind} FROM PUBLIC"
    where = f" IN SCHEMA {draw(st.sampled_from(schemas))}" if draw(st.booleans()) else ""
    return f"ALTER DEFAULT PRIVILEGES FOR ROLE {role}{where} GRANT {privs} ON {kind} TO {grantee}"


def build(admin_dsn: str, ex: Example) -> None:
    """Run the example's script as the admin; `\\c DB` switches database as in psql."""
    conn = psycopg.connect(admin_dsn, autocommit=True)
    try:
        for stmt in ex.statements:
            if stmt.startswith("\\c "):
                conn.close()
                conn = psycopg.connect(make_conninfo(admin_dsn, dbname=stmt[3:]), autocommit=True)
            else:
                conn.execute(stmt.encode())
    finally:
        conn.close()


def cleanup(admin_dsn: str, prefix: str) -> None:
    """Drop the example's databases and every role named with its prefix (the owner apply created too)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        like = prefix.replace("_", r"\_") + "%"
        for (db,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,)).fetchall():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        names = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (like,)).fetchall()]
        for role in names:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        for role in names:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# ----------------------------------------------------------------------------------------------------------
# the recorder

_RECORD = Path(__file__).with_name("exactness_record.sql").read_text()


def record(admin_dsn: str, database: str, prefix: str | None, names: Sequence[str] = ()) -> set[Fact]:
    """Every effective privilege of every non-superuser role named with `prefix` (or in `names`), in `database`."""
    like = prefix.replace("_", r"\_") + "%" if prefix is not None else None
    with psycopg.connect(make_conninfo(admin_dsn, dbname=database), autocommit=True) as conn:
        v = conn.info.server_version
        maintain = ["MAINTAIN"] if v >= 170000 else []
        params = {
            "like": like,
            "names": list(names),
            "table_privs": [*TABLE_PRIVS, *maintain],
            "column_privs": list(COLUMN_PRIVS),
            "sequence_privs": list(SEQUENCE_PRIVS),
            "member_modes": ["MEMBER", "USAGE", *(["SET"] if v >= 160000 else []), "MEMBER WITH ADMIN OPTION"],
        }
        facts = {(r, k, o, p) for r, k, o, p in conn.execute(_RECORD, params).fetchall()}
        facts |= _defaults(conn, params)
    return facts


def _defaults(conn: psycopg.Connection[Any], params: dict[str, Any]) -> set[Fact]:
    """What a new object of each kind, made in each schema by each prefixed role, would give whom."""
    rows = conn.execute(
        """
        WITH owners AS (SELECT oid, rolname FROM pg_roles
                        WHERE (rolname LIKE %(like)s OR rolname = ANY(%(names)s)) AND NOT rolsuper),
             kinds(k, obj) AS (VALUES ('r', 'TABLES'), ('S', 'SEQUENCES'), ('f', 'FUNCTIONS'), ('T', 'TYPES')),
             schemas AS (SELECT oid, nspname FROM pg_namespace
                          WHERE nspname !~ '^pg_'
                            AND nspname NOT IN ('information_schema', 'pgwarden', 'pgwarden_ledger')),
             base AS (  -- global defaults, else the built-in ones
                 SELECT o.oid AS owner, o.rolname, k.k, k.obj,
                        coalesce((SELECT d.defaclacl FROM pg_default_acl d
                                  WHERE d.defaclrole = o.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = k.k),
                                 acldefault(CASE k.k WHEN 'r' THEN 'r' WHEN 'S' THEN 's' WHEN 'f' THEN 'f'
                                            ELSE 'T' END::"char", o.oid)) AS acl
                 FROM owners o CROSS JOIN kinds k),
             eff AS (
                 SELECT b.rolname, b.obj, n.nspname,
                        b.acl || coalesce((SELECT d.defaclacl FROM pg_default_acl d
                                           WHERE d.defaclrole = b.owner AND d.defaclnamespace = n.oid
                                             AND d.defaclobjtype = b.k), '{}') AS acl
                 FROM base b CROSS JOIN schemas n)
        SELECT e.rolname, e.nspname || ' ' || e.obj, coalesce(g.rolname, 'PUBLIC'), x.privilege_type, x.is_grantable
        FROM eff e CROSS JOIN LATERAL aclexplode(e.acl) x
        LEFT JOIN pg_roles g ON g.oid = x.grantee
        """,
        params,
    ).fetchall()
    # (grantee, "default", "<owner> <schema> <KIND>", privilege): the owner's own entry says nothing
    return {
        (grantee, "default", f"{owner} {where}", priv + (" WITH GRANT OPTION" if grantable else ""))
        for owner, where, grantee, priv, grantable in rows
        if grantee != owner
    }


# ----------------------------------------------------------------------------------------------------------
# the adoption path, as docs/adopting.md runs it


@dataclass
class Run:
    """What each command of the path printed and returned."""

    steps: list[tuple[list[str], int, str]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)

    def output(self, i: int = 0) -> str:
        return self.steps[i][2]

    def transcript(self) -> str:
        return "\n".join(f"$ pgwarden {' '.join(a)}  -> exit {c}\n{o}" for a, c, o in self.steps)


def pgwarden(args: Sequence[str], env: dict[str, str]) -> tuple[int, str]:
    """`pgwarden ARGS` in this process, as the console script runs it: exit code, stdout + stderr."""
    from pgwarden.cli import main

    out = io.StringIO()
    saved = {k: os.environ.get(k) for k in env}
    code = 0
    try:
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if code == 130:  # the CLI turned our Ctrl-C into its exit code: stop the whole run
            raise KeyboardInterrupt
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue()


def previous_owners(admin_dsn: str, database: str, owner: str) -> list[str]:
    """Roles other than the owner-to-be that own the database or objects in it (adopt moves from each)."""
    with psycopg.connect(make_conninfo(admin_dsn, dbname=database), autocommit=True) as conn:
        rows = conn.execute(_OWNERS, {"owner": owner, "db": database}).fetchall()
    return sorted(r for (r,) in rows)


_OWNERS = """
SELECT DISTINCT pg_get_userbyid(o) FROM (
    SELECT datdba FROM pg_database WHERE datname = %(db)s
    UNION ALL SELECT nspowner FROM pg_namespace
              WHERE nspname !~ '^pg_' AND nspname NOT IN ('information_schema', 'pgwarden', 'pgwarden_ledger')
    UNION ALL SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'pgwarden', 'pgwarden_ledger')
    UNION ALL SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'pgwarden', 'pgwarden_ledger')
    UNION ALL SELECT t.typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'pgwarden', 'pgwarden_ledger')
) AS x(o) WHERE pg_get_userbyid(o) NOT IN (%(owner)s, 'pg_database_owner')  -- that one is the owner, once adopted
"""


def adoption_path(admin_dsn: str, ex: Example, workdir: Path) -> Run:
    """init --from-database, additive apply, adopt from every previous owner, authoritative apply, plan."""
    run = Run()
    policy = workdir / f"{ex.prefix}pgwarden.toml"
    cfg = ["-c", str(policy)]
    env = {"PGWARDEN_DSN": admin_dsn, "NO_COLOR": "1", "COLUMNS": "200"}

    def step(args: list[str]) -> int:
        code, out = pgwarden(args, env)
        run.steps.append((args, code, out))
        return code

    if step(["init", "--from-database", ex.database, "--owner", ex.owner, "-o", str(policy), "--force"]) != 0:
        return run
    run.policy = tomllib.loads(policy.read_text())
    if step(["apply", "--yes", "--mode", "additive", *cfg]) != 0:
        return run
    for role in previous_owners(admin_dsn, ex.database, ex.owner):
        if step(["adopt", "--from", role, "--yes", *cfg]) != 0:
            return run
    if step(["apply", "--yes", *cfg]) != 0:
        return run
    step(["plan", "--exit-code", *cfg])
    return run


def managed_schemas(policy: dict[str, Any]) -> set[str]:
    dbs = policy.get("databases") or [policy.get("database", {})]
    return {s for db in dbs for s in db.get("schemas", ["public"])}


# ----------------------------------------------------------------------------------------------------------
# the comparison


@dataclass
class Outcome:
    example: Example
    run: Run
    lost: list[Fact]
    gained: list[Fact]
    allowed: list[tuple[Fact, str]]
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not (self.lost or self.gained or self.error)

    def describe(self) -> str:
        lines = [f"PostgreSQL {self.example.version}: {self.error}" if self.error else ""]
        lines += [f"  narrowed: {r} {k} {o}: {p}" for r, k, o, p in self.lost]
        lines += [f"  widened:  {r} {k} {o}: {p}" for r, k, o, p in self.gained]
        return "\n".join(line for line in lines if line)


def object_owners(admin_dsn: str, database: str) -> dict[tuple[str, str], str]:
    """(kind, object) -> owner, named as the recorder names objects (columns under their table)."""
    with psycopg.connect(make_conninfo(admin_dsn, dbname=database), autocommit=True) as conn:
        rows = conn.execute(_RECORD_OWNERS, {"db": database}).fetchall()
    owners = {(k, o): r for k, o, r in rows}
    # pg_database_owner (public's owner on 15+) is whoever owns the database
    return {key: owners[("database", database)] if r == "pg_database_owner" else r for key, r in owners.items()}


_RECORD_OWNERS = Path(__file__).with_name("exactness_owners.sql").read_text()


def compare(
    before: set[Fact],
    after: set[Fact],
    owners: dict[tuple[str, str], str],
    members_before: set[Fact],
    owner: str,
    schemas: set[str],
    roles_before: set[str],
    listed: str = "",
) -> tuple[list[Fact], list[Fact], list[tuple[Fact, str]]]:
    """The differences the split does not explain, and the ones it does (with the reason). `listed` is what
    init printed: CREATE taken on a schema the policy does not manage is allowed only when init said so."""
    allowed: list[tuple[Fact, str]] = []
    lost, gained = [], []
    for fact in sorted(before - after):
        why = _why_lost(fact, owners, members_before, owner, schemas, listed)
        (allowed.append((fact, why)) if why else lost.append(fact))
    for fact in sorted(after - before):
        role = fact[0]
        if role == owner:
            allowed.append((fact, "the owner owns it now"))
        elif role not in roles_before and role != "PUBLIC":
            allowed.append((fact, "a role the policy created"))
        else:
            gained.append(fact)
    return lost, gained, allowed


def _why_lost(
    fact: Fact, owners: dict[tuple[str, str], str], members: set[Fact], owner: str, schemas: set[str], listed: str
) -> str:
    role, kind, obj, priv = fact
    if role == owner:
        return ""
    if kind in ("schema", "database") and priv.startswith("CREATE") and (kind == "database" or obj in schemas):
        return f"CREATE on the {kind}: only the owner may create"
    if kind == "schema" and priv.startswith("CREATE") and f"CREATE in schema {obj}" in listed:
        return f"CREATE on schema {obj}, not managed: init listed that plan revokes it"
    key = ("table", obj.rsplit(".", 1)[0]) if kind == "column" else (kind, obj)
    was = owners.get(key)
    if kind == "default" and obj.split()[0] != owner:
        return f"default privileges of {obj.split()[0]}: after the split only the owner creates objects"
    if was and was != owner and (role == was or (role, "member", was, "USAGE") in members):
        return f"held as owner (or through the owner {was}) of {kind} {obj}"
    return ""


def check_example(admin_dsn: str, ex: Example, workdir: Path) -> Outcome:
    """Build, record, adopt, record, compare; always cleans up."""
    t0 = time.monotonic()
    cleanup(admin_dsn, ex.prefix)  # a run killed half-way leaves its example behind
    try:
        build(admin_dsn, ex)
        before = record(admin_dsn, ex.database, ex.prefix)
        owners = object_owners(admin_dsn, ex.database)
        roles_before = {f[0] for f in before} | set(ex.roles) | ({ex.owner} if ex.owner_exists else set())
        run = adoption_path(admin_dsn, ex, workdir)
        codes = [c for _, c, _ in run.steps]
        error = ""
        if not run.steps or codes[-1] != 0 or len(run.steps) < 4 or run.steps[-1][0][0] != "plan":
            error = "the adoption path failed:\n" + run.transcript()
        after = record(admin_dsn, ex.database, ex.prefix)
        if not ex.owner_exists:  # its built-in defaults did not exist before: nothing to compare them with
            after = {f for f in after if not (f[1] == "default" and f[2].split()[0] == ex.owner)}
        members = {f for f in before if f[1] == "member"}
        schemas = managed_schemas(run.policy) if run.policy else set()
        listed = run.output(0) if run.steps else ""
        lost, gained, allowed = compare(before, after, owners, members, ex.owner, schemas, roles_before, listed)
        return Outcome(ex, run, lost, gained, allowed, time.monotonic() - t0, error)
    finally:
        cleanup(admin_dsn, ex.prefix)
