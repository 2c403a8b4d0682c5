"""Retiring expired leased logins by pattern, in batches and without a superuser (docs/leased-logins.md).

The same work as retiring a role (pgwarden.retirement): refuse logins, end sessions, reassign what
they own to the owner and revoke what they hold in every database pg_shdepend names, drop them. Here
for hundreds of roles at a time: each statement names a whole batch (REASSIGN OWNED BY a, b, ...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pgwarden.command_rows import ExpiredRow, HoldingRow
from pgwarden.connect import connect, conninfo_for, scrub
from pgwarden.errors import ApplyError, ApplyInterrupted, PolicyError, PrivilegeError
from pgwarden.fetch import fetch
from pgwarden.leases import leased_roles
from pgwarden.plan.authority import Authority
from pgwarden.retirement import connect_error

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot

#: Leased logins dropped per transaction (and named per statement).
BATCH = 100

#: (what, done, total): a batch started or finished, for the command's progress on stderr.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LeaseCleanup:
    """The expired leased logins to drop, where they hold something, and what stops the run."""

    roles: tuple[str, ...]
    #: database -> the roles that own or hold something there ("" is the cluster: databases themselves)
    holdings: dict[str, frozenset[str]]
    owners: frozenset[str]  # roles that own something somewhere (reassigned to the owner)
    admin_database: str
    blockers: tuple[str, ...] = ()
    #: roles the admin must take the privileges of first (GRANT ... TO admin), to reassign and revoke
    to_gain: frozenset[str] = frozenset()
    membership_options: bool = False  # 16+: the admin's GRANT says INHERIT TRUE, SET FALSE

    def databases(self, batch: Sequence[str]) -> list[tuple[str, list[str]]]:
        """(database, the batch's roles that hold something there), the admin's database first when the
        cluster-wide part is handled there (REASSIGN/DROP OWNED there also move and revoke shared objects)."""
        names = set(batch)
        out: dict[str, list[str]] = {}
        for db, roles in self.holdings.items():
            mine = sorted(names & roles)
            if mine:
                out.setdefault(db or self.admin_database, []).extend(mine)
        first = [self.admin_database] if self.admin_database in out else []
        return [(db, sorted(set(out[db]))) for db in first + sorted(set(out) - set(first))]


def plan_cleanup(session: Session, snap: Snapshot, pattern: str | None = None) -> LeaseCleanup:
    """What `leases retire` will do: the expired leased logins (by the server's clock) named by the
    policy's patterns (or the one `pattern`), what they hold where, and what the admin lacks."""
    policy = session.policy
    if not policy.leased:
        raise PolicyError("the policy has no [[leased]] entry", hint="docs/leased-logins.md shows how to declare one")
    leases = [lease for lease in policy.leased if pattern is None or lease.pattern == pattern]
    if not leases:
        known = ", ".join(repr(lease.pattern) for lease in policy.leased)
        raise PolicyError(f"no [[leased]] entry has pattern {pattern!r}", hint=f"the policy's patterns: {known}")
    candidates = {role.oid: role for role, lease in leased_roles(policy, snap) if lease in leases}
    admin = session.admin
    expired = fetch(admin, "lease_expired", ExpiredRow, {"roles": list(candidates)}) if candidates else []
    supers = [r.name for r in expired if r.superuser]
    if supers:
        raise PolicyError(
            f"leased login(s) {', '.join(supers)} are superusers: pgwarden never drops a superuser",
            hint="find out who made them superusers; if you mean it, ALTER ROLE ... NOSUPERUSER as a superuser first",
        )
    names = {r.role: r.name for r in expired}
    rows = fetch(admin, "retire_holdings", HoldingRow, {"roles": list(names)}) if names else []
    holdings: dict[str, set[str]] = {}
    for row in rows:
        holdings.setdefault(row.database, set()).add(names[row.role])
    owners = frozenset(names[r.role] for r in rows if r.deptype == "o")
    auth = Authority.of(snap)
    cleanup = LeaseCleanup(
        tuple(sorted(names.values())),
        {db: frozenset(roles) for db, roles in holdings.items()},
        owners,
        admin.info.dbname,
        to_gain=frozenset(n for n in names.values() if not auth.acts_as(n)),
        membership_options=snap.caps.membership_options,
    )
    blockers = _blockers(session, auth, cleanup, rows)
    return replace(cleanup, blockers=tuple(blockers))


def _blockers(session: Session, auth: Authority, cleanup: LeaseCleanup, rows: list[HoldingRow]) -> list[str]:
    """Everything that would stop the run part-way, found before anything runs."""
    out = []
    for db in sorted({r.database for r in rows if r.database and r.database != cleanup.admin_database}):
        row = next(r for r in rows if r.database == db)
        if not row.allows_connections:
            out.append(f"database {db} does not allow connections (datallowconn is false)")
        elif not row.may_connect:
            out.append(f"the admin has no CONNECT on database {db}")
        elif (error := connect_error(session, db)) is not None:
            out.append(f"cannot connect to database {db}: {error}")
    if auth.superuser:
        return out
    owner = session.policy.owner.name
    if cleanup.owners and not auth.acts_as(owner):
        out.append(f"the admin needs the privileges of the owner {owner} to reassign what leased logins own to it")
    if not auth.createrole:
        out.append("dropping roles needs CREATEROLE (or superuser)")
    elif auth.caps.membership_options:
        lacking = [n for n in cleanup.roles if n not in auth.admin_of]
        if lacking:
            out.append(
                f"on PostgreSQL 16+ dropping a role needs ADMIN OPTION on it, which the admin lacks on "
                f"{len(lacking)} of them ({', '.join(lacking[:5])}{', ...' if len(lacking) > 5 else ''}): "
                "the login that created them has it"
            )
    return out


@dataclass
class CleanupResult:
    """What a run dropped and what it kept (committed batches stay when a later one fails)."""

    dropped: list[str] = field(default_factory=list)
    databases: set[str] = field(default_factory=set)


def run_cleanup(
    session: Session,
    cleanup: LeaseCleanup,
    *,
    batch: int = BATCH,
    lock_timeout: str | None = None,
    progress: Progress | None = None,
) -> CleanupResult:
    """Drop the expired leased logins, `batch` at a time: each batch is refused logins and its
    sessions ended, then cleared in each database it holds something in (a transaction each), then
    dropped (one transaction). A batch that fails stops the run: earlier batches stay dropped, and
    running it again finishes the work (every step is safe to repeat)."""
    if cleanup.blockers:
        raise PrivilegeError(
            "; ".join(cleanup.blockers) + "; nothing was changed",
            hint="run it as an admin that has what is missing (docs/leased-logins.md lists the minimal rights)",
        )
    import psycopg

    timeout = lock_timeout or session.policy.apply.lock_timeout
    result = CleanupResult()
    roles = list(cleanup.roles)
    try:
        for start in range(0, len(roles), batch):
            names = roles[start : start + batch]
            if progress:
                progress("batch", start, len(roles))
            _before(session.admin, cleanup, names)
            for db, holders in cleanup.databases(names):
                _clear(session, db, holders, session.policy.owner.name, timeout)
                result.databases.add(db)
            with session.admin.transaction():
                session.admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(_idents(names)))
            result.dropped.extend(names)
    except psycopg.Error as exc:
        raise ApplyError(
            f"retiring leased logins: {scrub(str(exc).strip().splitlines()[0])}; {_kept(result)}",
            hint="fix the cause, then run `pgwarden leases retire` again: it finishes the work",
        ) from None
    except KeyboardInterrupt:
        raise ApplyInterrupted(
            f"interrupted while retiring leased logins; {_kept(result)}",
            hint="run `pgwarden leases retire` again: it finishes the work",
        ) from None
    if progress:
        progress("done", len(roles), len(roles))
    return result


def _kept(result: CleanupResult) -> str:
    if not result.dropped:
        return "no login was dropped (a batch's NOLOGIN and cleared databases stay: safe to repeat)"
    return f"{len(result.dropped)} login(s) were dropped (kept); the batch under way was not"


def _idents(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _before(admin: psycopg.Connection[Any], cleanup: LeaseCleanup, names: list[str]) -> None:
    """The admin takes the batch's privileges (to reassign, revoke and end sessions: they go with the
    roles), refuses their logins (certificate and trust logins ignore VALID UNTIL), ends their sessions."""
    gain = [n for n in names if n in cleanup.to_gain]
    with admin.transaction():
        if gain:
            options = sql.SQL(" WITH INHERIT TRUE, SET FALSE" if cleanup.membership_options else "")
            admin.execute(sql.SQL("GRANT {} TO CURRENT_USER{}").format(_idents(gain), options))
        for name in names:
            admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)))
        admin.execute(
            "SELECT count(pg_catalog.pg_terminate_backend(pid, 5000)) FROM pg_catalog.pg_stat_activity "
            "WHERE usename = ANY (%s::text[]) AND pid <> pg_catalog.pg_backend_pid()",
            (names,),
        )


def _clear(session: Session, db: str, holders: list[str], owner: str, timeout: str) -> None:
    """One database, one transaction: what they own goes to the owner, then their privileges go."""
    with connect(conninfo_for(session.dsn, dbname=db), autocommit=True, what=f"database {db}") as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(_idents(holders), sql.Identifier(owner)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(_idents(holders)))
