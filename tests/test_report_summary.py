"""Report counts agree in every format, the summary comes first, the HTML fits the screen, the Markdown is inert."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from psycopg import sql

from conftest import PgCleanup
from helpers import chromium_dom, find_chromium
from test_core import Split, make_split

HOSTILE_TABLE = "<img src=x onerror=alert(1)>"
HOSTILE_ROLES = ("*bold* `tick` |pipe|", "[link](javascript:alert(1))")


def _messy(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    """A split with deviations of both kinds (object cells and database/schema cells) and findings:
    an outsider with CREATE on the schema and a table of its own, the app with TRUNCATE, a table the
    app was never granted, a sequence and a routine."""
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    outsider = pg_cleanup.role(unique_name("outsider"))
    with s.login(s.owner) as owner:
        owner.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        owner.execute("CREATE TABLE orders (id serial PRIMARY KEY)")
        owner.execute("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    with s.admin_db() as db:
        db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
        db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(outsider)))
        db.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(s.database), sql.Identifier(outsider)
            )
        )
        db.execute(sql.SQL("GRANT TRUNCATE ON items TO {}").format(sql.Identifier(s.app)))
        db.execute(sql.SQL("GRANT SELECT ON orders TO {}").format(sql.Identifier(outsider)))
    return s


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text[:3000]}"
    return int(found.group(1))


def test_counts_agree_in_text_json_markdown_html_and_the_o_message(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s = _messy(tmp_path, admin_dsn, unique_name, pg_cleanup)
    data = s.cli("report", "--format", "json").json()
    cells = sum(1 for c in data["privileges"] if c["deviation"])
    scope = sum(1 for c in data["scope_privileges"] if c["deviation"])
    assert cells > 0 and scope > 0  # both kinds: a count that forgets one of them shows here
    total, findings = cells + scope, len(data["findings"])
    assert data["summary"]["deviations"] == total and data["summary"]["findings"] == findings > 0
    assert data["summary"]["object_deviations"] == data["deviations"] == cells
    assert data["summary"]["scope_deviations"] == data["scope_deviations"] == scope

    text = s.cli("report").stdout
    head = text.splitlines()[1]
    assert head.startswith("summary: ")  # the first thing after the title
    assert _count(r"summary: (\d+) deviation", text) == total
    assert _count(r"(\d+) deviation\(s\) from the policy\n", text.split("who can become whom")[1]) == total
    assert _count(r"; (\d+) finding\(s\)", text) == findings
    assert not [line for line in text.splitlines() if len(line) > 120]

    markdown = s.cli("report", "--format", "markdown").stdout
    assert markdown.splitlines()[2].startswith("**Summary:**")
    assert _count(r"\*\*Summary:\*\* (\d+) deviation", markdown) == total
    assert _count(r"; (\d+) finding\(s\)", markdown) == findings
    assert markdown.count("\n- **") == findings

    page = tmp_path / "report.html"
    written = s.cli("report", "--format", "html", "-o", str(page))
    assert written.exit_code == 0, str(written)
    assert _count(r"(\d+) deviation\(s\) from the policy", written.stdout + written.stderr) == total
    assert _count(r"; (\d+) finding\(s\)", written.stdout + written.stderr) == findings
    html = page.read_text("utf-8")
    assert _count(r'id="summary" class="bad" data-deviations="(\d+)"', html) == total
    assert _count(r"\((\d+) deviation\(s\)\)", html) == total  # the legend under the summary
    assert html.count('<td class="deviation') == total
    assert html.index('id="summary"') < html.index('id="matrix"')


def test_markdown_escapes_hostile_names_and_says_yes_or_no(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    roles = [pg_cleanup.role(unique_name("x") + name) for name in HOSTILE_ROLES]
    with s.login(s.owner) as owner:
        owner.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(HOSTILE_TABLE)))
    with s.admin_db() as db:
        for role in roles:
            db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
            db.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(HOSTILE_TABLE), sql.Identifier(role)))
            db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(s.app), sql.Identifier(role)))
    result = s.cli("report", "--format", "markdown")
    assert result.exit_code == 0, str(result)
    markdown = result.stdout
    assert "True" not in markdown and "False" not in markdown  # memberships say yes/no
    assert re.search(r"\| (yes|no) \| (yes|no) \|", markdown), markdown
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    # the table name is text in the rendered page, never an element, a link or emphasis
    assert "<img" not in rendered and "<a " not in rendered and "<em>bold" not in rendered, rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered  # shown, literally
    plain = re.sub(r"<[^>]+>", "", rendered).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for role in roles:
        assert role in plain, (role, plain[:3000])
    # every table row of the rendered Markdown has as many cells as its head: no pipe in a name split a row
    for table in re.findall(r"<table>.*?</table>", rendered, re.S):
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, re.S)}
        assert len(widths) == 1, table


# --- the HTML page in Chromium at 1400 and 1024 px ----------------------------------------------------------

_MEASURE = """<script>
const box = document.getElementById("matrix-box"), table = document.getElementById("matrix");
const heads = [...table.querySelectorAll("thead th")], last = heads[heads.length - 1];
const before = {fits: box.scrollWidth <= box.clientWidth,
  lastRight: last.getBoundingClientRect().right, boxRight: box.getBoundingClientRect().right};
box.scrollLeft = box.scrollWidth;  // scrolled to the end: the last column shows, the role column stays
const role = table.querySelector("td.role"), lastAfter = last.getBoundingClientRect();
document.getElementById("layout").textContent = JSON.stringify({...before,
  pageOverflow: document.documentElement.scrollWidth - window.innerWidth, viewport: window.innerWidth,
  viewportHeight: window.innerHeight, boxHeight: box.getBoundingClientRect().height,
  boxLeft: box.getBoundingClientRect().left, roleLeft: role.getBoundingClientRect().left,
  lastRightAfter: lastAfter.right, boxRightAfter: box.getBoundingClientRect().right,
  summaryTop: document.getElementById("summary").getBoundingClientRect().top,
  overflowX: getComputedStyle(box).overflowX});
</script>"""


def _layout(browser: str, page: Path, tmp_path: Path, width: int) -> dict[str, Any]:
    html = page.read_text("utf-8").replace("</body>", f'<pre id="layout"></pre>{_MEASURE}</body>')
    dom = chromium_dom(browser, html, tmp_path, width)
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    layout: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    return layout


def test_html_matrix_fits_1400_px_and_scrolls_with_a_sticky_role_column_at_1024(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """Every column of a full matrix (tables, sequences, routines, every privilege, long role names,
    deviations in every cell) shows at 1400 px; at 1024 px the page does not overflow, the matrix scrolls
    inside its own box whose scroll bar is on screen, and the role column stays put while it scrolls."""
    s = _messy(tmp_path, admin_dsn, unique_name, pg_cleanup)
    wide = [pg_cleanup.role(unique_name("a_rather_long_service_role_name_for_reports") + str(i)) for i in range(6)]
    with s.admin_db() as db:
        for role in wide:
            db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
            db.execute(sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
            db.execute(sql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {}").format(sql.Identifier(role)))
    page = tmp_path / "report.html"
    assert s.cli("report", "--format", "html", "-o", str(page)).exit_code == 0
    browser = find_chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); .ci/run installs it")
    wide_layout = _layout(browser, page, tmp_path, 1400)
    assert wide_layout["pageOverflow"] <= 0, wide_layout
    assert wide_layout["fits"] and wide_layout["lastRight"] <= wide_layout["boxRight"] <= 1400, wide_layout
    assert wide_layout["summaryTop"] < 200, wide_layout  # the summary is on the first screen
    narrow = _layout(browser, page, tmp_path, 1024)
    assert narrow["pageOverflow"] <= 0 and narrow["overflowX"] == "auto", narrow
    assert narrow["boxHeight"] <= narrow["viewportHeight"], narrow  # its scroll bar fits on one screen
    assert narrow["lastRightAfter"] <= narrow["boxRightAfter"] + 1, narrow  # scrolled: the last column shows
    assert abs(narrow["roleLeft"] - narrow["boxLeft"]) <= 2, narrow  # sticky: the role column stays visible
