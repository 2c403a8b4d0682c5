"""`run_probe(session, ...) -> ProbeResult`: act as each policy role, try what it must and must not do, roll back.

Library use (the demo calls it):

    with Session.open(dsn, policy) as session:
        result = run_probe(session, login=False, passwords=None, max_objects=200)
    result.ok, result.failures, result.matrix(), result.to_json(), render_junit(result)

Every attempt runs under a SAVEPOINT inside one transaction per role that is always rolled back.
"Denied" means SQLSTATE 42501 (insufficient privilege, which includes "must be owner"); any other
error is a failure of the probe. Sequences are never advanced: SELECT is tried with
`SELECT last_value`, while USAGE (nextval) and UPDATE (setval) are asked of the server
(`has_sequence_privilege`) because calling them would change the sequence outside the transaction.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pgwarden.connect import connect, conninfo_for
from pgwarden.errors import ConnectError
from pgwarden.findings import display_name
from pgwarden.policy import Policy

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session

Outcome = Literal["allowed", "denied", "error", "skipped"]
Level = Literal["owner", "readwrite", "readonly"]

#: Actions in display order, with the levels that are expected to be allowed to do them.
ACTIONS: tuple[str, ...] = (
    "connect",
    "create-table",
    "create-schema",
    "create-temp-table",
    "alter-table",
    "drop-table",
    "truncate",
    "grant-to-public",
    "select",
    "insert",
    "update",
    "delete",
    "sequence-select",
    "sequence-usage",
    "sequence-update",
    "execute",
)
_ACCESS_ALLOWED: Mapping[str, frozenset[str]] = {
    "readwrite": frozenset(
        {"connect", "select", "insert", "update", "delete", "sequence-select", "sequence-usage", "execute"}
    ),
    "readonly": frozenset({"connect", "select", "sequence-select", "execute"}),
}
DEFAULT_MAX_OBJECTS = 200
DENIED_SQLSTATE = "42501"


def expected(policy: Policy, level: str, action: str) -> bool:
    """Whether the policy says a role of `level` may do `action`."""
    if level == "owner":
        return True
    if action == "create-temp-table":
        return not policy.hardening.revoke_public_connect
    return action in _ACCESS_ALLOWED[level]


@dataclass(frozen=True)
class Attempt:
    """One try: who, what, on which object, what the policy expects, what the server said."""

    role: str
    level: str
    action: str
    object: str
    expected: bool
    outcome: Outcome
    method: Literal["attempt", "inquiry"] = "attempt"
    sqlstate: str | None = None
    message: str | None = None
    count: int = 1  # inquiries that agree with the policy are summed up in one record

    @property
    def ok(self) -> bool:
        if self.outcome in ("error", "skipped"):
            return False
        return (self.outcome == "allowed") == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "action": self.action,
            "object": self.object,
            "expected": "allowed" if self.expected else "denied",
            "outcome": self.outcome,
            "ok": self.ok,
            "method": self.method,
            "sqlstate": self.sqlstate,
            "message": self.message,
            "count": self.count,
        }


@dataclass(frozen=True)
class Cell:
    """The matrix cell for (role, action): allowed, denied or mixed over its objects."""

    role: str
    level: str
    action: str
    outcome: str
    expected: str
    ok: bool
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "action": self.action,
            "outcome": self.outcome,
            "expected": self.expected,
            "ok": self.ok,
            "count": self.count,
        }


@dataclass(frozen=True)
class ProbeResult:
    database: str
    server_version: str
    mode: Literal["set-role", "login"]
    attempts: tuple[Attempt, ...]
    notes: tuple[str, ...] = ()

    @property
    def failures(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.attempts if not a.ok)

    @property
    def ok(self) -> bool:
        return not self.failures

    def roles(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((a.role, a.level) for a in self.attempts))

    def matrix(self) -> list[Cell]:
        cells: list[Cell] = []
        for role, level in self.roles():
            for action in ACTIONS:
                rows = [a for a in self.attempts if a.role == role and a.action == action]
                if not rows:
                    continue
                outcomes = {a.outcome for a in rows}
                outcome = outcomes.pop() if len(outcomes) == 1 else ("error" if "error" in outcomes else "mixed")
                exp = {a.expected for a in rows}
                cells.append(
                    Cell(
                        role,
                        level,
                        action,
                        outcome,
                        ("allowed" if exp.pop() else "denied") if len(exp) == 1 else "mixed",
                        all(a.ok for a in rows),
                        sum(a.count for a in rows),
                    )
                )
        return cells

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "mode": self.mode,
            "ok": self.ok,
            "summary": {
                "attempts": len(self.attempts),
                "objects": sum(a.count for a in self.attempts),
                "failures": len(self.failures),
            },
            "matrix": [c.to_dict() for c in self.matrix()],
            "attempts": [a.to_dict() for a in self.attempts],
            "notes": list(self.notes),
        }


# --- targets -------------------------------------------------------------------------------------------

_TARGETS_SQL = """
SELECT 'relation' AS what, n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, c.relkind::text AS subkind,
       (SELECT a.attname FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1)::text AS col,
       NULL::text[] AS argtypes
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname = ANY(%(schemas)s)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'function', n.nspname, p.proname, p.oid::int8, p.prokind::text, NULL,
       ARRAY(SELECT pg_catalog.format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_type rt ON rt.oid = p.prorettype
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind = 'f' AND p.provariadic = 0 AND rt.typtype <> 'p'
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t JOIN pg_catalog.pg_type ty ON ty.oid = t
                  WHERE ty.typtype = 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class Target:
    what: str  # relation | function
    schema: str
    name: str
    oid: int
    subkind: str
    col: str | None
    argtypes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        base = display_name(self.schema, self.name)
        return f"{base}({', '.join(self.argtypes)})" if self.what == "function" else base


@dataclass(frozen=True)
class Targets:
    schemas: tuple[str, ...]
    tables: tuple[Target, ...]  # relkind r, p: every DML action
    readables: tuple[Target, ...]  # views, materialized views, foreign tables: SELECT only
    sequences: tuple[Target, ...]
    functions: tuple[Target, ...]
    max_objects: int = DEFAULT_MAX_OBJECTS
    notes: tuple[str, ...] = field(default=())


def read_targets(conn: psycopg.Connection[Any], schemas: Sequence[str], max_objects: int) -> Targets:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_TARGETS_SQL, {"schemas": list(schemas)}).fetchall()
    found = [
        Target(r["what"], r["schema"], r["name"], int(r["oid"]), r["subkind"], r["col"], tuple(r["argtypes"] or ()))
        for r in rows
    ]
    existing = {r["schema"] for r in rows}
    return Targets(
        tuple(schemas),
        tuple(t for t in found if t.what == "relation" and t.subkind in ("r", "p")),
        tuple(t for t in found if t.what == "relation" and t.subkind in ("v", "m", "f")),
        tuple(t for t in found if t.subkind == "S"),
        tuple(t for t in found if t.what == "function"),
        max_objects,
        tuple(f"schema {s} has no table, sequence or function to probe" for s in schemas if s not in existing),
    )


# --- attempts ----------------------------------------------------------------------------------------------


_ACL_SQL = "SELECT relacl::text FROM pg_catalog.pg_class WHERE oid = %s"


class _Prober:
    """Runs the attempts of one role on one connection, inside a transaction rolled back at the end."""

    def __init__(self, conn: psycopg.Connection[Any], policy: Policy, role: str, level: str, targets: Targets) -> None:
        self.conn, self.policy, self.role, self.level, self.targets = conn, policy, role, level, targets
        self.attempts: list[Attempt] = []
        self.tag = "pgwarden_probe_" + _secrets.token_hex(4)
        self._questions: dict[tuple[str, str], list[tuple[str, str, int]]] = {}

    def record(
        self,
        action: str,
        obj: str,
        outcome: Outcome,
        method: Literal["attempt", "inquiry"] = "attempt",
        sqlstate: str | None = None,
        message: str | None = None,
        count: int = 1,
    ) -> None:
        self.attempts.append(
            Attempt(
                self.role,
                self.level,
                action,
                obj,
                expected(self.policy, self.level, action),
                outcome,
                method,
                sqlstate,
                message,
                count,
            )
        )

    def attempt(
        self, action: str, obj: str, statement: Any, params: Sequence[Any] | None = None, after: Any = None
    ) -> None:
        """Run `statement` under a savepoint, always rolled back; `after(cur)` may turn success into denial."""
        import psycopg

        try:
            with self.conn.transaction(force_rollback=True):
                with self.conn.cursor() as cur:
                    cur.execute(statement, params)
                    if after is not None and not after(cur):
                        self.record(action, obj, "denied", message="no privilege was granted")
                        return
            self.record(action, obj, "allowed")
        except psycopg.errors.InsufficientPrivilege as exc:
            self.record(action, obj, "denied", sqlstate=exc.sqlstate, message=_first_line(exc))
        except psycopg.Error as exc:
            self.record(action, obj, "error", sqlstate=exc.sqlstate, message=_first_line(exc))

    def inquire(self, action: str, obj: str, function: str, oid: int, privilege: str) -> None:
        """Queue a question for the server's privilege inquiry function; answered in bulk by flush()."""
        self._questions.setdefault((function, privilege), []).append((action, obj, oid))

    def flush(self) -> None:
        """Answer every queued question with one set-based query per (function, privilege), as the
        current role: no per-object round trip, whatever the number of objects."""
        import psycopg
        from psycopg import sql

        for (function, privilege), items in self._questions.items():
            query = sql.SQL(
                "SELECT {}(t.oid, {}) FROM unnest(%s::oid[]) WITH ORDINALITY AS t(oid, n) ORDER BY t.n"
            ).format(sql.Identifier("pg_catalog", function), sql.Literal(privilege))
            try:
                with self.conn.transaction(force_rollback=True):
                    rows = self.conn.execute(query, ([oid for _, _, oid in items],)).fetchall()
            except psycopg.Error as exc:
                for action, obj, _ in items:
                    self.record(action, obj, "error", method="inquiry", sqlstate=exc.sqlstate, message=_first_line(exc))
                continue
            # Answers that agree with the policy become one record per action (memory stays flat
            # at 100,000 objects); every disagreeing or failed object keeps a record of its own.
            agreeing: dict[tuple[str, Outcome], int] = {}
            for (action, obj, _), (held,) in zip(items, rows, strict=True):
                if held is None:  # dropped while probing
                    self.record(action, obj, "error", method="inquiry", message="object no longer exists")
                    continue
                outcome: Outcome = "allowed" if held else "denied"
                if (outcome == "allowed") == expected(self.policy, self.level, action):
                    agreeing[(action, outcome)] = agreeing.get((action, outcome), 0) + 1
                else:
                    self.record(action, obj, outcome, method="inquiry")
            for (action, outcome), n in agreeing.items():
                self.record(action, f"{n} object(s) (server's privilege inquiry)", outcome, method="inquiry", count=n)
        self._questions.clear()

    def run(self) -> None:
        from psycopg import sql

        t, bound = self.targets, self.targets.max_objects
        tag = sql.Identifier(self.tag)
        for schema in t.schemas:
            self.attempt(
                "create-table",
                f"schema {schema}",
                sql.SQL("CREATE TABLE {} (id integer)").format(sql.Identifier(schema, self.tag)),
            )
        self.attempt("create-schema", f"database {self.policy.database.name}", sql.SQL("CREATE SCHEMA {}").format(tag))
        self.attempt(
            "create-temp-table",
            f"database {self.policy.database.name}",
            sql.SQL("CREATE TEMPORARY TABLE {} (id integer)").format(tag),
        )
        # DDL on one table per schema: enough to prove ownership, and each takes an exclusive lock.
        firsts = {tb.schema: tb for tb in reversed(t.tables)}
        for schema in t.schemas:
            tb = firsts.get(schema)
            if tb is None:
                continue
            ident = sql.Identifier(tb.schema, tb.name)
            self.attempt("alter-table", tb.label, sql.SQL("ALTER TABLE {} ADD COLUMN {} integer").format(ident, tag))
            self.attempt("drop-table", tb.label, sql.SQL("DROP TABLE {} CASCADE").format(ident))
            self.attempt("truncate", tb.label, sql.SQL("TRUNCATE {} CASCADE").format(ident))
            before = self.conn.execute(_ACL_SQL, (tb.oid,)).fetchone()

            def changed(cur: Any, oid: int = tb.oid, was: Any = before) -> bool:
                # A non-owner's GRANT only warns "no privileges were granted": compare the ACL.
                return bool(cur.execute(_ACL_SQL, (oid,)).fetchone() != was)

            self.attempt(
                "grant-to-public", tb.label, sql.SQL("GRANT SELECT ON TABLE {} TO PUBLIC").format(ident), after=changed
            )
        for i, tb in enumerate(t.tables):
            ident = sql.Identifier(tb.schema, tb.name)
            if i >= bound:
                for action, priv in (
                    ("select", "SELECT"),
                    ("insert", "INSERT"),
                    ("update", "UPDATE"),
                    ("delete", "DELETE"),
                ):
                    self.inquire(action, tb.label, "has_table_privilege", tb.oid, priv)
                continue
            self.attempt("select", tb.label, sql.SQL("SELECT 1 FROM {} WHERE false").format(ident))
            self.attempt("insert", tb.label, sql.SQL("INSERT INTO {} SELECT WHERE false").format(ident))
            if tb.col is not None:
                self.attempt(
                    "update",
                    tb.label,
                    sql.SQL("UPDATE {} SET {} = DEFAULT WHERE false").format(ident, sql.Identifier(tb.col)),
                )
            self.attempt("delete", tb.label, sql.SQL("DELETE FROM {} WHERE false").format(ident))
        for i, rv in enumerate(t.readables):
            if i >= bound:
                self.inquire("select", rv.label, "has_table_privilege", rv.oid, "SELECT")
            else:
                self.attempt(
                    "select",
                    rv.label,
                    sql.SQL("SELECT 1 FROM {} WHERE false").format(sql.Identifier(rv.schema, rv.name)),
                )
        for i, sq in enumerate(t.sequences):
            if i >= bound:
                self.inquire("sequence-select", sq.label, "has_sequence_privilege", sq.oid, "SELECT")
            else:
                self.attempt(
                    "sequence-select",
                    sq.label,
                    sql.SQL("SELECT last_value FROM {}").format(sql.Identifier(sq.schema, sq.name)),
                )
            # nextval/setval are not transactional: ask the server instead of calling them.
            self.inquire("sequence-usage", sq.label, "has_sequence_privilege", sq.oid, "USAGE")
            self.inquire("sequence-update", sq.label, "has_sequence_privilege", sq.oid, "UPDATE")
        for i, fn in enumerate(t.functions):
            if i >= bound:
                self.inquire("execute", fn.label, "has_function_privilege", fn.oid, "EXECUTE")
                continue
            # EXECUTE is checked when the executor initialises the call, which a false one-time
            # filter then never runs; arguments come from a materialized CTE so the planner cannot
            # fold (and so call) the function.
            args = [
                sql.SQL("NULL::{} AS {}").format(sql.SQL(ty), sql.Identifier(f"a{n}"))
                for n, ty in enumerate(fn.argtypes)
            ]
            cte = sql.SQL("SELECT {}").format(sql.SQL(", ").join(args)) if args else sql.SQL("SELECT")
            call = sql.SQL("{}({})").format(
                sql.Identifier(fn.schema, fn.name),
                sql.SQL(", ").join(sql.Identifier("a", f"a{n}") for n in range(len(fn.argtypes))),
            )
            self.attempt(
                "execute",
                fn.label,
                sql.SQL("WITH a AS MATERIALIZED ({}) SELECT {} FROM a WHERE false").format(cte, call),
            )
        self.flush()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextmanager
def _role_transaction(conn: psycopg.Connection[Any], role: str | None) -> Iterator[None]:
    from psycopg import sql

    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL lock_timeout = '2s'")
        conn.execute("SET LOCAL statement_timeout = '30s'")
        if role is not None:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        yield


def policy_roles(policy: Policy) -> list[tuple[str, str, str | None]]:
    """(role, level, password env) for the owner and every access role, in policy order."""
    out: list[tuple[str, str, str | None]] = [(policy.owner.name, "owner", policy.owner.password_env)]
    out.extend((a.name, a.level, a.password_env) for a in policy.access)
    return out


def run_probe(
    session: Session,
    *,
    login: bool = False,
    passwords: Mapping[str, str] | None = None,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    roles: Sequence[str] | None = None,
    on_role: Callable[[str, int, int], None] | None = None,
) -> ProbeResult:
    """Act as each policy role (SET ROLE from the admin, or log in with `passwords`, keyed by
    password environment variable name) and try every action; nothing is left behind.
    `max_objects` bounds the objects of each kind that are tried; the rest are asked of the server.
    `on_role(role, done, total)` is called as each role starts (progress)."""
    import psycopg

    policy = session.policy
    if not session.target_exists():
        raise ConnectError(f"database {policy.database.name} does not exist", hint="run `pgwarden apply` first")
    passwords = passwords or {}
    attempts: list[Attempt] = []
    with session.connect_target(autocommit=True) as admin:
        targets = read_targets(admin, policy.database.schemas, max_objects)
        version = str(admin.execute("SELECT current_setting('server_version')").fetchone()[0])  # type: ignore[index]
        chosen = [r for r in policy_roles(policy) if roles is None or r[0] in roles]
        for number, (role, level, env) in enumerate(chosen):
            if on_role is not None:
                on_role(role, number, len(chosen))
            if not login:
                prober = _Prober(admin, policy, role, level, targets)
                try:
                    with _role_transaction(admin, role):
                        prober.run()
                except psycopg.Error as exc:
                    prober.record(
                        "connect",
                        f"role {role}",
                        "error",
                        sqlstate=exc.sqlstate,
                        message=f"SET ROLE: {_first_line(exc)}",
                    )
                attempts.extend(prober.attempts)
                continue
            password = passwords.get(env) if env else None
            prober_obj = f"database {policy.database.name}"
            if password is None:
                attempts.append(
                    Attempt(
                        role,
                        level,
                        "connect",
                        prober_obj,
                        True,
                        "skipped",
                        message=f"no password: set ${env}" if env else "no password_env in the policy",
                    )
                )
                continue
            try:
                conn = connect(
                    conninfo_for(session.dsn, dbname=policy.database.name, user=role, password=password),
                    what=f"{role} on {policy.database.name}",
                )
            except ConnectError as exc:
                attempts.append(
                    Attempt(
                        role,
                        level,
                        "connect",
                        prober_obj,
                        expected(policy, level, "connect"),
                        "denied",
                        message=exc.message,
                    )
                )
                continue
            with conn:
                prober = _Prober(conn, policy, role, level, targets)
                prober.record("connect", prober_obj, "allowed")
                with _role_transaction(conn, None):
                    prober.run()
                attempts.extend(prober.attempts)
    return ProbeResult(policy.database.name, version, "login" if login else "set-role", tuple(attempts), targets.notes)
