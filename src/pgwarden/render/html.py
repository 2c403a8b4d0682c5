"""The report as one self-contained HTML page: inline CSS and SVG, no script, no external resource."""

from __future__ import annotations

import html

from pgwarden.render.graph import to_svg
from pgwarden.render.report_parts import (
    EMPTY_MATRIX,
    columns,
    grant_lines,
    grouped,
    labelled_lines,
    member_lines,
    scope_by_role,
    scope_columns,
    summary_sentence,
)
from pgwarden.report import Report, ScopeCell

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:100%}
.scroll{overflow:auto;width:fit-content;max-width:100%;border:1px solid #ddd;margin:1rem 0;padding-right:1px}
#matrix-box{max-height:80vh}
table{border-collapse:separate;border-spacing:0;margin:0}
.scroll table{margin:0}
th,td{border:1px solid #ccc;border-width:0 1px 1px 0;padding:.25rem .35rem;text-align:center;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0;z-index:1}
#matrix th,#matrix td{font-size:.85rem}
#matrix th{font-weight:600;font-size:.75rem}
td.role,td.schema{text-align:left;font-weight:600;background:#fff}
td.role{position:sticky;left:0;z-index:1;white-space:normal;min-width:7rem;max-width:13rem;overflow-wrap:anywhere}
#matrix thead th:first-child{left:0;z-index:2}
td.schema{white-space:normal;max-width:9rem;overflow-wrap:anywhere}
td.none{color:#aaa}
td.deviation{background:#ffd7d7;color:#900;font-weight:700}
.want{display:block;font-size:.75em;font-weight:400}
.level{display:block;font-size:.8em;font-weight:400;color:#666}
.critical,.high{color:#900}.medium{color:#a60}.low{color:#555}
#summary{border:2px solid #ccc;padding:.6rem .8rem;margin:1rem 0;font-size:1.05rem}
#summary.bad{border-color:#c66;background:#fff4f4}#summary.good{border-color:#6a6;background:#f4fff4}
pre.fix{background:#f6f6f6;border:1px solid #ddd;padding:.4rem;white-space:pre-wrap;word-break:break-all;color:#222}
p.empty{color:#666;font-style:italic}
.note{color:#666;font-size:.9em;white-space:normal}
#defaults td:last-child{white-space:normal;max-width:40rem;text-align:left}
li.danger{color:#900;font-weight:600}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _summary(report: Report) -> str:
    """The counts first (Report.summary, the same numbers as every other format), with a link to the findings."""
    s = report.summary
    bad = s["deviations"] or s["findings"]
    link = ' <a href="#findings-head">See the findings.</a>' if s["findings"] else ""
    return (
        f'<p id="summary" class="{"bad" if bad else "good"}" data-deviations="{s["deviations"]}" '
        f'data-findings="{s["findings"]}"><b>Summary:</b> {_e(summary_sentence(report))}{link}</p>'
    )


def _matrix(report: Report) -> str:
    cols = columns(report)
    if not cols:
        return f'<p class="empty" id="matrix-empty">{_e(EMPTY_MATRIX)}</p>'
    head = "".join(f"<th>{_e(k)}<br>{_e(p)}</th>" for k, p in cols)
    levels = dict(report.roles)
    rows = []
    for (role, schema), cells in grouped(report).items():
        by = {(c.kind, c.privilege): c for c in cells}
        tds = []
        for kp in cols:
            c = by.get(kp)
            if c is None:
                tds.append("<td></td>")
                continue
            cls = "deviation" if c.deviation else ("held" if c.held else "none")
            attrs = f'class="{cls}" data-role="{_e(role)}" data-privilege="{_e(kp[0])} {_e(kp[1])}"'
            if c.deviation:
                attrs += f' title="policy: {c.expected}/{c.total}"'
                want = f'<span class="want">policy: {c.expected}/{c.total}</span>'
                tds.append(f"<td {attrs}>{c.held}/{c.total}{want}</td>")
            else:
                tds.append(f"<td {attrs}>{c.held}/{c.total}</td>")
        level = f'<span class="level">{_e(levels.get(role, ""))}</span>'
        head_cells = (
            f'<td class="role" data-role="{_e(role)}">{_e(role)}{level}</td><td class="schema">{_e(schema)}</td>'
        )
        rows.append(f"<tr>{head_cells}{''.join(tds)}</tr>")
    return (
        f'<div class="scroll" id="matrix-box"><table id="matrix"><thead><tr><th>role</th><th>schema</th>{head}'
        f"</tr></thead><tbody>\n{''.join(rows)}\n</tbody></table></div>"
    )


def _scope_cell(c: ScopeCell | None) -> str:
    if c is None:
        return "<td></td>"
    held = "yes" if c.held else "no"
    if not c.deviation:
        return f'<td class="{"held" if c.held else "none"}">{held}</td>'
    want = "must hold" if c.want == "yes" else "must not hold"
    return f'<td class="deviation scope" data-role="{_e(c.role)}">{held}<span class="want">policy: {want}</span></td>'


def _scope(report: Report) -> str:
    cols = scope_columns(report)
    if not cols:
        return '<p class="empty">No database or schema privilege was read.</p>'
    head = "".join(f"<th>{_e(k)} {_e(n)}<br>{_e(p)}</th>" for k, n, p in cols)
    rows = "".join(
        f'<tr><td class="role" data-role="{_e(role)}">{_e(role)}</td>'
        + "".join(_scope_cell(cells.get(k)) for k in cols)
        + "</tr>"
        for role, cells in scope_by_role(report).items()
    )
    table = f'<table id="scope"><thead><tr><th>role</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def _table(table_id: str, heads: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty" id="{table_id}-empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table id="{table_id}"><tr>{head}</tr>{body}</table></div>'


def _findings(report: Report) -> str:
    if not report.findings:
        return '<p class="empty">None: the database matches the policy and no hazard was found.</p>'
    items = []
    for f in report.findings:
        who = f" (role {_e(f.role)})" if f.role else ""
        fix = (
            f'<pre class="fix">{_e(f.fix)}</pre>'
            if f.fix
            else '<p class="note">No SQL fixes this: see the message.</p>'
        )
        items.append(
            f'<li class="{_e(f.severity)}"><b>{_e(f.severity)}</b> <code>{_e(f.rule)}</code> '
            f"{_e(f.object)}{who}: {_e(f.message)}{fix}</li>"
        )
    return f'<ul id="findings">{"".join(items)}</ul>'


def _graph(report: Report) -> str:
    graph = report.graph
    if graph is None or not graph.nodes:
        return '<p class="empty">No roles to draw.</p>'
    paths = (
        "".join(
            f'<li class="{"danger" if p.dangerous else "design"}">'
            f"{'danger: ' if p.dangerous else 'by design: '}{_e(p.why)}</li>"
            for p in graph.paths
        )
        or "<li>No role can become the owner, a superuser or a powerful predefined role.</li>"
    )
    return (
        "<p>Arrows go from a member to the role it belongs to, labelled with what the membership gives "
        "(INHERIT: its privileges; SET: SET ROLE to it; ADMIN: may grant it, to itself too). "
        "Red, thick: on a path to something powerful that the policy does not intend.</p>"
        f'<div class="scroll" id="graph-box">{to_svg(graph)}</div><ul id="paths">{paths}</ul>'
    )


def render_html(report: Report) -> str:
    """One self-contained HTML page (inline CSS, no script, no external resource)."""
    e = _e
    owners = [[e(o["schema"]), e(o["kind"]), e(o["owner"]), str(o["count"])] for o in report.owners]
    defaults = [
        [
            e(d["for_role"]),
            e(d["schema"] or "(all)"),
            e(d["objects"]),
            e("; ".join(f"{g}: {','.join(p)}" for g, p in d["grants"].items()))
            + (f'<span class="note"><br>{e(d["note"])}</span>' if d.get("note") else ""),
        ]
        for d in report.default_privileges
    ]
    members = [
        [e(m["member"]), e(m["role"]), "yes" if m["direct"] else "no", "yes" if m["admin"] else "no"]
        for m in report.memberships
    ]
    n = report.summary["deviations"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pgwarden report: {e(report.database)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head><body>
<h1>Privileges in database {e(report.database)}</h1>
{_summary(report)}
{_labelled(report)}<p>PostgreSQL {
        e(report.server_version)
    }. Each cell: objects on which the role holds the privilege / objects
of that kind in the schema. <span class="deviation">Highlighted</span> cells differ from the policy and
show what it wants ({n} deviation(s)).</p>
{_matrix(report)}
<h2>Database and schema privileges</h2>
{_scope(report)}
<p id="superusers">Superusers (hold everything, not shown above): {e(", ".join(report.superusers) or "none")}.</p>
<h2 id="findings-head">Findings</h2>{_findings(report)}
<h2>Who can become whom</h2>{_graph(report)}
<h2>Owners</h2>{_table("owners", ["schema", "kind", "owner", "objects"], owners, "No objects in the managed schemas.")}
<h2>Default privileges</h2>{
        _table(
            "defaults",
            ["for role", "schema", "objects", "grants"],
            defaults,
            "None: objects get PostgreSQL's built-in defaults.",
        )
    }
<h2>Grants by scope</h2>{_list("grants", grant_lines(report), "The policy grants nothing in this database.")}
<h2>Members</h2>{_list("members", member_lines(report), "The policy declares no members.")}
<h2>Memberships</h2>{
        _table("memberships", ["member", "role", "direct", "admin"], members, "None involving the policy's roles.")
    }
</body></html>
"""


def _labelled(report: Report) -> str:
    """The labelled columns lead the page."""
    if not report.labelled:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in labelled_lines(report))
    return f'<h2 id="labelled">Labelled columns</h2><ul class="labelled">{items}</ul>\n'


def _list(ident: str, items: list[str], empty: str) -> str:
    if not items:
        return f'<p class="empty">{html.escape(empty)}</p>'
    return f'<ul id="{ident}">' + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
