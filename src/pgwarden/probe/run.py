"""`run_probe`: act as each policy role (SET ROLE from the admin, or logging in), try the table of actions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pgwarden.connect import connect, conninfo_for
from pgwarden.errors import ConnectError, PrivilegeError
from pgwarden.policy import Policy
from pgwarden.probe.actions import expected
from pgwarden.probe.model import Attempt, ProbeResult
from pgwarden.probe.prober import Prober, first_line
from pgwarden.probe.targets import DEFAULT_MAX_OBJECTS, Targets, read_targets

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session


def policy_roles(policy: Policy) -> list[tuple[str, str, str | None]]:
    """(role, level, password env) for the owner and every access role, in policy order."""
    out: list[tuple[str, str, str | None]] = [(policy.owner.name, "owner", policy.owner.password_env)]
    out.extend((a.name, policy.level_of(a.name) or "no grant", a.password_env) for a in policy.access)
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
    `on_role(role, done, total)` is called as each role starts (progress).
    Raises PrivilegeError when the admin may not SET ROLE to a policy role (could not run)."""
    policy = session.policy
    if not session.target_exists():
        raise ConnectError(f"database {policy.database.name} does not exist", hint="run `pgwarden apply` first")
    attempts: list[Attempt] = []
    with session.connect_target(autocommit=True) as admin:
        targets = read_targets(admin, policy.database.schemas, max_objects, policy.database.name)
        version = str(admin.execute("SELECT current_setting('server_version')").fetchone()[0])  # type: ignore[index]
        chosen = [r for r in policy_roles(policy) if roles is None or r[0] in roles]
        for number, (role, level, env) in enumerate(chosen):
            if on_role is not None:
                on_role(role, number, len(chosen))
            if login:
                attempts.extend(_by_login(session, targets, role, level, env, passwords or {}))
            else:
                attempts.extend(_by_set_role(admin, policy, targets, role, level))
    return ProbeResult(policy.database.name, version, "login" if login else "set-role", tuple(attempts), targets.notes)


def _by_set_role(
    admin: psycopg.Connection[Any], policy: Policy, targets: Targets, role: str, level: str
) -> list[Attempt]:
    import psycopg

    prober = Prober(admin, policy, role, level, targets)
    try:
        with _role_transaction(admin, role):
            prober.run()
    except psycopg.Error as exc:  # the role is missing, or the connection failed: a finding of this role
        prober.record("connect", f"role {role}", "error", sqlstate=exc.sqlstate, message=f"SET ROLE: {first_line(exc)}")
    return prober.attempts


def _by_login(
    session: Session, targets: Targets, role: str, level: str, env: str | None, passwords: Mapping[str, str]
) -> list[Attempt]:
    policy = session.policy
    where = f"database {policy.database.name}"
    password = passwords.get(env) if env else None
    if password is None:
        why = f"no password: set ${env}" if env else "no password_env in the policy"
        return [Attempt(role, level, "connect", where, True, "skipped", message=why)]
    try:
        conn = connect(
            conninfo_for(session.dsn, dbname=policy.database.name, user=role, password=password),
            what=f"{role} on {policy.database.name}",
        )
    except ConnectError as exc:
        return [
            Attempt(role, level, "connect", where, expected(policy, level, "connect"), "denied", message=exc.message)
        ]
    with conn:
        prober = Prober(conn, policy, role, level, targets)
        prober.record("connect", where, "allowed")
        with _role_transaction(conn, None):
            prober.run()
    return prober.attempts


@contextmanager
def _role_transaction(conn: psycopg.Connection[Any], role: str | None) -> Iterator[None]:
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL lock_timeout = '2s'")
        conn.execute("SET LOCAL statement_timeout = '30s'")
        # the refusal of a GRANT is a warning: make sure a role's setting does not hide it
        conn.execute("SET LOCAL client_min_messages = 'warning'")
        if role is not None:
            _set_role(conn, role)
        yield


def _set_role(conn: psycopg.Connection[Any], role: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    except psycopg.errors.InsufficientPrivilege as exc:
        admin, version = conn.execute("SELECT current_user, current_setting('server_version_num')::int").fetchone()  # type: ignore[misc]
        grant = sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(admin)).as_string(conn)
        way = f"{grant} WITH SET TRUE" if version >= 160000 else grant
        raise PrivilegeError(
            f"cannot act as {role}: SET ROLE: {first_line(exc)}: the admin {admin} may not become it",
            hint=f"run `pgwarden probe --login` with the roles' passwords set, or let the admin act as it: `{way};`",
        ) from None
