"""The rule catalog: each hazard rule is registered by the check that reports it, in its module; drift rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from pgwarden.findings import Finding, Severity


@dataclass(frozen=True)
class Rule:
    """A catalog entry: stable id, severity, a title, why it matters and how to fix it (docs/rules.md)."""

    id: str
    severity: Severity
    title: str
    why: str
    how: str
    #: more for docs/rules.md only (markdown after how to fix): what one finding covers, limits, links
    doc: str = field(default="", compare=False)


@dataclass(frozen=True)
class Registered:
    """A check and the catalog rules it reports (docs/rules.md lists them in this order)."""

    check: Callable[..., Iterator[Finding]]
    rules: tuple[Rule, ...]
    #: markdown before its rules in docs/rules.md (what a group of checks shares)
    intro: str = ""


_C = TypeVar("_C", bound=Callable[..., Iterator[Finding]])

#: every registered check by "module.function", in registration order (each module's checks in the order
#: it defines them); a module imported again replaces its entries instead of adding them
_REGISTERED: dict[str, Registered] = {}
_BY_ID: dict[str, Rule] = {}


def reports(*rules: Rule, intro: str = "") -> Callable[[_C], _C]:
    """Registers the decorated check with the rules it reports: a rule is its check, its catalog entry
    and its docs text in one place. A rule id reported by two checks is refused."""

    def register(check: _C) -> _C:
        key = f"{check.__module__}.{check.__qualname__}"
        taken = {r.id: k for k, entry in _REGISTERED.items() if k != key for r in entry.rules}
        for rule in rules:
            if rule.id in taken:
                raise ValueError(f"rule {rule.id!r} is registered by {taken[rule.id]} and by {key}")
        _BY_ID.update((rule.id, rule) for rule in rules)
        _REGISTERED[key] = Registered(check, rules, intro)
        return check

    return register


def registered() -> tuple[Registered, ...]:
    """The checks registered so far, in registration order (pgwarden.rules has imported every module)."""
    return tuple(_REGISTERED.values())


def rule(rule_id: str) -> Rule:
    """The catalog entry of a hazard rule (its module registered it when pgwarden.rules loaded)."""
    return _BY_ID[rule_id]


#: Drift rule ids: one per plan action, with the severity of what the step would repair.
DRIFT_SEVERITY: dict[str, Severity] = {
    "create-role": "high",
    "alter-role": "high",
    "set-password": "low",
    "revoke-membership": "high",
    "grant-membership": "medium",
    "create-database": "high",
    "create-schema": "medium",
    "alter-owner": "high",
    "grant": "medium",
    "revoke": "high",
    "revoke-grant-option": "high",
    "default-privileges": "medium",
    # a deploy login without its role setting makes every migration escape the owner
    "role-setting": "high",
    # the guard was dropped, disabled or changed behind pgwarden's back
    "guard": "high",
    "refresh-routine": "medium",
    # a member that may SET ROLE to, or inherit, a group the policy says it must not, or hands it out
    "membership-options": "high",
    # a connection limit or an expiry the policy declares (an account that should have expired)
    "role-attribute": "medium",
    # a comment is documentation
    "role-comment": "low",
    # a retired role still exists (its objects, grants and logins with it)
    "retire-role": "medium",
    # PgBouncer's lookup routine is missing or was changed: logins through PgBouncer fail, or it leaks
    "pooler": "high",
}
#: what docs/rules.md says next to a drift rule's severity
_DRIFT_DOC: dict[str, str] = {
    "retire-role": "a retired role still exists; [retire.md](retire.md)",
    "pooler": "PgBouncer's lookup routine is missing or was changed; [pgbouncer.md](pgbouncer.md)",
}
DRIFT_CATALOG: tuple[Rule, ...] = tuple(
    Rule(
        f"drift.{action}",
        sev,
        f"`apply` would run: {action}",
        "The database differs from the policy; the step `plan` shows repairs it.",
        "Run `pgwarden apply`.",
        doc=_DRIFT_DOC.get(action, ""),
    )
    for action, sev in DRIFT_SEVERITY.items()
)
