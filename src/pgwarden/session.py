"""An admin session: the maintenance connection plus how to reach and inspect the target database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pgwarden import fleet
from pgwarden.caps import MIN_VERSION_NUM
from pgwarden.connect import EarlyAdmin, connect, conninfo_for
from pgwarden.errors import ConnectError, PgwardenError

# The snapshot, the planners and the name resolution are imported where they are used: a command's
# first statement (Session.open, the target's existence) then waits for none of them (start-up).
if TYPE_CHECKING:
    import psycopg

    from pgwarden.parallel import SecondReader
    from pgwarden.plan import Plan
    from pgwarden.policy import Policy
    from pgwarden.shared import ClusterPart, ServerInfo
    from pgwarden.snapshot import Snapshot


@dataclass
class Session:
    """The admin connection (to the DSN's database) and the policy it works for."""

    dsn: str | None
    policy: Policy
    admin: psycopg.Connection[Any]
    _verifiers: dict[str, str] = field(default_factory=dict, repr=False)  # password variable -> verifier
    #: the ledger's time-bound grants in force (pgwarden.ledger.LedgerState): read once per session
    ledger: Any = field(default=None, repr=False)
    #: send the planner's expected ACLs with the objects query (plan/expect.py); False: the full fetch
    compare_on_server: bool = field(default=True, repr=False)
    #: a fleet's cluster-level part, read once for every database (pgwarden.shared): snapshot(shared=True)
    cluster: ClusterPart | None = field(default=None, repr=False)
    #: check's independent reads on a second connection (pgwarden.parallel): None decides by the
    #: catalog's size (a single database only: a fleet's cores are busy with its databases)
    parallel: bool | None = field(default=None, repr=False)
    #: the cluster's databases as the admin connection read them on opening (EarlyAdmin) or a fleet's
    #: shared read did (ClusterPart.database_names): answers the first target_exists(), which then
    #: sends no statement; None: ask the server
    _databases: frozenset[str] | None = field(default=None, repr=False)
    #: the target's connection opened then too (EarlyAdmin.take_target): the first inspection's
    _early_target: psycopg.Connection[Any] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls, dsn: str | None, policy: Policy, cluster: ClusterPart | None = None, early: EarlyAdmin | None = None
    ) -> Session:
        """`early`: the admin connection opened while the policy was read (a single database's check)."""
        databases, target = None, None
        if early is not None:
            conn, databases = early.take()
            target = early.take_target(policy.database.name)
        else:
            # in a fleet run (pgwarden.fleet) the thread's admin connection serves database after database
            conn = fleet.admin_connection(dsn, lambda: connect(conninfo_for(dsn), what="the admin connection"))
        version = conn.info.server_version
        if version < MIN_VERSION_NUM:
            conn.close()
            if target is not None:
                target.close()
            raise PgwardenError(
                f"PostgreSQL {version // 10000} is not supported",
                hint="pgwarden supports PostgreSQL 14 to 18",
            )
        if databases is None and cluster is not None:  # a fleet: the databases as its shared read saw them
            databases = cluster.database_names
        session = cls(dsn, policy, conn, cluster=cluster, _databases=databases, _early_target=target)
        if any(g.except_labels for g in policy.grants()):  # the labels' columns as they are now
            from pgwarden.access.labels import read_columns, resolve

            if session.target_exists():
                with session.connect_target() as target:
                    session.policy = resolve(policy, read_columns(target, policy))
        return session

    def close(self) -> None:
        if self._early_target is not None:
            self._early_target.close()
        if not fleet.reused(self.admin):
            self.admin.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target(self) -> str:
        return self.policy.database.name

    def target_exists(self) -> bool:
        known, self._databases = self._databases, None  # answered from the opening's read once only
        if known is not None:
            return self.target in known
        cur = self.admin.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (self.target,))
        return cur.fetchone() is not None

    def connect_target(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        """A connection to the target database as the admin."""
        return connect(
            conninfo_for(self.dsn, dbname=self.target), autocommit=autocommit, what=f"database {self.target}"
        )

    @contextmanager
    def inspection_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The target database, or template1 (what CREATE DATABASE copies) when it does not exist."""
        dbname = self.target if self.target_exists() else "template1"
        early, self._early_target = self._early_target, None
        if early is not None and dbname != self.target:
            early.close()
            early = None
        try:
            conn = (
                early
                if early is not None
                else connect(conninfo_for(self.dsn, dbname=dbname), what=f"database {dbname}")
            )
        except ConnectError as exc:
            if dbname == "template1":
                raise ConnectError(
                    f"database {self.target} does not exist and template1 cannot be read to plan it: {exc}",
                    hint="create the database first, or allow the admin to connect to template1",
                ) from None
            raise
        try:
            yield conn
        finally:
            conn.close()

    def snapshot(
        self,
        conn: psycopg.Connection[Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        *,
        names: bool = True,
        shared: bool = False,
        on_partial: Callable[[Snapshot], None] | None = None,
        second: Callable[[ServerInfo], SecondReader[Any] | None] | None = None,
    ) -> Snapshot:
        """Inspect the target database (or template1). With `secrets` and an admin that cannot read
        the stored verifiers, each password is checked by logging in with it (SCRAM only).
        `names=False` skips naming the objects of big groups that need changes (their steps are
        then planned as `ON ALL ... IN SCHEMA`): enough to know what a plan needs, cheaper.
        `shared`: take the cluster-level part from the fleet's read (`cluster`), not this moment's
        (a read that changes nothing: not one that a change is planned from under a lock).
        `on_partial` is given the snapshot read so far (all but the objects) once it is read: reads
        that need no more can start on another connection (pgwarden.parallel). `second`: inspect's
        (pgwarden.snapshot: a second connection for a big database's reads)."""
        cluster = self.cluster if shared else None
        if conn is not None:
            snap = self._inspect(conn, names, cluster, on_partial, second)
        else:
            with self.inspection_connection() as c:
                snap = self._inspect(c, names, cluster, on_partial, second)
        if snap.passwords is None and secrets:
            checks = self.check_passwords(snap, secrets)
            if checks:
                snap = dataclasses.replace(snap, password_checks=checks)
        return snap

    def verifiers(self, secrets: Mapping[str, str] | None) -> dict[str, str]:
        """Password variable -> the SCRAM-SHA-256 verifier to store, computed by libpq on the admin
        connection (PQencryptPasswordConn): the server's scram_iterations apply (16+) and the
        password never leaves the process. Computed once per variable and session, so that plans
        made in one session are equal."""
        secrets = secrets or {}
        for role, env in self.policy.login_roles():
            if env and env in secrets and env not in self._verifiers:
                verifier = self.admin.pgconn.encrypt_password(secrets[env].encode(), role.encode(), b"scram-sha-256")
                self._verifiers[env] = verifier.decode()
        return {env: v for env, v in self._verifiers.items() if env in secrets}

    def plan(self, snap: Snapshot, secrets: Mapping[str, str] | None = None, *, resolve: bool = True) -> Plan:
        """plan() for this session's policy, with the session's verifiers. Every name the policy
        gives is first resolved against `snap` (pgwarden.resolve: a typo is an error, a name expected
        later a note); `resolve=False` for a snapshot read without the managed schemas."""
        from pgwarden.plan import plan
        from pgwarden.resolve import resolve as resolve_names
        from pgwarden.timebound import intended

        notes: tuple[str, ...] = ()
        if resolve:
            notes = resolve_names(self.policy, snap)
        full = plan(self.policy, snap, secrets or {}, self.verifiers(secrets))
        result = intended(self, snap, full)  # time-bound access: wanted until it ends, drift after
        return dataclasses.replace(result, notes=(*result.notes, *notes)) if notes else result

    def check_passwords(self, snap: Snapshot, secrets: Mapping[str, str]) -> dict[str, bool]:
        """role -> True when a SCRAM login with its password succeeds, False when the server says the
        password is wrong; roles whose answer is unclear are left out (their password is set again)."""
        import psycopg

        # require_auth (libpq 16+) makes sure the password itself is never sent, only a SCRAM proof
        if psycopg.pq.version() < 160000:
            return {}
        out: dict[str, bool] = {}
        dbname = self.target if snap.database_exists else self.admin.info.dbname
        for role, env in self.policy.login_roles():
            password = secrets.get(env) if env else None
            if password is None or role not in snap.role_by_name:
                continue
            info = conninfo_for(self.dsn, dbname=dbname, user=role, password=password)
            try:
                psycopg.connect(info, connect_timeout=5, require_auth="scram-sha-256").close()
                out[role] = True
            except psycopg.OperationalError as exc:
                text = str(exc)
                if "password authentication failed" in text or "SCRAM" in text:
                    out[role] = False
                elif "permission denied for database" in text or "not permitted to log in" in text:
                    out[role] = True  # refused after authenticating: the password is right
        return out

    def _inspect(
        self,
        conn: psycopg.Connection[Any],
        names: bool = True,
        cluster: ClusterPart | None = None,
        on_partial: Callable[[Snapshot], None] | None = None,
        second: Callable[[ServerInfo], SecondReader[Any] | None] | None = None,
    ) -> Snapshot:
        from pgwarden import bookkeeping
        from pgwarden.pooler import with_pooler
        from pgwarden.scopes import Scopes
        from pgwarden.snapshot import inspect, with_names, with_refresh_routines

        p = self.policy
        scopes = Scopes.of(p)
        detailed = [s for s in p.database.schemas if scopes.detailed(s)]
        snap = inspect(
            conn,
            p.database.name,
            p.database.schemas,
            p.owner.name,
            p.role_names,
            column_tables=scopes.column_tables(),
            detailed=detailed,
            bookkeeping=(bookkeeping.tables(p), bookkeeping.schemas(p)),
            # the server compares each object's ACL with the planner's expectation and returns only
            # those that differ (the snapshot is the same: tests/test_server_compare.py)
            expect=self._expect(on_partial),
            cluster=cluster,
            second=second,
        )
        if p.pgbouncer is not None and snap.database is not None:
            snap = with_pooler(conn, p, snap)
        # pgwarden's refresh routines, declared or left from a refresh the policy no longer declares
        # (plan/refresh.py drops those); a managed schema without a SECURITY DEFINER routine has none
        if (p.database.refresh or snap.server.definers) and snap.database is not None:
            snap = with_refresh_routines(conn, snap, p.database.schemas)
        # big groups that need changes are named in one more query, so that apply can grant on
        # lists of objects; a compliant database needs none. The objects of schemas the policy
        # treats one by one (listed tables, exceptions) are always named. The planners are imported
        # here, after the first queries (`check` imports them meanwhile: commands/_background.py).
        from pgwarden.plan import groups_to_name

        return with_names(conn, snap, groups_to_name(p, snap, changing=names), detailed)

    def _expect(
        self, on_partial: Callable[[Snapshot], None] | None
    ) -> Callable[[Snapshot], list[dict[str, Any]]] | None:
        """inspect's `expect`: the planner's expectations (none without compare_on_server: the full
        fetch), after handing the partial snapshot to `on_partial` (inspect calls it once, with all
        but the objects)."""
        if on_partial is None:
            return self._expectations if self.compare_on_server else None

        def expect(partial: Snapshot) -> list[dict[str, Any]]:
            on_partial(partial)
            return self._expectations(partial) if self.compare_on_server else []

        return expect

    def _expectations(self, partial: Snapshot) -> list[dict[str, Any]]:
        """The planner's expected ACLs for the objects query (pgwarden.plan.expect), from the snapshot
        read so far."""
        from pgwarden.plan.expect import expectations

        return expectations(self.policy, partial)
