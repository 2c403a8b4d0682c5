"""Acting as one role: every action of the table on its targets, under savepoints, all rolled back."""

from __future__ import annotations

import secrets as _secrets
from typing import TYPE_CHECKING, Any, Literal

from pgwarden.policy import Policy
from pgwarden.probe.actions import BOUNDED, BY_NAME, Action, stages
from pgwarden.probe.model import Attempt, Outcome
from pgwarden.probe.refresh import try_refreshes
from pgwarden.probe.rights import Rights
from pgwarden.probe.targets import Target, Targets

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Prober:
    """Runs the attempts of one role on one connection, inside a transaction rolled back at the end."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        policy: Policy,
        role: str,
        level: str,
        targets: Targets,
        rights: Rights | None = None,
        acting_as: str | None = None,
    ) -> None:
        """`rights`: what the identity may do (default: `role`'s own grants, all for the owner);
        `acting_as`: the group the login has SET ROLE to, when it has."""
        self.conn, self.policy, self.role, self.level, self.targets = conn, policy, role, level, targets
        self.rights = rights or Rights.of(policy, role, owner=role == policy.owner.name)
        self.acting_as = acting_as
        self.attempts: list[Attempt] = []
        self.tag = "pgwarden_probe_" + _secrets.token_hex(4)
        self._questions: dict[tuple[str, str], list[tuple[str, str, int, bool]]] = {}
        self._expected: dict[tuple[str, str, str, str, str | None, bool], bool] = {}
        self._detailed: dict[str, bool] = {}

    def _allows(self, action: Action, target: Target, *, inquiry: bool = False) -> bool:
        # every object of a schema without listed tables or exceptions gets the same answer: asked
        # once per schema, not once per object (100,000 tables are asked of the server)
        if target.schema not in self._detailed:
            self._detailed[target.schema] = self.rights.scopes.detailed(target.schema)
        one_by_one = target.what in ("schema", "database", "column") or self._detailed[target.schema]
        one_by_one = one_by_one or self.rights.scopes.is_bookkeeping(target.schema, target.name)  # SELECT at most
        one_by_one = one_by_one or bool(
            target.owned_by and self.rights.scopes.is_bookkeeping(target.schema, target.owned_by)
        )
        name, col = (target.name, target.col) if one_by_one else ("", None)
        key = (action.name, action.on, target.schema, name, col, inquiry)
        if key not in self._expected:
            self._expected[key] = self.rights.allows(action, target, inquiry=inquiry)
        return self._expected[key]

    def expects(self, action: str, target: Target | None = None, *, inquiry: bool = False) -> bool:
        return self.rights.allows(BY_NAME[action], target, inquiry=inquiry) if action in BY_NAME else False

    def record(
        self,
        action: str,
        obj: str,
        outcome: Outcome,
        method: Literal["attempt", "inquiry"] = "attempt",
        sqlstate: str | None = None,
        message: str | None = None,
        count: int = 1,
        expected: bool | None = None,
    ) -> None:
        """One attempt; `expected` None: what the policy says of `action` on the database."""
        exp = self.expects(action) if expected is None else expected
        self.attempts.append(
            Attempt(self.role, self.level, action, obj, exp, outcome, method, sqlstate, message, count, self.acting_as)
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
                            exp = self._allows(action, target, inquiry=True)
                            self.inquire(action.name, target.label, action.inquiry, target.oid, action.privilege, exp)
                        continue
                    statement = action.statement(target, self.tag)
                    if statement is not None:
                        self.attempt(action, target.label, statement, self._allows(action, target))
        try_refreshes(self)  # only where the policy declares materialized views a role refreshes
        self.flush()

    def attempt(self, action: Action, obj: str, statement: sql.Composed, expected: bool) -> None:
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
                    action.name,
                    obj,
                    "denied",
                    sqlstate=action.refused_warning,
                    message="no privilege was granted",
                    expected=expected,
                )
            else:
                self.record(action.name, obj, "allowed", expected=expected)
        except psycopg.errors.InsufficientPrivilege as exc:
            self.record(action.name, obj, "denied", sqlstate=exc.sqlstate, message=first_line(exc), expected=expected)
        except psycopg.Error as exc:
            self.record(action.name, obj, "error", sqlstate=exc.sqlstate, message=first_line(exc), expected=expected)
        finally:
            if action.refused_warning is not None:
                self.conn.remove_notice_handler(on_notice)

    def inquire(self, action: str, obj: str, function: str, oid: int, privilege: str, expected: bool) -> None:
        """Queue a question for the server's privilege inquiry function; answered in bulk by flush()."""
        self._questions.setdefault((function, privilege), []).append((action, obj, oid, expected))

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
                    rows = self.conn.execute(query, ([oid for _, _, oid, _ in items],)).fetchall()
            except psycopg.Error as exc:
                for action, obj, _, exp in items:
                    self.record(action, obj, "error", "inquiry", exc.sqlstate, first_line(exc), expected=exp)
                continue
            self._answers(items, [held for (held,) in rows])
        self._questions.clear()

    def _answers(self, items: list[tuple[str, str, int, bool]], answers: list[bool | None]) -> None:
        # Answers that agree with the policy become one record per action (memory stays flat
        # at 100,000 objects); every disagreeing or failed object keeps a record of its own.
        agreeing: dict[tuple[str, Outcome], int] = {}
        for (action, obj, _, exp), held in zip(items, answers, strict=True):
            if held is None:  # dropped while probing
                self.record(action, obj, "error", method="inquiry", message="object no longer exists", expected=exp)
                continue
            outcome: Outcome = "allowed" if held else "denied"
            if held == exp:
                agreeing[(action, outcome)] = agreeing.get((action, outcome), 0) + 1
            else:
                self.record(action, obj, outcome, method="inquiry", expected=exp)
        for (action, outcome), n in agreeing.items():
            self.record(
                action,
                f"{n} object(s) (server's privilege inquiry)",
                outcome,
                method="inquiry",
                count=n,
                expected=outcome == "allowed",
            )
