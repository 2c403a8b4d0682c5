"""Findings of `check`: the model, severities, summary and text/JSON/SARIF rendering."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low"]
#: Most severe first; `--fail-on X` fails on X and everything before it.
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")

_SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SARIF_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.0", "low": "2.0"}
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


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
    data: dict[str, Any] = {"findings": [f.to_dict() for f in findings], "summary": summary(findings, fail_on)}
    data["summary"].update(extra)
    return data


def render_text(findings: Sequence[Finding], fail_on: str = "low") -> str:
    """Plain text for people: one block per finding, most severe first, then a summary line."""
    lines: list[str] = []
    for f in findings:
        who = f" (role {f.role})" if f.role else ""
        lines.append(f"{f.severity.upper():8} {f.rule}  {f.object}{who}")
        lines.append(f"         {f.message}")
        if f.fix:
            for i, fix_line in enumerate(f.fix.splitlines()):
                lines.append(("         fix: " if i == 0 else "              ") + fix_line)
    s = summary(findings, fail_on)
    if not findings:
        lines.append("no findings: the database matches the policy and no hazard was found")
    else:
        counts = ", ".join(f"{n} {sev}" for sev, n in s["by_severity"].items() if n)
        lines.append(f"{s['total']} finding(s): {counts}")
    return "\n".join(lines) + "\n"


def to_sarif(findings: Sequence[Finding], rules: Iterable[Any], *, version: str, target: str) -> dict[str, Any]:
    """SARIF 2.1.0: one run, the rule catalog as the driver's rules, one result per finding.

    Databases have no files, so each result has a logical location (the object) and an artifact
    location naming the database, which code-scanning dashboards need to show a result."""
    catalog = {r.id: r for r in rules}
    used = sorted({f.rule for f in findings} | {r for r in catalog if not r.startswith("drift.")})
    index = {rule_id: i for i, rule_id in enumerate(used)}
    descriptors = []
    for rule_id in used:
        rule = catalog.get(rule_id)
        descriptors.append(
            {
                "id": rule_id,
                "name": rule_id.replace(".", "-"),
                "shortDescription": {"text": rule.title if rule else rule_id},
                "fullDescription": {"text": rule.why if rule else rule_id},
                "help": {"text": rule.how if rule else "Run `pgwarden apply`."},
                "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity if rule else "medium"]},
                "properties": {"security-severity": _SARIF_SCORE[rule.severity if rule else "medium"]},
            }
        )
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message + (f"\nFix: {f.fix}" if f.fix else "")},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": f"postgresql:///{target}"}},
                    "logicalLocations": [{"fullyQualifiedName": f.object, "kind": "object"}],
                }
            ],
            "partialFingerprints": {"pgwarden/v1": f"{f.rule}|{f.object}|{f.role or ''}"},
            "properties": {"severity": f.severity, "role": f.role, "fix": f.fix},
        }
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pgwarden",
                        "version": version,
                        "informationUri": "https://pypi.org/project/pgwarden/",
                        "rules": descriptors,
                    }
                },
                "results": results,
            }
        ],
    }


def to_junit(results: Sequence[tuple[str, Sequence[Finding]]], rules: Iterable[Any], *, fail_on: str = "low") -> str:
    """JUnit XML for CI test reports (GitLab, Jenkins), one test suite per database: one test case
    per finding, failed when it is at or above `fail_on`, and one passing test case per catalog rule
    that found nothing."""
    import xml.etree.ElementTree as ET

    catalog = list(rules)
    root = ET.Element("testsuites", name="pgwarden check")
    total = failures = 0
    for target, findings in results:
        failing = [f for f in findings if f.at_least(fail_on)]
        suite = ET.SubElement(root, "testsuite", name=f"pgwarden check: {target}")
        count = 0
        for f in findings:
            case = ET.SubElement(suite, "testcase", classname=f"pgwarden.{f.rule}", name=f"{f.rule}: {f.object}")
            count += 1
            if f.at_least(fail_on):
                failure = ET.SubElement(case, "failure", message=f.message, type=f.severity)
                failure.text = f"{f.message}\nrole: {f.role or '-'}\nfix: {f.fix or '-'}"
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"{f.severity} (below --fail-on {fail_on}): {f.message}"
        found = {f.rule for f in findings}
        for rule in catalog:
            if rule.id not in found:
                ET.SubElement(suite, "testcase", classname=f"pgwarden.{rule.id}", name=f"{rule.id}: nothing found")
                count += 1
        for key, value in (("tests", count), ("failures", len(failing)), ("errors", 0), ("skipped", 0)):
            suite.set(key, str(value))
        total += count
        failures += len(failing)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
