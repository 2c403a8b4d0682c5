"""Rendering at the edge: plans, apply results, findings, probe results and reports in every format."""

from pgwarden.render.envelope import SCHEMA_VERSION, document, envelope
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
