"""The role graph as DOT, Mermaid and inline SVG (a layered layout computed here: no JS, no dependency)."""

from __future__ import annotations

import html

from pgwarden.rolegraph import Edge, Node, RoleGraph

__all__ = ["RoleGraph", "to_dot", "to_mermaid", "to_svg"]

_FILL = {
    "owner": "#ffe0b2",
    "superuser": "#ffcdd2",
    "predefined": "#e1bee7",
    "readwrite": "#c8e6c9",
    "readonly": "#dcedc8",
    "access": "#dcedc8",
    "group": "#fff9c4",
    "member": "#f5f5f5",
    "deploy": "#bbdefb",
    "other": "#eeeeee",
}


def _dot_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dot_str(value: str) -> str:
    return '"' + _dot_escape(value) + '"'


def _label(n: Node) -> str:
    return f"{n.name}\n({n.kind}{', login' if n.login else ''})"


def _dot_label(n: Node) -> str:
    """Two lines: the name, then what the role is (DOT's own \\n escape, after escaping the name)."""
    return '"' + _dot_escape(n.name) + "\\n(" + _dot_escape(n.kind + (", login" if n.login else "")) + ')"'


def to_dot(graph: RoleGraph, database: str = "") -> str:
    """Graphviz: `dot -Tsvg`. Arrows go from member to role; red, bold: on a dangerous path."""
    out = [
        f"// pgwarden role graph{' for database ' + database if database else ''}: member -> role",
        "digraph roles {",
        "  rankdir=BT;",
        '  node [shape=box, style="rounded,filled", fontname="sans-serif"];',
    ]
    for n in graph.nodes:
        extra = ", penwidth=2, color=red" if n.powerful else ""
        out.append(f"  {_dot_str(n.name)} [label={_dot_label(n)}, fillcolor={_dot_str(_FILL[n.kind])}{extra}];")
    for e in graph.edges:
        style = ", color=red, penwidth=3" if e.dangerous else ("" if e.usable else ", style=dashed")
        out.append(f"  {_dot_str(e.member)} -> {_dot_str(e.role)} [label={_dot_str(e.label or 'no options')}{style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_label(value: str) -> str:
    return value.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;").replace("\n", "<br>")


def to_mermaid(graph: RoleGraph) -> str:
    """Mermaid flowchart (GitHub renders it in Markdown); dangerous edges red and thick."""
    ids = {n.name: f"r{i}" for i, n in enumerate(graph.nodes)}
    out = ["flowchart BT"]
    for n in graph.nodes:
        out.append(f'  {ids[n.name]}["{_mermaid_label(_label(n))}"]')
    danger = []
    for i, e in enumerate(graph.edges):
        out.append(f'  {ids[e.member]} -->|"{_mermaid_label(e.label or "no options")}"| {ids[e.role]}')
        if e.dangerous:
            danger.append(str(i))
    if danger:
        out.append(f"  linkStyle {','.join(danger)} stroke:#c00,stroke-width:3px")
    powerful = [ids[n.name] for n in graph.nodes if n.powerful]
    if powerful:
        out.append("  classDef powerful stroke:#c00,stroke-width:3px")
        out.append(f"  class {','.join(powerful)} powerful")
    return "\n".join(out) + "\n"


def _layers(graph: RoleGraph) -> dict[str, int]:
    """Layer 0 (drawn at the bottom): roles without members; every other role one layer above the
    highest of its members (PostgreSQL refuses circular memberships; the guard is for safety)."""
    members: dict[str, list[str]] = {}
    for e in graph.edges:
        members.setdefault(e.role, []).append(e.member)
    layer: dict[str, int] = {}

    def depth(name: str, guard: frozenset[str] = frozenset()) -> int:
        if name in layer:
            return layer[name]
        below = [m for m in members.get(name, ()) if m not in guard]
        layer[name] = 1 + max((depth(m, guard | {name}) for m in below), default=-1)
        return layer[name]

    for n in graph.nodes:
        depth(n.name)
    return layer


_W, _H, _GAP_X, _GAP_Y = 170, 46, 30, 70


def to_svg(graph: RoleGraph) -> str:
    """Inline SVG: members below, the roles they belong to above; red, thick edges are dangerous paths."""
    if not graph.nodes:
        return ""
    layer = _layers(graph)
    top = max(layer.values())
    rows: dict[int, list[Node]] = {}
    for n in graph.nodes:
        rows.setdefault(layer[n.name], []).append(n)
    width = max(len(r) for r in rows.values()) * (_W + _GAP_X) + _GAP_X
    height = (top + 1) * (_H + _GAP_Y) + _GAP_Y
    pos: dict[str, tuple[float, float]] = {}
    for lvl, nodes in rows.items():
        span = len(nodes) * (_W + _GAP_X) - _GAP_X
        x0 = (width - span) / 2
        y = _GAP_Y / 2 + (top - lvl) * (_H + _GAP_Y)
        for i, n in enumerate(nodes):
            pos[n.name] = (x0 + i * (_W + _GAP_X), y)
    e = html.escape
    parts = [
        f'<svg id="rolegraph" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        "<title>who can become whom: arrows go from a member to the role it belongs to</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        '<marker id="arrow-danger" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c00"/></marker></defs>',
    ]
    for edge in graph.edges:
        parts.append(_svg_edge(edge, pos))
    for n in graph.nodes:
        x, y = pos[n.name]
        stroke = ' stroke="#c00" stroke-width="3"' if n.powerful else ' stroke="#777" stroke-width="1"'
        name = n.name if len(n.name) <= 22 else n.name[:21] + "…"
        parts.append(
            f'<g class="node {e(n.kind)}" data-role="{e(n.name)}"><title>{e(n.name)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_W}" height="{_H}" rx="8" fill="{_FILL[n.kind]}"{stroke}/>'
            f'<text x="{x + _W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" font-weight="600">{e(name)}</text>'
            f'<text x="{x + _W / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" font-size="12">'
            f"{e(n.kind)}{', login' if n.login else ''}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_edge(edge: Edge, pos: dict[str, tuple[float, float]]) -> str:
    (mx, my), (rx, ry) = pos[edge.member], pos[edge.role]
    x1, y1 = mx + _W / 2, my
    x2, y2 = rx + _W / 2, ry + _H
    if ry >= my:  # same layer (should not happen) or below: draw from the side
        x1, y1, x2, y2 = mx + _W, my + _H / 2, rx, ry + _H / 2
    color, width, marker = ("#c00", 3, "arrow-danger") if edge.dangerous else ("#555", 1.5, "arrow")
    dash = "" if edge.usable else ' stroke-dasharray="5,4"'
    label = html.escape(edge.label or "no options")
    cls = "edge dangerous" if edge.dangerous else "edge"
    return (
        f'<g class="{cls}" data-member="{html.escape(edge.member)}" data-role="{html.escape(edge.role)}">'
        f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{color}" stroke-width="{width}"'
        f'{dash} marker-end="url(#{marker})"/>'
        f'<text x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2:.0f}" font-size="11" fill="{color}">{label}</text></g>'
    )
