"""The report as Markdown: the matrix, the database and schema privileges, a Mermaid role graph, the findings."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pgwarden.render.graph import to_mermaid
from pgwarden.render.report_parts import (
    EMPTY_MATRIX,
    cell_text,
    columns,
    grouped,
    labelled_lines,
    scope_by_role,
    scope_columns,
    scope_short,
    summary_sentence,
)
from pgwarden.report import Report

#: Markdown's inline punctuation: emphasis, code, links, tables, strikethrough; and the escape itself.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(value: object) -> str:
    """Names and messages are data, never Markup: HTML-escape <, >, & (a table named `<img ...>` must not
    become an element), backslash-escape Markdown's punctuation, and keep everything on one line (a newline
    would end a table row or a list item)."""
    text = " ".join(str(value).splitlines())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(value: str) -> str:
    """An inline code span that no backtick in `value` can close (CommonMark: a longer fence)."""
    text = " ".join(value.splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"`{text}`"


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


def _table(heads: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> list[str]:
    if not rows:
        return [empty]
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def _matrix(report: Report) -> list[str]:
    cols = columns(report)
    rows = []
    for (role, schema), cells in grouped(report).items():
        by = {(c.kind, c.privilege): c for c in cells}
        row = [_md(role), _md(schema)]
        for kp in cols:
            c = by.get(kp)
            row.append("" if c is None else (f"**{cell_text(c)}**" if c.deviation else f"{c.held}/{c.total}"))
        rows.append(row)
    return _table(["role", "schema", *(f"{k} {p}" for k, p in cols)], rows if cols else [], EMPTY_MATRIX)


def _scope(report: Report) -> list[str]:
    cols = scope_columns(report)
    rows = []
    for role, cells in scope_by_role(report).items():
        values = [cells.get(k) for k in cols]
        shown = ["" if v is None else (f"**{scope_short(v)}**" if v.deviation else scope_short(v)) for v in values]
        rows.append([_md(role), *shown])
    return _table(["role", *(f"{k} {_md(n)} {p}" for k, n, p in cols)], rows, "None read.")


def _paths(report: Report) -> list[str]:
    paths = report.graph.paths if report.graph else ()
    out = [f"- {'**danger**' if p.dangerous else 'by design'}: {_md(p.why)}" for p in paths]
    out = out or ["No role can become the owner, a superuser or a powerful predefined role."]
    if report.graph and report.graph.nodes:
        out += ["", "```mermaid", to_mermaid(report.graph).rstrip(), "```"]
    return out


def _labelled(report: Report) -> list[str]:
    """The labelled columns lead: who can read or write each (`pgwarden review` lists every path)."""
    if not report.labelled:
        return []
    return ["## Labelled columns", "", *(f"- {_md(line)}" for line in labelled_lines(report)), ""]


def render_markdown(report: Report) -> str:
    out = [
        f"# Privileges in database {_md(report.database)}",
        "",
        f"**Summary:** {_md(summary_sentence(report))}",
        "",
        f"PostgreSQL {_md(report.server_version)}. "
        f"Cells: objects on which the role holds the privilege / objects of that kind; "
        f"**bold** where the policy wants another number.",
        "",
        *_labelled(report),
        *_matrix(report),
        "",
        "## Database and schema privileges",
        "",
        *_scope(report),
        "",
        f"Superusers (hold everything): {', '.join(_md(s) for s in report.superusers) or 'none'}.",
        "",
        "## Owners",
        "",
    ]
    owners = [[_md(o["schema"]), _md(o["kind"]), _md(o["owner"]), str(o["count"])] for o in report.owners]
    out += _table(["schema", "kind", "owner", "objects"], owners, "No objects in the managed schemas.")
    out += ["", "## Default privileges", ""]
    defaults = [
        [
            _md(d["for_role"]),
            _md(d["schema"] or "(all)"),
            _md(d["objects"]),
            _md("; ".join(f"{g}: {','.join(p)}" for g, p in d["grants"].items()))
            + (f" ({_md(d['note'])})" if d.get("note") else ""),
        ]
        for d in report.default_privileges
    ]
    out += _table(["for role", "schema", "objects", "grants"], defaults, "None: PostgreSQL's built-in defaults.")
    out += ["", "## Memberships", ""]
    members = [[_md(m["member"]), _md(m["role"]), _yes(m["direct"]), _yes(m["admin"])] for m in report.memberships]
    out += _table(["member", "role", "direct", "admin"], members, "None involving the policy's roles.")
    out += ["", "## Who can become whom", "", *_paths(report), "", "## Findings", ""]
    if not report.findings:
        out.append("None: the database matches the policy and no hazard was found.")
    for f in report.findings:
        who = f" (role {_md(f.role)})" if f.role else ""
        fix = f" Fix: {_code(f.fix)}" if f.fix else ""
        out.append(f"- **{f.severity}** `{f.rule}` {_md(f.object)}{who}: {_md(f.message)}{fix}")
    return "\n".join(out) + "\n"
