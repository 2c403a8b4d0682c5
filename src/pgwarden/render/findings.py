"""Findings as text (styled on a terminal), SARIF 2.1.0 and JUnit XML."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pgwarden.findings import Finding, summary
from pgwarden.render.style import SEVERITY_STYLE, join

if TYPE_CHECKING:  # imported where text is styled (render/style.py)
    from rich.text import Text

_SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SARIF_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.0", "low": "2.0"}
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


def findings_styled(findings: Sequence[Finding], fail_on: str = "low") -> Text:
    """For people: one block per finding, most severe first (severity coloured), then a summary line."""
    from rich.text import Text

    lines: list[Text | str] = []
    for f in findings:
        head = Text(f"{f.severity.upper():8}", style=SEVERITY_STYLE[f.severity])
        head.append(f" {f.rule}  ", style="bold")
        head.append(f.object + (f" (role {f.role})" if f.role else ""))
        lines.append(head)
        lines.append(f"         {f.message}")
        if f.fix:
            for i, fix_line in enumerate(f.fix.splitlines()):
                lines.append(Text(("         fix: " if i == 0 else "              ") + fix_line, style="dim"))
    s = summary(findings, fail_on)
    if not findings:
        lines.append(Text("no findings: the database matches the policy and no hazard was found", style="green"))
    else:
        counts = Text(f"{s['total']} finding(s): ")
        for i, (sev, n) in enumerate((sev, n) for sev, n in s["by_severity"].items() if n):
            counts.append((", " if i else "") + f"{n} {sev}", style=SEVERITY_STYLE[sev])
        lines.append(counts)
    return join(lines)


def findings_text(findings: Sequence[Finding], fail_on: str = "low") -> str:
    """Plain text for pipes and logs (the same characters as on a terminal, without colour)."""
    return findings_styled(findings, fail_on).plain


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
