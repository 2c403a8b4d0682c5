"""Probe results as text and JUnit XML (moving to the render package)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from pgwarden.probe.actions import ACTIONS
from pgwarden.probe.model import ProbeResult


def render_text(result: ProbeResult) -> str:
    """The matrix: one row per action, one column per role; cells `allowed`/`denied`, `!` when unexpected."""
    roles = result.roles()
    cells = {(c.role, c.action): c for c in result.matrix()}
    head = ["action"] + [f"{r} ({lvl})" for r, lvl in roles]
    rows = [head]
    for action in ACTIONS:
        if not any((r, action) in cells for r, _ in roles):
            continue
        row = [action]
        for r, _ in roles:
            c = cells.get((r, action))
            row.append("-" if c is None else (c.outcome if c.ok else f"{c.outcome}! (expected {c.expected})"))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for a in result.failures:
        why = f" [{a.sqlstate}] {a.message}" if a.message else ""
        lines.append(
            f"UNEXPECTED {a.role} {a.action} {a.object}: {a.outcome}, expected "
            f"{'allowed' if a.expected else 'denied'}{why}"
        )
    lines.extend(f"note: {n}" for n in result.notes)
    n = len(result.failures)
    lines.append(f"{len(result.attempts)} attempts, " + ("all as the policy expects" if n == 0 else f"{n} unexpected"))
    return "\n".join(lines) + "\n"


def render_junit(result: ProbeResult | Sequence[ProbeResult]) -> str:
    """JUnit XML: one test suite per role (and database, for several), one test case per attempt."""
    results = [result] if isinstance(result, ProbeResult) else list(result)
    several = len(results) > 1
    root = ET.Element(
        "testsuites",
        name="pgwarden probe",
        tests=str(sum(len(r.attempts) for r in results)),
        failures=str(sum(len(r.failures) for r in results)),
    )
    for res in results:
        for role, level in res.roles():
            rows = [a for a in res.attempts if a.role == role]
            suite = ET.SubElement(
                root,
                "testsuite",
                name=f"{res.database}: {role} ({level})" if several else f"{role} ({level})",
                tests=str(len(rows)),
                failures=str(sum(1 for a in rows if not a.ok)),
                errors="0",
                skipped="0",
            )
            for a in rows:
                case = ET.SubElement(
                    suite, "testcase", classname=f"pgwarden.probe.{role}", name=f"{a.action} {a.object}"
                )
                if not a.ok:
                    failure = ET.SubElement(
                        case,
                        "failure",
                        message=f"{a.outcome}, expected {'allowed' if a.expected else 'denied'}",
                        type=a.sqlstate or a.outcome,
                    )
                    failure.text = a.message or ""
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
