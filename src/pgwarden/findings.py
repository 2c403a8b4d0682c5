"""Findings of `check`: the model, severities, summary and the JSON shape (pgwarden.render prints them)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low"]
#: Most severe first; `--fail-on X` fails on X and everything before it.
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")


#: Every JSON document pgwarden prints carries it (pgwarden.render.envelope uses this one).
SCHEMA_VERSION = 1

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")


def display_name(*parts: str) -> str:
    """schema.name for people: each part double-quoted only when SQL would need it."""
    return ".".join(p if _PLAIN.match(p) else '"' + p.replace('"', '""') + '"' for p in parts)


def rank(severity: str) -> int:
    """0 for critical ... 3 for low."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong: a stable rule id, how bad, on what, for whom, why, and the SQL that fixes it."""

    rule: str
    severity: Severity
    object: str
    role: str | None
    message: str
    fix: str | None = None
    #: drift findings: the key of the plan step they report (Step.key); not part of the finding's identity
    step: str | None = field(default=None, compare=False)
    #: what the finding is about (plan.model.Subject): a drift step and a hazard with one subject are one problem
    subject: tuple[str | int, ...] | None = field(default=None, compare=False)

    def at_least(self, severity: str) -> bool:
        return rank(self.severity) <= rank(severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "object": self.object,
            "role": self.role,
            "message": self.message,
            "fix": self.fix,
        }


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (rank(f.severity), f.rule, f.object, f.role or ""))


def summary(findings: Sequence[Finding], fail_on: str = "low") -> dict[str, Any]:
    """Counts by severity and by rule, and whether the run fails at `fail_on`."""
    by_sev = Counter(f.severity for f in findings)
    return {
        "total": len(findings),
        "by_severity": {s: by_sev.get(s, 0) for s in SEVERITIES},
        "by_rule": dict(sorted(Counter(f.rule for f in findings).items())),
        "fail_on": fail_on,
        "failed": any(f.at_least(fail_on) for f in findings),
    }


def to_json(findings: Sequence[Finding], fail_on: str = "low", **extra: Any) -> dict[str, Any]:
    """The documented JSON shape: {"findings": [...], "summary": {...}} (see schemas/check.json)."""
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "findings": [f.to_dict() for f in findings],
        "summary": summary(findings, fail_on),
    }
    data["summary"].update(extra)
    return data
