"""Renderers without a server: empty reports say so, the role graph escapes names, the envelope's shape."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from pgwarden.multi import Outcome
from pgwarden.render import envelope, render_report
from pgwarden.render.graph import to_dot, to_mermaid, to_svg
from pgwarden.report import Report
from pgwarden.rolegraph import Edge, Node, RoleGraph, RolePath

HOSTILE = 'a "quoted"\\ role <b>&'


def _graph() -> RoleGraph:
    nodes = (
        Node("own", "owner", False, True),
        Node(HOSTILE, "readwrite", True, False),
        Node("mid", "other", False, False),
        Node("ro", "readonly", True, False),
    )
    edges = (
        Edge(HOSTILE, "mid", True, True, False, dangerous=True),
        Edge("mid", "own", True, False, True, dangerous=True),
        Edge("ro", "mid", False, False, False),
    )
    return RoleGraph(nodes, edges, (RolePath((HOSTILE, "mid", "own"), True, "becomes the owner"),))


def test_dot_escapes_names_and_marks_dangerous_edges() -> None:
    dot = to_dot(_graph(), "shop")
    assert '"a \\"quoted\\"\\\\ role <b>&" -> "mid" [label="INHERIT SET", color=red, penwidth=3];' in dot
    assert '"mid" -> "own" [label="INHERIT ADMIN", color=red, penwidth=3];' in dot
    assert '"ro" -> "mid" [label="no options", style=dashed];' in dot  # a membership that gives nothing
    assert dot.count("{") == dot.count("}") == 1


def test_mermaid_escapes_names_and_styles_the_dangerous_links() -> None:
    text = to_mermaid(_graph())
    assert "#quot;quoted#quot;" in text and "<b>" not in text and "#lt;b#gt;" in text
    assert "linkStyle 0,1 stroke:#c00" in text
    assert re.search(r"class r0 powerful", text)


def test_svg_is_inline_escaped_and_layered() -> None:
    svg = to_svg(_graph())
    assert svg.startswith('<svg id="rolegraph"') and "http" not in svg and "<script" not in svg
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    ys = {}
    for name, y in re.findall(r'data-role="([^"]+)"><title>[^<]*</title><rect x="\d+" y="(\d+)"', svg):
        ys[name] = int(y)
    assert ys["own"] < ys["mid"] < ys["ro"]  # members below the roles they belong to
    parser = HTMLParser()
    parser.feed(svg)  # well-formed enough for an HTML parser
    assert svg.count('class="edge dangerous"') == 2


def test_an_empty_report_says_so_in_every_format() -> None:
    report = Report("shop", "17.0", (("own", "owner"), ("PUBLIC", "public")), ("public",), (), (), (), (), ())
    text = render_report(report, "text")
    for needle in ("No tables, sequences or routines", "(no objects in the managed schemas)",
                   "(none: objects get PostgreSQL's built-in defaults)", "(none involving the policy's roles)",
                   "no findings"):  # fmt: skip
        assert needle in text, needle
    page = render_report(report, "html")
    assert page.count('class="empty"') >= 5 and "<svg" not in page
    assert "No tables, sequences or routines" in render_report(report, "md")
    assert json.loads(render_report(report, "json"))["schema_version"] == 1
    assert render_report(report, "dot").startswith("// pgwarden role graph")


def test_envelope_wraps_each_database_and_keeps_errors_apart() -> None:
    from pgwarden.errors import ConnectError

    outcomes = [
        Outcome("a", {"database": "a", "schema_version": 1, "n": 1}, None, 0.0123),
        Outcome("b", None, ConnectError("cannot open database b"), 0.5),
    ]
    doc = envelope(outcomes, lambda r: r, {"databases": 2, "errors": 1}, error_extra={"ok": False})
    assert doc == {
        "schema_version": 1,
        "databases": [
            {"database": "a", "seconds": 0.012, "n": 1},
            {"database": "b", "seconds": 0.5, "error": "cannot open database b", "ok": False},
        ],
        "summary": {"databases": 2, "errors": 1},
    }


def test_the_report_command_offers_every_format_the_renderer_knows() -> None:
    from pgwarden.commands.report import REPORT_FORMATS
    from pgwarden.render.report_text import FORMATS

    assert REPORT_FORMATS == FORMATS
