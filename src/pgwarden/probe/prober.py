"""Acting as one role: every action of the table on its targets, under savepoints, all rolled back."""

from __future__ import annotations

import secrets as _secrets
from typing import TYPE_CHECKING, Any, Literal

from pgwarden.policy import Policy
from pgwarden.probe.actions import BOUNDED, Action, expected, stages
from pgwarden.probe.model import Attempt, Outcome
from pgwarden.probe.targets import Targets

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Prober:
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
        exp = expected(self.policy, self.level, action)
        self.attempts.append(
            Attempt(self.role, self.level, action, obj, exp, outcome, method, sqlstate, message, count)
        )

    def run(self) -> None:
        """Each stage of the table on each of its targets: tried up to --max-objects, asked beyond."""
        for group, actions in stages():
            if group == "connection":
                continue  # connecting is what login mode does before anything else
            for number, target in enumerate(self.targets.of(group)):
                beyond = group in BOUNDED and number >= self.targets.max_objects
                for action in actions:
                    if action.statement is None or beyond:
                        if action.inquiry is not None and action.privilege is not None:
                            self.inquire(action.name, target.label, action.inquiry, target.oid, action.privilege)
                        continue
                    statement = action.statement(target, self.tag)
                    if statement is not None:
                        self.attempt(action, target.label, statement)
        self.flush()

    def attempt(self, action: Action, obj: str, statement: sql.Composed) -> None:
        """Run `statement` under a savepoint, always rolled back; a refusal warning counts as denied."""
        import psycopg

        warnings: list[str | None] = []

        def on_notice(diag: psycopg.errors.Diagnostic) -> None:
            warnings.append(diag.sqlstate)

        if action.refused_warning is not None:
            self.conn.add_notice_handler(on_notice)
        try:
            with self.conn.transaction(force_rollback=True):
                self.conn.execute(statement)
            if action.refused_warning is not None and action.refused_warning in warnings:
                self.record(
                    action.name, obj, "denied", sqlstate=action.refused_warning, message="no privilege was granted"
                )
            else:
                self.record(action.name, obj, "allowed")
        except psycopg.errors.InsufficientPrivilege as exc:
            self.record(action.name, obj, "denied", sqlstate=exc.sqlstate, message=first_line(exc))
        except psycopg.Error as exc:
            self.record(action.name, obj, "error", sqlstate=exc.sqlstate, message=first_line(exc))
        finally:
            if action.refused_warning is not None:
                self.conn.remove_notice_handler(on_notice)

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
                    self.record(action, obj, "error", method="inquiry", sqlstate=exc.sqlstate, message=first_line(exc))
                continue
            self._answers(items, [held for (held,) in rows])
        self._questions.clear()

    def _answers(self, items: list[tuple[str, str, int]], answers: list[bool | None]) -> None:
        # Answers that agree with the policy become one record per action (memory stays flat
        # at 100,000 objects); every disagreeing or failed object keeps a record of its own.
        agreeing: dict[tuple[str, Outcome], int] = {}
        for (action, obj, _), held in zip(items, answers, strict=True):
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
