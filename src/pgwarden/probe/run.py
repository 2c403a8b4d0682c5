"""`run_probe`: act as each policy role and each member (SET ROLE from the admin, or logging in), try the table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pgwarden.connect import connect, conninfo_for
from pgwarden.errors import ConnectError, PrivilegeError
from pgwarden.policy import Policy
from pgwarden.probe.actions import BY_NAME
from pgwarden.probe.model import Attempt, ProbeResult
from pgwarden.probe.prober import Prober, first_line
from pgwarden.probe.rights import Rights, inherits, may_set, member_rights, named_tables
from pgwarden.probe.targets import DEFAULT_MAX_OBJECTS, Targets, read_targets
from pgwarden.scopes import Scopes
from pgwarden.snapshot import query

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session


@dataclass(frozen=True)
class Subject:
    """One identity probe acts as: the owner, an access role, or a member through its groups."""

    role: str
    level: str  # the word shown: owner, the role's profiles, "member of GROUP"
    env: str | None
    login: bool  # NOLOGIN roles are acted as by SET ROLE from the admin, in --login mode too
    rights: Rights
    groups: tuple[tuple[str, bool], ...] = ()  # groups it must SET ROLE to: (group, whether it may)
    valid_until: str | None = None  # past it, logging in must fail


def subjects(policy: Policy, version: int = 160000) -> list[Subject]:
    """The owner, every access role, then every member, in policy order; `version` is the
    server's (server_version_num): what a membership carries depends on it."""
    scopes = Scopes.of(policy)
    owner = policy.owner
    everything = Rights.of(policy, owner=True, scopes=scopes)
    out = [Subject(owner.name, "owner", owner.password_env, owner.login, everything, (), owner.valid_until)]
    for a in policy.access:
        level = policy.level_of(a.name) or "no grant"
        also = [g.role for g in a.also_member_of]
        inherited = [g for g in also if inherits(a, g, version)]  # what it holds of the roles it is also in
        rights = Rights.of(policy, a.name, *inherited, scopes=scopes)
        to_set = tuple((g, may_set(a, g, version)) for g in also if g not in inherited)
        out.append(Subject(a.name, level, a.password_env, a.login, rights, to_set, a.valid_until))
    for m in policy.members:
        groups = [ms.role for ms in m.member_of]
        held = tuple(g for g in groups if inherits(m, g, version))
        to_set = tuple((g, may_set(m, g, version)) for g in groups if g not in held)
        rights = member_rights(policy, m, version, scopes)
        level = "member of " + ", ".join(groups)
        out.append(Subject(m.name, level, m.password_env, m.login, rights, to_set, m.valid_until))
    return out


def policy_roles(policy: Policy) -> list[tuple[str, str, str | None]]:
    """(role, level, password env) for the owner, every access role and every member, in policy order."""
    return [(s.role, s.level, s.env) for s in subjects(policy)]


def run_probe(
    session: Session,
    *,
    login: bool = False,
    passwords: Mapping[str, str] | None = None,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    roles: Sequence[str] | None = None,
    on_role: Callable[[str, int, int], None] | None = None,
) -> ProbeResult:
    """Act as each policy role and member (SET ROLE from the admin, or log in with `passwords`,
    keyed by password environment variable name) and try every action; nothing is left behind.
    `max_objects` bounds the objects of each kind that are tried; the rest are asked of the server.
    `on_role(role, done, total)` is called as each role starts (progress).
    Raises PrivilegeError when the admin may not SET ROLE to a policy role (could not run)."""
    policy = session.policy
    if not session.target_exists():
        raise ConnectError(f"database {policy.database.name} does not exist", hint="run `pgwarden apply` first")
    attempts: list[Attempt] = []
    with session.connect_target(autocommit=True) as admin:
        scopes = Scopes.of(policy)
        schemas, name = policy.database.schemas, policy.database.name
        targets = read_targets(admin, schemas, max_objects, name, named_tables(policy), scopes.column_tables())
        row = admin.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int")
        version, number_version = row.fetchone()  # type: ignore[misc]
        chosen = [s for s in subjects(policy, number_version) if roles is None or s.role in roles]
        usage = frozenset(r[0] for r in admin.execute(query("probe_public_usage").encode(), {"schemas": list(schemas)}))
        chosen = [replace(s, rights=replace(s.rights, public_usage=usage)) for s in chosen]
        for number, subject in enumerate(chosen):
            if on_role is not None:
                on_role(subject.role, number, len(chosen))
            if login and subject.login:
                expired = _expired(admin, subject.valid_until)
                attempts.extend(_by_login(session, targets, subject, passwords or {}, number_version, expired))
            else:
                attempts.extend(_by_set_role(admin, policy, targets, subject, number_version))
    notes = targets.notes
    if login and any(not s.login for s in chosen):
        nologin = ", ".join(s.role for s in chosen if not s.login)
        notes = (*notes, f"NOLOGIN roles were acted as by SET ROLE from the admin: {nologin}")
    return ProbeResult(policy.database.name, str(version), "login" if login else "set-role", tuple(attempts), notes)


def _by_set_role(
    admin: psycopg.Connection[Any], policy: Policy, targets: Targets, subject: Subject, version: int
) -> list[Attempt]:
    import psycopg

    prober = Prober(admin, policy, subject.role, subject.level, targets, subject.rights)
    try:
        with _role_transaction(admin, subject.role):
            prober.run()
    except psycopg.Error as exc:  # the role is missing, or the connection failed: a finding of this role
        role = subject.role
        prober.record("connect", f"role {role}", "error", sqlstate=exc.sqlstate, message=f"SET ROLE: {first_line(exc)}")
        return prober.attempts
    out = prober.attempts
    for group, may in subject.groups:
        out.extend(_as_group(admin, policy, targets, subject, group, may, version, by_admin=True))
    return out


def _expired(admin: psycopg.Connection[Any], valid_until: str | None) -> bool:
    """Whether the role's VALID UNTIL has passed, by the server's clock and time zone (as it judges)."""
    if valid_until is None:
        return False
    row = admin.execute("SELECT %s::timestamptz <= now()", (valid_until,)).fetchone()
    return bool(row and row[0])


def _by_login(
    session: Session,
    targets: Targets,
    subject: Subject,
    passwords: Mapping[str, str],
    version: int,
    expired: bool = False,
) -> list[Attempt]:
    policy = session.policy
    role, level, env = subject.role, subject.level, subject.env
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
        exp = subject.rights.allows(BY_NAME["connect"], None) and not expired
        return [Attempt(role, level, "connect", where, exp, "denied", message=exc.message)]
    with conn:
        prober = Prober(conn, policy, role, level, targets, subject.rights)
        prober.record("connect", where, "allowed", expected=prober.expects("connect") and not expired)
        with _role_transaction(conn, None):
            prober.run()
        out = prober.attempts
        for group, may in subject.groups:
            out.extend(_as_group(conn, policy, targets, subject, group, may, version, by_admin=False))
    return out


def _as_group(
    conn: psycopg.Connection[Any],
    policy: Policy,
    targets: Targets,
    subject: Subject,
    group: str,
    may: bool,
    version: int,
    *,
    by_admin: bool,
) -> list[Attempt]:
    """A member that does not inherit `group`: SET ROLE to it (logged in as the member), or ask the
    server whether it could (from the admin, whose own SET ROLE proves nothing of the member's),
    then, when it may, everything again with exactly the group's rights."""
    import psycopg
    from psycopg import sql

    rights = replace(Rights.of(policy, group), public_usage=subject.rights.public_usage)
    prober = Prober(conn, policy, subject.role, f"set role {group}", targets, rights, group)
    where = f"role {group}"
    try:
        with _role_transaction(conn, None):
            if by_admin:
                option = "SET" if version >= 160000 else "MEMBER"
                query = "SELECT pg_catalog.pg_has_role(%s, %s, %s)"
                held = bool(conn.execute(query, (subject.role, group, option)).fetchone()[0])  # type: ignore[index]
                prober.record("set-role", where, "allowed" if held else "denied", "inquiry", expected=may)
                if held and may:
                    _set_role(conn, group)
            else:
                try:
                    with conn.transaction():
                        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(group)))
                    held = True
                    prober.record("set-role", where, "allowed", expected=may)
                except psycopg.errors.InsufficientPrivilege as exc:
                    held = False
                    why = first_line(exc)
                    prober.record("set-role", where, "denied", sqlstate=exc.sqlstate, message=why, expected=may)
            if held and may:
                prober.run()
    except psycopg.Error as exc:
        prober.record("set-role", where, "error", sqlstate=exc.sqlstate, message=first_line(exc), expected=may)
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
