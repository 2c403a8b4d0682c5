"""`pgwarden report` on real servers: counts per role/schema/privilege, deviations, HTML in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo, run_cli
from pgwarden.policy import build_policy, password_env_for
from test_core import Split, applied_split, make_split


def report_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pgwarden.schemas").joinpath("report.json").read_text("utf-8"))
    return data


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return applied_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        "CREATE TABLE items (id serial PRIMARY KEY, name text)",
        "CREATE TABLE orders (id serial PRIMARY KEY)",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    )


def report_json(split: Split) -> dict[str, Any]:
    result = split.cli("report", "--format", "json")
    assert result.exit_code == 0, str(result)
    data: dict[str, Any] = result.json()
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    return data


def cell(data: dict[str, Any], role: str, kind: str, privilege: str) -> dict[str, Any]:
    found = [c for c in data["privileges"] if c["role"] == role and c["kind"] == kind and c["privilege"] == privilege]
    assert len(found) == 1, (role, kind, privilege, found)
    return found[0]


def test_report_counts_privileges_and_shows_no_deviation_when_applied(split: Split) -> None:
    data = report_json(split)
    assert data["deviations"] == 0, [c for c in data["privileges"] if c["deviation"]]
    assert data["findings"] == []
    assert cell(data, split.app, "table", "INSERT") == {
        **cell(data, split.app, "table", "INSERT"),
        "held": 2,
        "total": 2,
    }
    assert cell(data, split.readonly, "table", "INSERT")["held"] == 0
    assert cell(data, split.readonly, "sequence", "SELECT")["held"] == 2
    assert cell(data, split.readonly, "sequence", "USAGE")["held"] == 0
    assert cell(data, split.owner, "table", "TRUNCATE")["held"] == 2
    assert cell(data, "PUBLIC", "routine", "EXECUTE")["held"] == 0
    assert {"schema": "public", "kind": "table", "owner": split.owner, "count": 2} in data["owners"]
    assert any(d["for_role"] == split.owner and split.app in d["grants"] for d in data["default_privileges"])
    for fmt, needle in (("text", f"{split.app} on schema public"), ("markdown", "| role | schema |")):
        result = split.cli("report", "--format", fmt)
        assert result.exit_code == 0 and needle in result.stdout, str(result)


def test_report_highlights_deviations(split: Split, tmp_path: Path) -> None:
    with split.admin_db() as db:
        db.execute(sql.SQL("GRANT TRUNCATE ON items TO {}").format(sql.Identifier(split.app)))
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(split.readonly)))
    data = report_json(split)
    truncate = cell(data, split.app, "table", "TRUNCATE")
    assert truncate["held"] == 1 and truncate["expected"] == 0 and truncate["deviation"]
    assert cell(data, split.readonly, "table", "DELETE")["held"] == 2  # through the owner
    assert any(m["member"] == split.readonly and m["role"] == split.owner for m in data["memberships"])
    assert any(f["rule"] == "access.member-of-owner" for f in data["findings"])
    out = tmp_path / "report.html"
    result = split.cli("report", "--format", "html", "-o", str(out))
    assert result.exit_code == 0, str(result)
    page = out.read_text("utf-8")
    assert 'id="matrix"' in page and '<td class="deviation"' in page
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in page, external
    _render_in_browser(out, tmp_path, split.app)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _render_in_browser(page: Path, tmp_path: Path, app: str) -> None:
    """Load the page in headless Chromium and read the DOM it built: the matrix must be there."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); HTML checked without a browser")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chrome'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert '<table id="matrix">' in dom, dom[:2000]
    assert '<td class="deviation"' in dom and f'data-role="{app}"' in dom


def test_report_without_database_exits_2(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    result = s.cli("report")
    assert result.exit_code == 2 and "does not exist" in result.stderr, str(result)


# --- the demo's database as text, the full HTML page in a browser, the role graph ---------------------------


def _demo_like(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> tuple[Split, str]:
    """What `pgwarden demo` builds, with names as long as the demo's: the owner's migration, then alice
    (a person made a member of the owner) creating a table without SET ROLE."""
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, owner=unique_name("sqlmig"), app=unique_name("django"))
    s.apply()
    alice = pg_cleanup.role(unique_name("alice"))
    with s.login(s.owner) as owner:
        owner.execute("CREATE TABLE blog_post (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)")
    with s.admin_db() as db:
        db.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(alice)))
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(s.owner), sql.Identifier(alice)))
        db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(alice)))
        db.execute("CREATE TABLE blog_comment (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)")
    return s, alice


def test_text_report_is_a_matrix_that_fits_120_columns_for_the_demo(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s, alice = _demo_like(tmp_path, admin_dsn, unique_name, pg_cleanup)
    result = s.cli("report")
    assert result.exit_code == 0, str(result)
    lines = result.stdout.splitlines()
    too_wide = [line for line in lines if len(line) > 120]
    assert not too_wide, too_wide
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["role", "schema"])
    assert {"SEL", "INS", "UPD", "DEL", "TRUNC"} <= set(lines[head].split())
    rows = {line.split()[0]: line.split()[2:] for line in lines[head + 1 : head + 6]}
    assert set(rows) == {s.owner, s.app, s.readonly, alice, "PUBLIC"}  # alice holds everything: she is a row
    columns = lines[head].split()[2:]
    assert rows[alice][columns.index("SEL")] == "2/2→0"  # held / total → what the policy wants
    assert rows[s.app][columns.index("SEL")] == "1/2→2"  # blog_comment is not granted to the app
    assert rows["PUBLIC"][columns.index("SEL")] == "0/2"
    assert f"{alice} on database {s.database}: must not hold CONNECT" in result.stdout
    assert f"DANGER {alice} -> {s.owner} becomes the owner" in result.stdout
    assert f"only {s.owner}'s own privileges" in result.stdout  # the row the PUBLIC revoke leaves
    markdown = s.cli("report", "--format", "markdown")
    assert markdown.exit_code == 0 and s.cli("report", "--format", "md").stdout == markdown.stdout


def test_html_report_in_chromium_shows_every_column_fix_target_role_and_the_graph(
    split: Split, tmp_path: Path, pg_cleanup: PgCleanup, unique_name: Callable[[str], str]
) -> None:
    outsider, mid = pg_cleanup.role(unique_name("outsider")), pg_cleanup.role(unique_name("mid"))
    with split.admin_db() as db:
        for role in (outsider, mid):
            db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(outsider)))
        db.execute(sql.SQL("ALTER TABLE orders OWNER TO {}").format(sql.Identifier(outsider)))
        db.execute(sql.SQL("GRANT TRUNCATE ON items TO {}").format(sql.Identifier(split.app)))
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(mid), sql.Identifier(split.app)))
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(mid)))
    data = report_json(split)
    assert {r["role"] for r in data["roles"]} >= {outsider, mid, split.app, "PUBLIC"}
    app_path = [p for p in data["graph"]["paths"] if p["from"] == split.app and p["to"] == split.owner]
    assert app_path and app_path[0]["via"] == [split.app, mid, split.owner] and app_path[0]["dangerous"]
    page = tmp_path / "report.html"
    assert split.cli("report", "--format", "html", "-o", str(page)).exit_code == 0
    text = page.read_text("utf-8")
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in text, external
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); .ci/run installs it")
    for width in (1400, 800):
        shot = tmp_path / f"report-{width}.png"
        _chrome(browser, tmp_path, f"--window-size={width},1000", f"--screenshot={shot}", page.as_uri())
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        dom = _measured_dom(browser, tmp_path, page, width)
        _check_dom(dom, data, width, outsider, (split.app, mid, split.owner))


_MEASURE = """<script>
const box = document.getElementById("matrix-box"), table = document.getElementById("matrix");
const heads = [...table.querySelectorAll("thead th")];
const last = heads[heads.length - 1];
document.getElementById("layout").textContent = JSON.stringify({
  pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
  boxRight: box.getBoundingClientRect().right, viewport: window.innerWidth,
  boxScroll: box.scrollWidth,
  lastRight: last.getBoundingClientRect().right - box.getBoundingClientRect().left - box.clientLeft,
  overflowX: getComputedStyle(box).overflowX});
</script>"""


def _chrome(browser: str, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chrome'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _measured_dom(browser: str, tmp_path: Path, page: Path, width: int) -> str:
    """The page's DOM as Chromium laid it out at `width`: a copy of the page (which has no script of its
    own) gets one that writes the matrix box's geometry into the DOM, then --dump-dom reads it."""
    copy = tmp_path / f"measured-{width}.html"
    copy.write_text(
        page.read_text("utf-8").replace("</body>", f'<pre id="layout"></pre>{_MEASURE}</body>'), encoding="utf-8"
    )
    return _chrome(browser, tmp_path, f"--window-size={width},1000", "--dump-dom", copy.as_uri())


class _Dom(HTMLParser):
    """Just enough of the DOM: elements by id/class with their text, cells with attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, Any]] = []
        self.elements: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [e["tag"] for e in self.stack]}
        element["ids"] = [e["attrs"].get("id") for e in self.stack if e["attrs"].get("id")]
        self.elements.append(element)
        if tag == "br":
            self.handle_data(" ")
        if tag not in ("br", "meta", "path", "line", "rect"):
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element["text"] += data

    def find(self, tag: str, *, cls: str | None = None, inside: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.elements
            if e["tag"] == tag
            and (cls is None or cls in (e["attrs"].get("class") or "").split())
            and (inside is None or inside in e["ids"])
        ]


def _check_dom(dom: str, data: dict[str, Any], width: int, outsider: str, chain: tuple[str, str, str]) -> None:
    parsed = _Dom()
    parsed.feed(dom)
    layout = json.loads(next(e["text"] for e in parsed.elements if e["attrs"].get("id") == "layout"))
    assert layout["pageOverflow"] <= 0, (width, layout)  # the page itself is never wider than the window
    assert layout["boxRight"] <= layout["viewport"], (width, layout)
    assert layout["lastRight"] <= layout["boxScroll"] and layout["overflowX"] == "auto", (width, layout)
    # every (kind, privilege) column is there
    heads = [" ".join(h["text"].split()) for h in parsed.find("th", inside="matrix")]
    wanted = {f"{c['kind']} {c['privilege']}" for c in data["privileges"]}
    assert wanted == set(heads[2:]), (heads, wanted)
    # every role that holds anything is a row, the outsider too
    rows = {td["attrs"]["data-role"] for td in parsed.find("td", cls="role", inside="matrix")}
    assert {r["role"] for r in data["roles"]} == rows and outsider in rows
    # each deviating cell shows the policy's number in the cell itself
    deviating = parsed.find("td", cls="deviation", inside="matrix")
    assert len(deviating) == data["deviations"] > 0
    for c in (c for c in data["privileges"] if c["deviation"]):
        cell = next(
            td
            for td in deviating
            if td["attrs"]["data-role"] == c["role"]
            and td["attrs"]["data-privilege"] == f"{c['kind']} {c['privilege']}"
        )
        assert f"policy: {c['expected']}/{c['total']}" in cell["text"], cell
    # database and schema privileges, with the outsider's CREATE on the schema flagged
    scope_heads = " ".join(h["text"] for h in parsed.find("th", inside="scope"))
    assert all(p in scope_heads for p in ("CONNECT", "TEMPORARY", "USAGE", "CREATE")), scope_heads
    flagged = [td for td in parsed.find("td", cls="deviation", inside="scope") if td["attrs"]["data-role"] == outsider]
    assert flagged and all("must not hold" in td["text"] for td in flagged)
    # every finding with SQL shows it
    fixes = [" ".join(p["text"].split()) for p in parsed.find("pre", cls="fix", inside="findings")]
    assert [" ".join(f["fix"].split()) for f in data["findings"] if f["fix"]] == fixes
    # the graph: app -> mid -> owner drawn as a dangerous path
    danger = {(g["attrs"]["data-member"], g["attrs"]["data-role"]) for g in parsed.find("g", cls="dangerous")}
    assert {(chain[0], chain[1]), (chain[1], chain[2])} <= danger, danger
    assert any(e["tag"] == "svg" and e["attrs"].get("id") == "rolegraph" for e in parsed.elements)


def test_role_graph_as_dot_and_mermaid_highlights_the_chain_to_the_owner(
    split: Split, pg_cleanup: PgCleanup, unique_name: Callable[[str], str]
) -> None:
    mid = pg_cleanup.role(unique_name("mid"))
    with split.admin_db() as db:
        db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(mid)))
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(mid), sql.Identifier(split.app)))
        db.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(split.owner), sql.Identifier(mid)))
    dot = split.cli("report", "--format", "dot")
    assert dot.exit_code == 0 and dot.stdout.startswith("// pgwarden role graph"), str(dot)
    red = set(re.findall(r'^\s*"([^"]+)" -> "([^"]+)" \[[^\]]*color=red', dot.stdout, re.M))
    assert red == {(split.app, mid), (mid, split.owner)}, dot.stdout
    assert re.search(rf'^\s*"{split.readonly}" \[label=', dot.stdout, re.M)  # every policy role is drawn
    mermaid = split.cli("report", "--format", "mermaid")
    assert mermaid.exit_code == 0 and mermaid.stdout.startswith("flowchart BT"), str(mermaid)
    ids = dict(re.findall(r'^\s*(r\d+)\["([^<"]+)', mermaid.stdout, re.M))
    names = {v: k for k, v in ids.items()}
    edges = re.findall(r"^\s*(r\d+) -->\|[^|]*\| (r\d+)$", mermaid.stdout, re.M)
    styled = re.search(r"linkStyle ([\d,]+) stroke:#c00", mermaid.stdout)
    assert styled, mermaid.stdout
    highlighted = {edges[int(i)] for i in styled.group(1).split(",")}
    assert highlighted == {(names[split.app], names[mid]), (names[mid], names[split.owner])}
    text = split.cli("report").stdout
    assert f"DANGER {split.app} -> {mid} -> {split.owner} becomes the owner" in text


def test_report_of_a_nologin_owner_with_a_deploy_login_has_no_deviation(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """A deploy login is a member of the owner by design: it holds what the owner holds, and its path to
    the owner is drawn but not dangerous."""
    db, owner, app = (
        pg_cleanup.database(unique_name("db")),
        pg_cleanup.role(unique_name("own")),
        pg_cleanup.role(unique_name("app")),
    )
    deployer = pg_cleanup.role(unique_name("deployer"))
    base = build_policy(database=db, owner=owner, app=[app])
    policy = base.model_copy(
        update={"owner": base.owner.model_copy(update={"login": False, "deploy_logins": (deployer,)})}
    )
    path = tmp_path / "pgwarden.toml"
    path.write_text(policy.to_toml(), encoding="utf-8")
    env: dict[str, str | None] = {password_env_for(deployer): "deploy-pw", password_env_for(app): "app-pw"}
    assert run_cli(["apply", "-c", str(path), "--dsn", admin_dsn, "--yes"], env=env).exit_code == 0
    with psycopg.connect(role_conninfo(admin_dsn, deployer, "deploy-pw", db), autocommit=True) as conn:
        conn.execute("CREATE TABLE deployed (id int)")
    result = run_cli(["report", "-c", str(path), "--dsn", admin_dsn, "--format", "json"], env=env)
    assert result.exit_code == 0, str(result)
    data = jsonschema_valid(result.json())
    assert {"role": deployer, "level": "deploy"} in data["roles"]
    assert data["deviations"] == 0 and data["scope_deviations"] == 0, [
        c for c in data["privileges"] + data["scope_privileges"] if c["deviation"]
    ]
    path_to_owner = [p for p in data["graph"]["paths"] if p["from"] == deployer and p["to"] == owner]
    assert path_to_owner and not path_to_owner[0]["dangerous"]


def jsonschema_valid(data: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(report_schema()).validate(data)
    return data
