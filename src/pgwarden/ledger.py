"""The ledger: what pgwarden changed, by whom, when, in a schema of each managed database only the admin writes."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pgwarden import __version__
from pgwarden.fingerprint import LEDGER_SCHEMA, ROLE_PARTS, Fingerprint, describe_parts, fingerprint
from pgwarden.hooks import ApplyHooks

if TYPE_CHECKING:
    import psycopg

    from pgwarden.apply import ApplyResult
    from pgwarden.findings import Finding
    from pgwarden.plan import Plan, Step
    from pgwarden.policy import Policy
    from pgwarden.policy.temporary import TemporarySpec
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot

S = sql.Identifier(LEDGER_SCHEMA)

#: The ledger's tables. Owned by the admin that creates them (the owner is not a member of it, so it
#: cannot rewrite them); PUBLIC, and so every access role, has nothing on them.
DDL = [
    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(S),
    sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(S),
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS {}.entries ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " at timestamptz NOT NULL DEFAULT clock_timestamp(),"
        " action text NOT NULL,"
        " outcome text NOT NULL,"
        " database text NOT NULL DEFAULT current_database(),"
        " session_user_name text NOT NULL DEFAULT session_user,"
        " os_user text, host text, pgwarden_version text, policy_digest text,"
        " steps jsonb NOT NULL DEFAULT '[]',"
        " detail jsonb NOT NULL DEFAULT '{{}}',"
        " fingerprint jsonb)"
    ).format(S),
    sql.SQL("REVOKE ALL ON TABLE {}.entries FROM PUBLIC").format(S),
    # grants with an end (pgwarden.elevate): one row each; `grp` is NULL for a break-glass login
    sql.SQL(
        "CREATE TABLE IF NOT EXISTS {}.grants ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " kind text NOT NULL, role text NOT NULL, grp text, until timestamptz NOT NULL, reason text NOT NULL,"
        " opened_entry bigint, ended_at timestamptz, ended_entry bigint)"
    ).format(S),
    sql.SQL("REVOKE ALL ON TABLE {}.grants FROM PUBLIC").format(S),
]

ENTRY_COLUMNS = sql.SQL(
    "id, at, action, outcome, database, session_user_name, os_user, host, pgwarden_version, "
    "policy_digest, steps, detail"
)


def who() -> dict[str, str]:
    """The OS side of who ran it (the session user is the server's to say)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return {"os_user": user, "host": socket.gethostname(), "pgwarden_version": __version__}


def ensure(conn: psycopg.Connection[Any]) -> bool:
    """Create the ledger if need be (in the caller's transaction); False when the connected role
    may neither write an existing ledger nor create one (then nothing is tried, nothing aborts)."""
    exists, writable = access(conn)
    if not writable:
        return False
    if not exists:
        for statement in DDL:
            conn.execute(statement)
    return True


#: Whether the ledger's tables exist and the connected role may write them (or create them), from
#: the catalogs: naming a table in a schema without USAGE would raise, and abort the caller's transaction.
_ACCESS = """
SELECT e.oid IS NOT NULL AND g.oid IS NOT NULL,
       CASE WHEN n.oid IS NULL THEN has_database_privilege(current_database(), 'CREATE')
            WHEN e.oid IS NULL OR g.oid IS NULL THEN has_schema_privilege(n.oid, 'USAGE, CREATE')
            ELSE has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(e.oid, 'INSERT')
                 AND has_table_privilege(g.oid, 'SELECT, INSERT, UPDATE') END
FROM (SELECT 1) AS one
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = %(schema)s
LEFT JOIN pg_catalog.pg_class e ON e.relnamespace = n.oid AND e.relname = 'entries'
LEFT JOIN pg_catalog.pg_class g ON g.relnamespace = n.oid AND g.relname = 'grants'
"""


def access(conn: psycopg.Connection[Any]) -> tuple[bool, bool]:
    """(the ledger exists, the connected role may write it, or create it when it does not)."""
    row = conn.execute(_ACCESS, {"schema": LEDGER_SCHEMA}).fetchone()
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def write(
    conn: psycopg.Connection[Any],
    action: str,
    outcome: str,
    *,
    steps: Sequence[Step] = (),
    raw_steps: Sequence[Mapping[str, Any]] = (),
    detail: Mapping[str, Any] | None = None,
    digest: str | None = None,
    after: Fingerprint | None = None,
) -> int | None:
    """One entry, in the caller's transaction; its id, or None when the ledger cannot be written."""
    if not ensure(conn):
        return None
    w = who()
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {}.entries (action, outcome, os_user, host, pgwarden_version, policy_digest, steps, "
            "detail, fingerprint) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb) RETURNING id"
        ).format(S),
        (
            action,
            outcome,
            w["os_user"],
            w["host"],
            w["pgwarden_version"],
            digest,
            json.dumps([*(s.to_dict() for s in steps), *raw_steps]),
            json.dumps(dict(detail or {})),
            json.dumps(after.to_dict()) if after is not None else None,
        ),
    ).fetchone()
    return int(row[0]) if row else None


def record_adoption(conn: psycopg.Connection[Any], objects: Sequence[str], to_role: str) -> None:
    """One batch of `adopt`, in the batch's transaction (each batch commits on its own)."""
    write(conn, "adopt", "committed", detail={"to": to_role, "objects": list(objects), "count": len(objects)})


@dataclass
class LedgerHooks(ApplyHooks):
    """apply's ledger: the entry is written in the database part's transaction (it exists exactly
    when the change committed); after a failure or an interruption, an entry of its own says what
    was kept, or none is written when nothing was."""

    session: Session
    digest: str | None = None
    action: str = "apply"
    detail: dict[str, Any] = field(default_factory=dict)
    #: `pgwarden expire`'s work (elevate.expire_all), run first under the cluster lock when something is due (apply
    #: passes it; apply --plan does not). Passed in rather than imported: elevate records in this ledger.
    expire: Callable[[psycopg.Connection[Any], Sequence[TemporarySpec]], Sequence[Any]] | None = None
    entry: int | None = field(default=None, init=False)
    notes: list[str] = field(default_factory=list, init=False)

    def needs_cluster_lock(self, session: Session, first: Plan) -> bool:
        """Only when something expired is to be ended (expire changes memberships: cluster-wide)."""
        return self._due(session)

    def _due(self, session: Session) -> bool:
        state: LedgerState | None = session.ledger
        now = dt.datetime.now(dt.UTC)
        due = bool(state and state.expired) or any(t.until <= now for t in session.policy.temporary)
        return self.expire is not None and due

    def before(self, session: Session, first: Plan) -> None:
        """What expired is ended before anything runs: only when the plan's ledger read (no query
        more) or the policy's [[temporary]] says something is due."""
        import psycopg

        from pgwarden.errors import PgwardenError

        if self.expire is None or not self._due(session) or not session.target_exists():
            return
        try:
            with session.connect_target() as conn:
                ended = self.expire(conn, session.policy.temporary)
        except (PgwardenError, psycopg.Error) as exc:  # apply goes on; its own errors speak for themselves
            self.notes.append(f"expire was skipped: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")
            return
        for e in ended:
            self.notes.append(
                f"expired: {e.grant.role} in {e.grant.group or '(login)'} (until {e.grant.until}); "
                f"{e.terminated} session(s) ended"
            )

    def before_commit(self, conn: psycopg.Connection[Any], result: ApplyResult) -> None:
        after = fingerprint(self.session.snapshot(conn)) if result.executed else None
        self.entry = write(
            conn, self.action, "committed", steps=result.executed, detail=self.detail, digest=self.digest, after=after
        )
        if self.entry is None:
            result.notes.append(
                f"the ledger was not written: the admin may not write (or create) schema {LEDGER_SCHEMA} "
                f"in {result.plan.database}"
            )

    def after(self, session: Session, result: ApplyResult | None, error: BaseException | None) -> None:
        if error is None or result is None:
            return
        try:
            self._after_failure(result, error)
        except Exception:  # noqa: BLE001 - the apply's own error is what the user must hear
            pass

    def _after_failure(self, result: ApplyResult, error: BaseException) -> None:
        from pgwarden.plan import Phase

        if not self.session.target_exists():
            return
        with self.session.connect_target(autocommit=False) as conn:
            if self.entry is not None and _exists(conn, self.entry):
                return  # interrupted after COMMIT: the entry written inside the transaction is the truth
            kept = [s for s in result.executed if s.phase != Phase.DATABASE]
            if not kept:
                return  # nothing committed: no entry (nothing happened)
            message = str(error) or type(error).__name__
            detail = {**self.detail, "error": message, "database_part": "rolled back"}
            with conn.transaction():
                write(conn, self.action, "partial", steps=kept, detail=detail, digest=self.digest)


def _exists(conn: psycopg.Connection[Any], entry: int) -> bool:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}.entries WHERE id = %s").format(S), (entry,)).fetchone()
    conn.rollback()
    return bool(row and row[0])


@dataclass(frozen=True)
class Entry:
    id: int
    at: dt.datetime
    action: str
    outcome: str
    database: str
    session_user: str
    os_user: str | None
    host: str | None
    pgwarden_version: str | None
    policy_digest: str | None
    steps: list[dict[str, Any]]
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "action": self.action,
            "outcome": self.outcome,
            "database": self.database,
            "session_user": self.session_user,
            "os_user": self.os_user,
            "host": self.host,
            "pgwarden_version": self.pgwarden_version,
            "policy_digest": self.policy_digest,
            "steps": self.steps,
            "detail": self.detail,
        }

    def label(self) -> str:
        return f"#{self.id} ({self.action} by {self.session_user} at {self.at.isoformat(timespec='seconds')})"


def read(conn: psycopg.Connection[Any], limit: int = 50) -> list[Entry]:
    """The newest entries first; none when there is no ledger."""
    if not _present(conn):
        return []
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {}.entries ORDER BY id DESC LIMIT %s").format(ENTRY_COLUMNS, S), (limit,)
    ).fetchall()
    return [Entry(*r) for r in rows]


def _present(conn: psycopg.Connection[Any]) -> bool:
    from pgwarden.errors import PrivilegeError

    row = conn.execute(
        "SELECT n.oid IS NOT NULL, coalesce(has_schema_privilege(n.oid, 'USAGE'), true) FROM (SELECT 1) AS one "
        "LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = %s",
        (LEDGER_SCHEMA,),
    ).fetchone()
    if row and row[0] and not row[1]:
        raise PrivilegeError(
            f"the connected role may not read the ledger (schema {LEDGER_SCHEMA} of {conn.info.dbname})",
            hint=f"connect as the admin, or GRANT USAGE ON SCHEMA {LEDGER_SCHEMA} and SELECT on its tables "
            "to an auditor",
        )
    return bool(row and row[0])


#: the last entry without its steps and detail, which check never shows: an apply's steps at 100k
#: tables are ~10 MB of JSON the server would build and the client decode only to drop them
_STATE_COLUMNS = sql.SQL(
    "id, at, action, outcome, database, session_user_name, os_user, host, pgwarden_version, policy_digest"
)
#: check's one query: the last entry that recorded the state, the elevations in force and those past
#: their end that are still there (a membership, or a break-glass role that can still log in).
_STATE = sql.SQL(
    "SELECT (SELECT row_to_json(e) FROM (SELECT {cols}, fingerprint FROM {s}.entries WHERE fingerprint IS NOT NULL "
    "ORDER BY id DESC LIMIT 1) e), "
    "(SELECT coalesce(json_agg(json_build_array(g.role, g.grp)), '[]') FROM {s}.grants g "
    " WHERE g.kind IN ('elevation', 'login') AND g.ended_at IS NULL AND g.until > now()), "
    "(SELECT coalesce(json_agg(json_build_array(g.kind, g.role, g.grp, g.until, g.reason)), '[]') FROM {s}.grants g "
    " WHERE g.ended_at IS NULL AND g.until <= now() AND CASE WHEN g.kind = 'break-glass' "
    " THEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g.role AND r.rolcanlogin) "
    " ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles "
    " WHERE rolname = g.grp) AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = g.role)) END), "
    "(SELECT coalesce(json_agg(g.role), '[]') FROM {s}.grants g "
    " WHERE g.kind = 'break-glass' AND g.ended_at IS NULL AND g.until > now())"
)


@dataclass(frozen=True)
class LedgerState:
    last: dict[str, Any] | None = None  # the last entry with a fingerprint, as JSON
    elevated: frozenset[tuple[str, str]] = frozenset()  # (role, group) in force
    opened: frozenset[str] = frozenset()  # break-glass roles inside their window
    expired: tuple[tuple[str, str, str | None, str, str], ...] = ()  # (kind, role, group, until, reason)


def read_state(conn: psycopg.Connection[Any], snap: Snapshot) -> LedgerState:
    """One query when the database has a ledger (the snapshot says whether), none otherwise."""
    import psycopg

    if snap.schema_by_name(LEDGER_SCHEMA) is None:
        return LedgerState()
    try:
        row = conn.execute(_STATE.format(cols=_STATE_COLUMNS, s=S)).fetchone()
    except psycopg.Error:  # an auditor that may not read it: nothing to compare
        if not conn.autocommit:
            conn.rollback()
        return LedgerState()
    if row is None:
        return LedgerState()
    elevated = frozenset((r, g) for r, g in row[1])
    return LedgerState(row[0], elevated, frozenset(row[3]), tuple(tuple(x) for x in row[2]))


def expired_findings(state: LedgerState) -> list[Finding]:
    """Elevations and break-glass windows past their end that are still open."""
    from pgwarden.findings import Finding

    out: list[Finding] = []
    for kind, role, group, until, reason in state.expired:
        glass = kind == "break-glass"
        what = f"break-glass login of {role}" if glass else f"membership of {role} in {group}"
        fix = (
            sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group or ""), sql.Identifier(role))
            if not glass
            else sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role))
        )
        message = f"the {what} ended at {until} ({reason}) and is still there: run `pgwarden expire`"
        out.append(
            Finding(
                "break-glass.expired" if glass else "elevation.expired",
                "high",
                f"role {role}",
                role,
                message,
                fix.as_string(None),
            )
        )
    return out


def outside_report(policy: Policy, snap: Snapshot, state: LedgerState) -> dict[str, Any] | None:
    """What changed since the last entry that recorded the state, naming that entry; None when
    nothing did (or there is no ledger). Check says it next to its findings: the drift findings say
    what is wrong, this says it was not pgwarden, and since when."""
    if state.last is None:
        return None
    values: dict[str, Any] = {k: state.last.get(k) for k in _ENTRY_KEYS} | {"steps": [], "detail": {}}  # not read
    values["at"] = dt.datetime.fromisoformat(str(values["at"]))
    last = Entry(*values.values())
    changed = Fingerprint(fingerprint(snap).parts).changed(state.last["fingerprint"]["parts"])
    elevated = {f"membership:{group}:{role}" for role, group in state.elevated}  # recorded, in force
    changed = [k for k in changed if _relevant(k, policy) and k not in elevated]
    if not changed:
        return None
    return {
        "since": {k: v for k, v in last.to_dict().items() if k not in ("steps", "detail")},
        "changed": changed,
        "message": f"changed outside pgwarden since the last recorded change {last.label()}: {describe_parts(changed)}",
    }


_ENTRY_KEYS = (
    "id",
    "at",
    "action",
    "outcome",
    "database",
    "session_user_name",
    "os_user",
    "host",
    "pgwarden_version",
    "policy_digest",
    "steps",
    "detail",
)


#: The grants on the cluster's other databases: each database's own ledger records what pgwarden does
#: to it (its `database` part), and one run over several databases changes each in turn, after the
#: ones before it recorded their state: in this database's report they would be "changed outside
#: pgwarden" when pgwarden changed them (tests/test_multi_v2.py).
OTHER_DATABASES = "outside:database"


def _relevant(key: str, policy: Policy) -> bool:
    """Role parts count for the policy's roles only: other roles of the cluster come and go. Other
    databases' grants are their own reports'."""
    if key == OTHER_DATABASES:
        return False
    if not key.startswith(ROLE_PARTS):
        return True
    names = key.split(":")[1:]
    return any(n in policy.role_names for n in names)
