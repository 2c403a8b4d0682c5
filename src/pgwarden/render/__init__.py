"""Rendering at the edge: plans, apply results, findings, probe results and reports in every format."""

from typing import TYPE_CHECKING, Any

from pgwarden.lazy import attribute

# at once: `envelope` is both a submodule and a function, and the package's name must be the function
# (importing the submodule first would otherwise bind it to the module); the module is small
from pgwarden.render.envelope import SCHEMA_VERSION, document, envelope

if TYPE_CHECKING:
    from pgwarden.render.findings import SARIF_SCHEMA_URI, findings_styled, findings_text, to_junit, to_sarif
    from pgwarden.render.markdown import render_markdown
    from pgwarden.render.plan import (
        PLAN_SCHEMA_VERSION,
        apply_summary,
        plan_sql,
        plan_text,
        render_applies,
        render_apply,
        render_plan,
        render_plans,
    )
    from pgwarden.render.probe import probe_junit, probe_styled, probe_text
    from pgwarden.render.progress import apply_progress, database_progress, role_progress
    from pgwarden.render.report_text import render_report, report_styled
    from pgwarden.render.style import emit

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "SARIF_SCHEMA_URI",
    "SCHEMA_VERSION",
    "apply_progress",
    "apply_summary",
    "database_progress",
    "document",
    "emit",
    "envelope",
    "findings_styled",
    "findings_text",
    "plan_sql",
    "plan_text",
    "probe_junit",
    "probe_styled",
    "probe_text",
    "render_applies",
    "render_apply",
    "render_markdown",
    "render_plan",
    "render_plans",
    "render_report",
    "report_styled",
    "role_progress",
    "to_junit",
    "to_sarif",
]

#: name -> the submodule that defines it: imported on first use (PEP 562), so that a command pays only
#: for the render modules it uses (`check` imports neither the report's nor the probe's renderers)
_WHERE = {
    "PLAN_SCHEMA_VERSION": "plan",
    "SARIF_SCHEMA_URI": "findings",
    "apply_progress": "progress",
    "apply_summary": "plan",
    "database_progress": "progress",
    "emit": "style",
    "findings_styled": "findings",
    "findings_text": "findings",
    "plan_sql": "plan",
    "plan_text": "plan",
    "probe_junit": "probe",
    "probe_styled": "probe",
    "probe_text": "probe",
    "render_applies": "plan",
    "render_apply": "plan",
    "render_markdown": "markdown",
    "render_plan": "plan",
    "render_plans": "plan",
    "render_report": "report_text",
    "report_styled": "report_text",
    "role_progress": "progress",
    "to_junit": "findings",
    "to_sarif": "findings",
}


def __getattr__(name: str) -> Any:
    return attribute(__name__, _WHERE, name)
