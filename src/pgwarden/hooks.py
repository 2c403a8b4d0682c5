"""What `apply` lets others do at its fixed points: check a reviewed plan, write the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from pgwarden.apply import ApplyResult
    from pgwarden.plan import Plan
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot


class ApplyHooks:
    """No-op hooks; pgwarden.planfile and pgwarden.ledger override some. Raising a PgwardenError
    from `before` or `in_transaction` stops apply there (in the transaction: rolled back)."""

    def needs_cluster_lock(self, session: Session, first: Plan) -> bool:
        """Whether `before` and `after` must run under the cluster lock even when the plan `first`
        changes nothing shared by the cluster (a reviewed plan is checked under it: yes by default)."""
        return True

    def before(self, session: Session, first: Plan) -> None:
        """Before anything runs: under the cluster lock, unless no hook needs it and nothing cluster-wide changes."""

    def in_transaction(self, conn: psycopg.Connection[Any], snap: Snapshot, current: Plan, result: ApplyResult) -> None:
        """In the database part's transaction, under its lock, with the plan about to run."""

    def before_commit(self, conn: psycopg.Connection[Any], result: ApplyResult) -> None:
        """The last statement(s) of the database part's transaction, after its steps."""

    def after(self, session: Session, result: ApplyResult | None, error: BaseException | None) -> None:
        """Once apply is over (under the cluster lock when apply took it); `error` is what stopped it, if anything.
        Must not raise (apply's own outcome is what the user needs to hear)."""


class Hooks(ApplyHooks):
    """Several hooks, called in order."""

    def __init__(self, *hooks: ApplyHooks) -> None:
        self.hooks = hooks

    def needs_cluster_lock(self, session: Session, first: Plan) -> bool:
        return any(h.needs_cluster_lock(session, first) for h in self.hooks)

    def before(self, session: Session, first: Plan) -> None:
        for h in self.hooks:
            h.before(session, first)

    def in_transaction(self, conn: psycopg.Connection[Any], snap: Snapshot, current: Plan, result: ApplyResult) -> None:
        for h in self.hooks:
            h.in_transaction(conn, snap, current, result)

    def before_commit(self, conn: psycopg.Connection[Any], result: ApplyResult) -> None:
        for h in self.hooks:
            h.before_commit(conn, result)

    def after(self, session: Session, result: ApplyResult | None, error: BaseException | None) -> None:
        for h in self.hooks:
            h.after(session, result, error)
