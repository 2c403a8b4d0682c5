"""The privilege report as text (a matrix, coloured on a terminal), and render_report: every format by name."""

from __future__ import annotations

import json
import textwrap

from rich.text import Text

from pgwarden.render import graph, html, markdown
from pgwarden.render.envelope import document
from pgwarden.render.findings import findings_styled
from pgwarden.render.report_parts import (
    EMPTY_MATRIX,
    columns,
    grant_lines,
    grouped,
    labelled_lines,
    member_lines,
    scope_by_role,
    scope_columns,
    scope_short,
    summary_sentence,
)
from pgwarden.render.style import BAD_STYLE, HEAD_STYLE, OK_STYLE, aligned, join
from pgwarden.report import Cell, Report

#: Short column heads, so that the matrix of a usual database fits 120 columns.
ABBREV = {
    "SELECT": "SEL",
    "INSERT": "INS",
    "UPDATE": "UPD",
    "DELETE": "DEL",
    "TRUNCATE": "TRUNC",
    "REFERENCES": "REF",
    "TRIGGER": "TRIG",
    "MAINTAIN": "MAINT",
    "USAGE": "USAGE",
    "EXECUTE": "EXEC",
    "CONNECT": "CONNECT",
    "TEMPORARY": "TEMP",
    "CREATE": "CREATE",
}
#: The text report's sections wrap at this width (the matrix is as wide as its columns).
WIDTH = 120
#: What `pgwarden report --format` accepts (`md` is markdown).
FORMATS = ("text", "json", "markdown", "md", "html", "dot", "mermaid")


def _short(c: Cell) -> str:
    return f"{c.held}/{c.total}" + (f"→{c.expected}" if c.deviation else "")


def legend() -> str:
    return (
        "cells: objects the role holds the privilege on / objects of that kind; a→b: the policy wants b (a deviation)"
    )


def _matrix(report: Report) -> list[Text | str]:
    cols = columns(report)
    if not cols:
        return [EMPTY_MATRIX]
    kinds_row: list[Text | str] = ["", ""]
    last = ""
    for kind, _ in cols:
        kinds_row.append(Text(kind if kind != last else "", style="dim"))
        last = kind
    head: list[Text | str] = [Text("role", style=HEAD_STYLE), Text("schema", style=HEAD_STYLE)]
    head += [Text(ABBREV.get(p, p), style=HEAD_STYLE) for _, p in cols]
    rows: list[list[Text | str]] = [kinds_row, head]
    for (role, schema), cells in grouped(report).items():
        by = {(c.kind, c.privilege): c for c in cells}
        row: list[Text | str] = [Text(role, style="bold"), schema]
        for kp in cols:
            c = by.get(kp)
            if c is None:
                row.append("")
            else:
                row.append(Text(_short(c), style=BAD_STYLE if c.deviation else ("" if c.held else "dim")))
        rows.append(row)
    return list(aligned(rows))


def _scope_matrix(report: Report) -> list[Text | str]:
    cols = scope_columns(report)
    if not cols:
        return ["  (none: no database or schema privilege was read)"]
    where: list[Text | str] = [""]
    last = ""
    for kind, name, _ in cols:
        label = f"database {name}" if kind == "database" else f"schema {name}"
        where.append(Text(label if label != last else "", style="dim"))
        last = label
    head: list[Text | str] = [Text("role", style=HEAD_STYLE)]
    head += [Text(ABBREV.get(p, p), style=HEAD_STYLE) for _, _, p in cols]
    rows: list[list[Text | str]] = [where, head]
    for role, cells in scope_by_role(report).items():
        row: list[Text | str] = [Text(role, style="bold")]
        for col in cols:
            sc = cells.get(col)
            row.append("" if sc is None else Text(scope_short(sc), style=BAD_STYLE if sc.deviation else ""))
        rows.append(row)
    return list(aligned(rows))


def _verdicts(report: Report) -> list[Text | str]:
    """A line per (role, schema) in words: as the policy wants, or each group of privileges that differs
    the same way (`table DELETE INSERT 1/2 (want 2)`), one per line."""
    out: list[Text | str] = []
    for (role, schema), cells in grouped(report).items():
        groups: dict[tuple[str, int, int, int], list[str]] = {}
        for c in cells:
            if c.deviation:
                groups.setdefault((c.kind, c.held, c.total, c.expected), []).append(c.privilege)
        line = Text(f"  {role} on schema {schema}: ")
        if not groups:
            out.append(line.append("as the policy wants", style=OK_STYLE))
            continue
        out.append(line.append(f"{sum(len(p) for p in groups.values())} deviation(s)", style=BAD_STYLE))
        for (kind, held, total, expected), privs in groups.items():
            out.append(Text(f"    {kind} {' '.join(privs)} {held}/{total} (want {expected})", style=BAD_STYLE))
    for sc in report.scope_deviations:
        want = "must hold" if sc.want == "yes" else "must not hold"
        out.append(Text(f"  {sc.role} on {sc.kind} {sc.name}: {want} {sc.privilege}", style=BAD_STYLE))
    return out


def _section(title: str) -> list[Text | str]:
    return ["", Text(title, style="bold underline")]


def report_styled(report: Report) -> Text:
    bad = report.summary["deviations"] or report.summary["findings"]
    lines: list[Text | str] = [
        Text(f"database {report.database} (PostgreSQL {report.server_version})", style="bold"),
        *(
            Text(part, style=BAD_STYLE if bad else OK_STYLE)
            for part in textwrap.wrap("summary: " + summary_sentence(report), WIDTH, subsequent_indent="  ")
        ),
        legend(),
        "",
    ]
    if report.labelled:
        lines += [Text("labelled columns (every path: pgwarden review)", style="bold underline")]
        lines += [f"  {line}" for line in labelled_lines(report)] + [""]
    lines += _matrix(report)
    lines += _section("database and schema privileges")
    lines += _scope_matrix(report)
    lines += _section("by role")
    lines += _verdicts(report)
    supers = ", ".join(report.superusers) or "none"
    lines.append(f"  superusers (hold everything, not shown above): {supers}")
    lines += _section("owners")
    lines += [f"  {o['schema']} {o['kind']}s: {o['count']} owned by {o['owner']}" for o in report.owners] or [
        "  (no objects in the managed schemas)"
    ]
    lines += _section("default privileges")
    for d in report.default_privileges:
        where = f" in schema {d['schema']}" if d["schema"] else ""
        grants = "; ".join(f"{g}: {','.join(p)}" for g, p in d["grants"].items()) or "nothing"
        lines.append(f"  for {d['for_role']} on {d['objects']}{where}: {grants}")
        if d.get("note"):
            lines += [Text(f"    {part}", style="dim") for part in textwrap.wrap(f"({d['note']})", WIDTH - 4)]
    if not report.default_privileges:
        lines.append("  (none: objects get PostgreSQL's built-in defaults)")
    lines += _section("grants (the policy's, by scope)")
    lines += [f"  {g}" for g in grant_lines(report)] or ["  (none)"]
    if report.members:
        lines += _section("members (people and services: their rights come from groups only)")
        lines += [f"  {m}" for m in member_lines(report)]
    lines += _section("memberships")
    for m in report.memberships:
        lines.append(
            f"  {m['member']} is member of {m['role']}"
            + ("" if m["direct"] else " (indirectly)")
            + (" with admin" if m["admin"] else "")
        )
    if not report.memberships:
        lines.append("  (none involving the policy's roles)")
    lines += _section("who can become whom")
    lines += _paths(report)
    n = report.summary["deviations"]
    lines += ["", Text(f"{n} deviation(s) from the policy", style=BAD_STYLE if n else OK_STYLE), ""]
    styled = join(lines)
    styled.append_text(findings_styled(report.findings))
    return styled


def _paths(report: Report) -> list[Text | str]:
    paths = report.graph.paths if report.graph else ()
    if not paths:
        return ["  (no role can become the owner, a superuser or a powerful predefined role)"]
    out: list[Text | str] = []
    for p in paths:
        mark = "DANGER " if p.dangerous else "ok     "
        parts = textwrap.wrap(p.why, WIDTH - 9)
        for i, part in enumerate(parts):
            out.append(Text(f"  {mark if i == 0 else ' ' * 7}{part}", style=BAD_STYLE if p.dangerous else "dim"))
    return out


def render_text(report: Report) -> str:
    return report_styled(report).plain


def render_report(report: Report, fmt: str) -> str:
    """The report in one of FORMATS (`md` is markdown), as a string."""
    if fmt == "json":
        return json.dumps(document(report.to_json()), indent=2, ensure_ascii=False) + "\n"
    if fmt in ("markdown", "md"):
        return markdown.render_markdown(report)
    if fmt == "html":
        return html.render_html(report)
    if fmt in ("dot", "mermaid"):
        empty = graph.RoleGraph((), (), ())
        the_graph = report.graph or empty
        return graph.to_dot(the_graph, report.database) if fmt == "dot" else graph.to_mermaid(the_graph)
    return render_text(report)
