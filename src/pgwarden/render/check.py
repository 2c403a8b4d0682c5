"""`check` results, one database or several, in text (coloured on a terminal), JSON, SARIF and JUnit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pgwarden.render.envelope import document, envelope
from pgwarden.render.findings import findings_styled, to_junit, to_sarif
from pgwarden.render.style import emit

if TYPE_CHECKING:
    from pgwarden.check import CheckResult
    from pgwarden.multi import Outcome
    from pgwarden.plan import Plan
    from pgwarden.ui import UI


def provider_lines(plan: Plan) -> list[str]:
    """The managed service the server looks like, its roles left alone, and what its admin cannot do."""
    found = plan.provider
    if found is None or not found.managed:
        return []
    lines = [f"provider: {found.provider.name} ({', '.join(found.signals)})"]
    if found.external:
        lines.append(f"  its roles, left alone (never altered, revoked or retired): {', '.join(found.external)}")
    for i in plan.impossible:
        lines.append(f"  cannot on {found.provider.name}: {i.step.object}: {i.why}")
        lines.append(f"    instead: {i.instead}")
    return lines


def _rules() -> Any:
    from pgwarden.rules import RULES

    return RULES.values()


def check_summary(outcomes: Sequence[Outcome[CheckResult]], fail_on: str) -> dict[str, int]:
    ok = [o.result for o in outcomes if o.result is not None]
    return {
        "databases": len(outcomes),
        "failed": sum(1 for r in ok if r.failed(fail_on)),
        "findings": sum(len(r.findings) for r in ok),
        "errors": sum(1 for o in outcomes if o.error),
    }


def render_check(ui: UI, result: CheckResult, fmt: str, fail_on: str) -> None:
    from pgwarden import __version__

    if fmt == "json":
        ui.json(document(result.to_json(fail_on)))
    elif fmt == "sarif":
        ui.json(to_sarif(result.findings, _rules(), version=__version__, target=result.database))
    elif fmt == "junit":
        ui.raw(to_junit([(result.database, result.findings)], _rules(), fail_on=fail_on))
    else:
        lines = provider_lines(result.plan)
        if lines:
            ui.raw("\n".join(lines) + "\n\n")
        emit(ui, findings_styled(result.findings, fail_on))
        if result.outside is not None:  # the ledger's word on where they came from
            from rich.text import Text

            ui.print(Text(result.outside["message"]))


def render_checks(ui: UI, outcomes: Sequence[Outcome[CheckResult]], fmt: str, fail_on: str) -> None:
    """Several databases: the envelope in JSON, one SARIF run per database, one JUnit suite per database,
    a section per database in text; errors on stderr, never hiding the other databases."""
    from pgwarden import __version__

    ok = [(o.database, o.result) for o in outcomes if o.result is not None]
    if fmt == "json":
        ui.json(envelope(outcomes, lambda r: r.to_json(fail_on), check_summary(outcomes, fail_on)))
    elif fmt == "sarif":
        runs: list[object] = []
        doc: dict[str, Any] = {}
        for name, result in ok:
            doc = to_sarif(result.findings, _rules(), version=__version__, target=name)
            runs.extend(doc["runs"])
        ui.json({**doc, "runs": runs})
    elif fmt == "junit":
        ui.raw(to_junit([(name, r.findings) for name, r in ok], _rules(), fail_on=fail_on))
    else:
        from rich.text import Text  # text output only (render/style.py)

        for o in outcomes:
            emit(ui, Text(f"== database {o.database}\n", style="bold"))
            if o.result is not None:
                emit(ui, findings_styled(o.result.findings, fail_on))
            else:
                emit(ui, Text(f"error: {o.error}\n", style="bold red"))
    for o in outcomes:
        if o.error is not None:
            ui.err.print(f"error: database {o.database}: {o.error}", markup=False)
