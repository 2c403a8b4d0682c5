"""Probe results: the role x action matrix as text (coloured on a terminal) and JUnit XML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from rich.text import Text

from pgwarden.probe import Attempt, ProbeResult
from pgwarden.render.envelope import document, envelope
from pgwarden.render.style import BAD_STYLE, HEAD_STYLE, OK_STYLE, aligned, emit, join

if TYPE_CHECKING:
    from pgwarden.multi import Outcome
    from pgwarden.ui import UI


def _why(a: Attempt) -> str:
    """The server's answer: `[SQLSTATE] message`, without a bracket when there was no SQLSTATE
    (a failed login has none: libpq reports it before any server error)."""
    if not a.message:
        return ""
    return f" [{a.sqlstate}] {a.message}" if a.sqlstate else f": {a.message}"


def probe_styled(result: ProbeResult) -> Text:
    """The matrix: one row per action, one column per role; `allowed`/`denied`, `!` when unexpected."""
    roles = result.roles()
    cells = {(c.role, c.level, c.action): c for c in result.matrix()}
    rows: list[list[Text | str]] = [[Text("action", style=HEAD_STYLE)]]
    rows[0] += [Text(f"{r} ({lvl})", style=HEAD_STYLE) for r, lvl in roles]
    for action in result.actions():
        if not any((r, lvl, action) in cells for r, lvl in roles):
            continue
        row: list[Text | str] = [action]
        for r, lvl in roles:
            c = cells.get((r, lvl, action))
            if c is None:
                row.append(Text("-", style="dim"))
            elif c.ok:
                row.append(Text(c.outcome, style=OK_STYLE if c.outcome == "allowed" else ""))
            else:
                row.append(Text(f"{c.outcome}! (expected {c.expected})", style=BAD_STYLE))
        rows.append(row)
    lines: list[Text | str] = list(aligned(rows))
    for a in result.failures:
        lines.append(
            Text(
                f"UNEXPECTED {a.who} {a.action} {a.object}: {a.outcome}, expected "
                f"{'allowed' if a.expected else 'denied'}{_why(a)}",
                style=BAD_STYLE,
            )
        )
    lines.extend(f"note: {n}" for n in result.notes)
    n = len(result.failures)
    total = Text(f"{len(result.attempts)} attempts, ")
    total.append("all as the policy expects" if n == 0 else f"{n} unexpected", style=OK_STYLE if n == 0 else BAD_STYLE)
    lines.append(total)
    return join(lines)


def probe_text(result: ProbeResult) -> str:
    """Plain text for pipes and logs."""
    return probe_styled(result).plain


def probe_junit(result: ProbeResult | Sequence[ProbeResult]) -> str:
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
            rows = [a for a in res.attempts if a.role == role and a.level == level]
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
                    suite, "testcase", classname=f"pgwarden.probe.{a.who}", name=f"{a.action} {a.object}"
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


def render_probe(ui: UI, result: ProbeResult, fmt: str) -> None:
    if fmt == "json":
        ui.json(document(result.to_json()))
    elif fmt == "junit":
        ui.raw(probe_junit(result))
    else:
        emit(ui, probe_styled(result))


def render_probes(ui: UI, outcomes: Sequence[Outcome[ProbeResult]], fmt: str) -> None:
    """Several databases: the envelope in JSON, one suite per role and database in JUnit, a section each in text."""
    done = [o.result for o in outcomes if o.result is not None]
    if fmt == "json":
        summary = {
            "databases": len(outcomes),
            "failed": sum(1 for r in done if not r.ok),
            "errors": sum(1 for o in outcomes if o.error),
        }
        ui.json(envelope(outcomes, lambda r: r.to_json(), summary, error_extra={"ok": False}))
    elif fmt == "junit":
        ui.raw(probe_junit(done))
    else:
        for o in outcomes:
            if o.result is not None:
                emit(ui, Text(f"== database {o.database}\n", style="bold"))
                emit(ui, probe_styled(o.result))
    for o in outcomes:
        if o.error is not None:
            ui.err.print(f"error: database {o.database}: {o.error}", markup=False)
