"""Time-bound access: elevations (a membership with an end) and break-glass logins (LOGIN ... VALID UNTIL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pgwarden.errors import PgwardenError, PrivilegeError
from pgwarden.fingerprint import LEDGER_SCHEMA
from pgwarden.ledger import write

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from pgwarden.caps import Capabilities
    from pgwarden.policy.temporary import TemporarySpec

S = sql.Identifier(LEDGER_SCHEMA)

#: to_char's format for an instant in UTC, ISO 8601
ISO = 'YYYY-MM-DD"T"HH24:MI:SS"Z"'

_WINDOW = re.compile(r"^\s*(\d+)\s*(s|sec|min|m|h|d)\s*$")
_SECONDS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def window_seconds(text: str) -> int:
    """'3s', '90min', '1h', '2d' -> seconds (ValueError otherwise; at most 30 days)."""
    m = _WINDOW.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 3s, 90min, 1h or 2d")
    seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if seconds > 30 * 86400:
        raise ValueError(f"{text!r} is longer than 30 days: give a permanent membership in the policy instead")
    return seconds


@dataclass(frozen=True)
class Grant:
    kind: str  # elevation | break-glass
    role: str
    group: str | None
    until: str  # ISO 8601, UTC
    reason: str


def _prepare(conn: psycopg.Connection[Any]) -> None:
    from pgwarden.ledger import ensure

    if not ensure(conn):
        raise PrivilegeError(
            f"the admin may not write the ledger (schema {LEDGER_SCHEMA}) in {conn.info.dbname}",
            hint="connect as the admin that applies the policy (it needs CREATE on the database once)",
        )


def _role(conn: psycopg.Connection[Any], name: str) -> tuple[bool, bool]:
    """(login, superuser) of an existing role; an error naming it otherwise."""
    row = conn.execute("SELECT rolcanlogin, rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s", (name,)).fetchone()
    if row is None:
        raise PgwardenError(f"role {name} does not exist", hint="give an existing role (`\\du` in psql lists them)")
    return bool(row[0]), bool(row[1])


def _until(conn: psycopg.Connection[Any], seconds: int) -> str:
    row = conn.execute(
        "SELECT to_char((now() + make_interval(secs => %s)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
        (seconds,),
    ).fetchone()
    return str(row[0]) if row else ""


def elevate(
    conn: psycopg.Connection[Any],
    caps: Capabilities,
    role: str,
    group: str,
    seconds: int,
    reason: str,
    *,
    inherit: bool = False,
    digest: str | None = None,
    login_verifier: str | None = None,
) -> Grant:
    """GRANT group TO role until now + seconds (16+: SET without INHERIT unless `inherit`), recorded.
    With `login_verifier`, `role` is a login made for the occasion: created LOGIN VALID UNTIL the end
    with that SCRAM verifier, so that the server itself refuses it afterwards, sweeper or not.
    One transaction on `conn` (the target database, not autocommit)."""
    with conn.transaction():
        _prepare(conn)
        until = _until(conn, seconds)
        if login_verifier is not None:
            _create_login(conn, role, until, login_verifier, inherit)
        _role(conn, role)
        _, group_super = _role(conn, group)
        if group_super:
            raise PgwardenError(f"{group} is a superuser: pgwarden elevates to groups only", hint="choose a group role")
        held = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
            "JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE r.rolname = %s AND u.rolname = %s",
            (group, role),
        ).fetchone()
        if held:
            raise PgwardenError(
                f"{role} is already a member of {group}: there is nothing to elevate",
                hint="a permanent membership is the policy's (member_of); revoke it first to make it temporary",
            )
        statement = sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role))
        if caps.membership_options:
            statement = sql.SQL("{} WITH INHERIT {}, SET TRUE").format(
                statement, sql.SQL("TRUE" if inherit else "FALSE")
            )
        conn.execute(statement)
        grant = Grant("login" if login_verifier is not None else "elevation", role, group, until, reason)
        _record(conn, grant, "elevate", statement.as_string(conn), digest)
    return grant


def _create_login(conn: psycopg.Connection[Any], role: str, until: str, verifier: str, inherit: bool) -> None:
    if _role_exists(conn, role):
        raise PgwardenError(
            f"role {role} exists: a login made for the occasion is a new role",
            hint="choose a new name (e.g. alice_inc1234), or elevate the existing role without --create-login",
        )
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN {} VALID UNTIL {} PASSWORD {}").format(
            sql.Identifier(role),
            sql.SQL("INHERIT" if inherit else "NOINHERIT"),
            sql.Literal(until),
            sql.Literal(verifier),
        )
    )


def record_elsewhere(conn: psycopg.Connection[Any], grant: Grant, action: str, digest: str | None = None) -> None:
    """The same grant in another database's ledger (the cluster's roles are shared): its plan treats
    it as intended too, and its `expire` ends it there."""
    with conn.transaction():
        _prepare(conn)
        _record(conn, grant, action, "-- recorded with the first database", digest)


def open_break_glass(
    conn: psycopg.Connection[Any], role: str, seconds: int, reason: str, *, verifier: str | None = None
) -> Grant:
    """LOGIN VALID UNTIL now + seconds on a NOLOGIN emergency role: the server itself refuses its
    logins after that, whether or not anything runs `expire`. `verifier`: a SCRAM verifier to set."""
    with conn.transaction():
        _prepare(conn)
        login, superuser = _role(conn, role)
        if superuser:
            raise PgwardenError(
                f"{role} is a superuser: break-glass opens ordinary roles only", hint="choose another role"
            )
        if login and not _open(conn, role):
            raise PgwardenError(
                f"{role} can log in already, and not through break-glass",
                hint="a break-glass role stays NOLOGIN between windows: ALTER ROLE ... NOLOGIN",
            )
        until = _until(conn, seconds)
        statement = sql.SQL("ALTER ROLE {} LOGIN VALID UNTIL {}").format(sql.Identifier(role), sql.Literal(until))
        conn.execute(statement)
        if verifier is not None:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))
        grant = Grant("break-glass", role, None, until, reason)
        _record(conn, grant, "break-glass-open", statement.as_string(conn), None)
    return grant


def _open(conn: psycopg.Connection[Any], role: str) -> bool:
    row = conn.execute(
        sql.SQL("SELECT 1 FROM {}.grants WHERE kind = 'break-glass' AND role = %s AND ended_at IS NULL").format(S),
        (role,),
    ).fetchone()
    return row is not None


def _record(conn: psycopg.Connection[Any], grant: Grant, action: str, statement: str, digest: str | None) -> None:
    detail = {"role": grant.role, "group": grant.group, "until": grant.until, "reason": grant.reason}
    step = {"phase": "roles", "action": action, "object": f"role {grant.role}", "role": grant.role, "sql": statement}
    entry = write(conn, action, "committed", detail=detail, digest=digest, raw_steps=[step])
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.grants (kind, role, grp, until, reason, opened_entry) VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(S),
        (grant.kind, grant.role, grant.group, grant.until, grant.reason, entry),
    )


@dataclass(frozen=True)
class Ended:
    grant: Grant
    statements: tuple[str, ...]
    terminated: int = 0


def end(
    conn: psycopg.Connection[Any], *, role: str | None = None, kind: str | None = None, expired_only: bool = True
) -> list[Ended]:
    """Revoke what expired (or, with expired_only False, what `role` holds of `kind` now), record
    it, then end the sessions that could still use it: every session of the role (its session
    user; one that SET ROLE to the group keeps the group's rights until it ends)."""
    from pgwarden.ledger import access

    exists, writable = access(conn)
    if not exists:
        return []
    if not writable:
        raise PrivilegeError(
            f"the connected role may not write the ledger (schema {LEDGER_SCHEMA} of {conn.info.dbname})",
            hint="run expire as the admin that applies the policy",
        )
    due = conn.execute(
        sql.SQL("SELECT count(*) FROM {}.grants WHERE ended_at IS NULL AND (NOT %s OR until <= now())").format(S),
        (expired_only,),
    ).fetchone()
    if not due or not due[0]:
        return []  # nothing to end: no transaction (cron runs this every few minutes)
    done: list[Ended] = []
    with conn.transaction():
        rows = conn.execute(
            sql.SQL(
                "SELECT id, kind, role, grp, to_char(until AT TIME ZONE 'UTC', {}), reason FROM {}.grants "
                "WHERE ended_at IS NULL AND (NOT %s OR until <= now()) "
                "AND (%s::text IS NULL OR role = %s) AND (%s::text IS NULL OR kind = %s) ORDER BY id FOR UPDATE"
            ).format(sql.Literal(ISO), S),
            (expired_only, role, role, kind, kind),
        ).fetchall()
        for gid, k, r, g, until, reason in rows:
            grant = Grant(k, r, g, until, reason)
            statements = _revoke(conn, grant)
            action = "expire" if expired_only else ("break-glass-close" if k == "break-glass" else "revoke")
            detail = {"role": r, "group": g, "until": until, "reason": reason, "grant": gid}
            steps = [
                {"phase": "roles", "action": action, "object": f"role {r}", "role": r, "sql": s} for s in statements
            ]
            entry = write(conn, action, "committed", detail=detail, raw_steps=steps)
            conn.execute(
                sql.SQL("UPDATE {}.grants SET ended_at = now(), ended_entry = %s WHERE id = %s").format(S), (entry, gid)
            )
            done.append(Ended(grant, tuple(statements)))
    return [Ended(e.grant, e.statements, _terminate(conn, e.grant.role)) for e in done]


def _revoke(conn: psycopg.Connection[Any], grant: Grant) -> list[str]:
    """The statements that take the grant back (none when someone already did)."""
    exists = _role_exists(conn, grant.role)
    if not exists:
        return []
    if grant.kind == "break-glass":
        statement = sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(grant.role))
    elif grant.kind == "login":  # made for the occasion: it loses the group and the login
        locked = sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(grant.role))
        conn.execute(locked)
        return [locked.as_string(conn), *_revoke(conn, Grant("elevation", grant.role, grant.group, grant.until, ""))]
    else:
        held = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles a ON a.oid = m.roleid "
            "JOIN pg_catalog.pg_roles b ON b.oid = m.member WHERE a.rolname = %s AND b.rolname = %s",
            (grant.group, grant.role),
        ).fetchone()
        if not held:
            return []
        statement = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(grant.group or ""), sql.Identifier(grant.role))
    conn.execute(statement)
    return [statement.as_string(conn)]


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _terminate(conn: psycopg.Connection[Any], role: str) -> int:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity "
        "WHERE usename = %s AND pid <> pg_catalog.pg_backend_pid()",
        (role,),
    ).fetchone()
    conn.commit() if not conn.autocommit else None
    return int(row[0]) if row else 0


def end_temporary(conn: psycopg.Connection[Any], temporary: Sequence[TemporarySpec]) -> list[Ended]:
    """The policy's [[temporary]] memberships whose time is up and that are still there: revoked,
    recorded, their role's sessions ended (apply's plan revokes them too, but ends no session)."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    done: list[Ended] = []
    ended = [t for t in temporary if t.until <= now]
    if not ended:
        return []
    with conn.transaction():
        for t in ended:
            grant = Grant(
                "temporary", t.role, t.group, t.until.astimezone(dt.UTC).isoformat(timespec="seconds"), t.reason
            )
            statements = _revoke(conn, grant)
            if not statements:
                continue
            detail = {"role": t.role, "group": t.group, "until": grant.until, "reason": t.reason, "policy": True}
            steps = [
                {"phase": "roles", "action": "expire", "object": f"role {t.role}", "role": t.role, "sql": statements[0]}
            ]
            write(conn, "expire", "committed", detail=detail, raw_steps=steps)
            done.append(Ended(grant, tuple(statements)))
    return [Ended(e.grant, e.statements, _terminate(conn, e.grant.role)) for e in done]


def expire_all(conn: psycopg.Connection[Any], temporary: Sequence[TemporarySpec]) -> list[Ended]:
    """What `pgwarden expire` does in one database: the ledger's grants, then the policy's [[temporary]]."""
    return [*end(conn), *end_temporary(conn, temporary)]
