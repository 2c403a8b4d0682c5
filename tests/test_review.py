"""`pgwarden review` on the team example (docs/examples/team.toml) with app.customers.email labelled
`pii`: every role and every path to the labelled column (direct grant, column grant, group, PUBLIC,
predefined role, view, definer routine, superuser), each proved by acting as the role; `--since`
after one REVOKE; the JSON against its schema; the HTML page in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import errors, sql

from helpers import chromium_dom, find_chromium
from pgwarden.server import LocalServer, PgBinaries
from test_team_example import EXAMPLE, SCHEMA, Team

LABELS = '\n[labels]\npii = ["app.customers.email", "app.*.phone"]\n'
#: The analysts' grant excepts the label instead of listing the column.
EXCEPT = ('except_columns = { "app.customers" = ["email"] }', 'except_labels = ["pii"]')
#: Paths to app.customers.email besides the policy's: a column grant, a group, PUBLIC, a predefined
#: role, a view and a SECURITY DEFINER routine (the deploy login creates those two as the owner).
OUTSIDE = """
CREATE ROLE h4_auditor; GRANT USAGE ON SCHEMA app TO h4_auditor;
GRANT SELECT (email) ON app.customers TO h4_auditor;
CREATE ROLE h4_support; GRANT USAGE ON SCHEMA app TO h4_support;
GRANT SELECT ON app.customers TO h4_support; CREATE ROLE h4_agent IN ROLE h4_support;
CREATE ROLE h4_dba IN ROLE pg_read_all_data;
"""
DERIVED = """
CREATE VIEW app.customer_contacts AS SELECT id, email FROM app.customers;
CREATE FUNCTION app.customer_emails() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog AS 'SELECT email FROM app.customers';
"""
#: How to read the email through a path, by the kind of its last hop.
PROOF = {
    "view": "SELECT email FROM app.customer_contacts",
    "routine": "SELECT app.customer_emails()",
}


@pytest.fixture(scope="module")
def team(pg_binaries: PgBinaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    server = LocalServer(pg_binaries)
    server.start()
    try:
        policy = tmp_path_factory.mktemp("review") / "team.toml"
        text = EXAMPLE.read_text("utf-8").replace(*EXCEPT)
        policy.write_text(text.replace("\n[[databases]]", LABELS + "\n[[databases]]"), encoding="utf-8")
        t = Team(server, policy)
        assert t.cli("apply", "--yes").exit_code == 0
        with t.login("shop_deploy") as deploy:
            deploy.execute(SCHEMA)
        assert t.cli("apply", "--yes").exit_code == 0
        with t.login("shop_deploy") as deploy:
            deploy.execute(DERIVED)
        with psycopg.connect(server.conninfo("shop"), autocommit=True) as db:
            db.execute(OUTSIDE)
            db.execute("GRANT SELECT (email) ON app.customers TO PUBLIC")
        yield t
    finally:
        server.cleanup()


def _review(team: Team, *args: str) -> dict[str, Any]:
    result = team.cli("review", "--format", "json", *args)
    assert result.exit_code == 0, str(result)
    data: dict[str, Any] = result.json()
    schema = json.loads(resources.files("pgwarden.schemas").joinpath("review.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def _email_paths(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        a
        for a in data["access"]
        if a["object"] == "app.customers" and a["column"] in ("email", None) and a["privilege"] == "SELECT"
    ]


def _reads_email(team: Team, role: str, kinds: set[str]) -> bool:
    """Whether `role` (SET ROLE from the admin) reads the email by the path whose hops are `kinds`."""
    query = next((PROOF[k] for k in ("routine", "view") if k in kinds), "SELECT email FROM app.customers")
    with psycopg.connect(team.server.conninfo("shop"), autocommit=True) as db:
        db.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        try:
            return db.execute(query).fetchall() == [("ada@example.com",)]
        except errors.InsufficientPrivilege:
            return False


def test_every_path_to_a_labelled_column_is_listed_first_and_each_one_works(team: Team) -> None:
    data = _review(team)
    assert data["labelled"] == [{"object": "app.customers", "column": "email", "labels": ["pii"]}]
    assert data["access"][0]["object"] == "app.customers"  # the labelled column leads
    assert data["server"]["system_identifier"] and data["policy_digest"].startswith("sha256:")
    paths = _email_paths(data)
    chains = {a["chain"] for a in paths}
    superuser = next(r["role"] for r in data["roles"] if r["superuser"])
    expected = {
        "shop_app → SELECT on app.customers",  # direct
        "h4_auditor → SELECT on app.customers.email",  # column grant
        "h4_agent → h4_support → SELECT on app.customers",  # group
        "alice → PUBLIC → SELECT on app.customers.email",  # PUBLIC (which has no USAGE on app: alice's own)
        "h4_dba → pg_read_all_data → SELECT on app.customers (predefined role)",  # predefined role
        "alice → analysts → SELECT on app.customer_contacts → view app.customer_contacts → app.customers.email",
        "bob → analysts → EXECUTE on app.customer_emails() → routine app.customer_emails() → "
        "app.customers as shop_owner",
        f"{superuser} → superuser {superuser}",
        "shop_owner → owner of app.customers",
    }
    assert expected <= chains, sorted(chains)
    # every path listed works when acting as its role (PUBLIC: as a role that holds nothing)
    for a in paths:
        role = a["role"]
        if role == "shop_owner" or data["roles"] and any(r["role"] == role and r["superuser"] for r in data["roles"]):
            continue  # the owner and superusers read everything; SET ROLE to them proves nothing new
        assert _reads_email(team, role, {h["kind"] for h in a["path"]}), a["chain"]
    # and a role the review does not list for the column is refused
    listed = {a["role"] for a in paths}
    assert "etl" not in listed and not _reads_email(team, "etl", set())


def test_report_leads_with_the_labelled_columns(team: Team) -> None:
    report = team.cli("report", "--format", "json")
    assert report.exit_code == 0, str(report)
    schema = json.loads(resources.files("pgwarden.schemas").joinpath("report.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(report.json())
    [email] = [c for c in report.json()["labelled"] if c["column"] == "app.customers.email"]
    readers = {r["role"] for r in email["roles"] if "SELECT" in r["privileges"]}
    assert {"shop_app", "h4_auditor", "h4_agent", "h4_dba", "alice", "bob", "analysts"} <= readers
    assert "etl" not in readers and email["labels"] == ["pii"]
    text = team.cli("report").stdout.splitlines()
    at = text.index("labelled columns (every path: pgwarden review)")
    assert text[at + 1].startswith("  app.customers.email [pii]: ")
    assert at < next(i for i, line in enumerate(text) if line.split()[:2] == ["role", "schema"])  # before the matrix
    markdown = team.cli("report", "--format", "md").stdout
    assert markdown.index("## Labelled columns") < markdown.index("| role |")


def test_since_shows_exactly_the_one_path_a_revoke_removed(team: Team, tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    assert team.cli("review", "--format", "json", "-o", str(before)).exit_code == 0
    with psycopg.connect(team.server.conninfo("shop"), autocommit=True) as db:
        db.execute("REVOKE SELECT (email) ON app.customers FROM h4_auditor")
    try:
        changes = _review(team, "--since", str(before))["changes"]
        assert changes["appeared"] == []
        assert [a["chain"] for a in changes["disappeared"]] == ["h4_auditor → SELECT on app.customers.email"]
        # it still reads the email, through PUBLIC's column grant: the review keeps that path
        assert _reads_email(team, "h4_auditor", set())
        assert "h4_auditor → PUBLIC → SELECT on app.customers.email" in {
            a["chain"] for a in _email_paths(_review(team))
        }
        csv_out = team.cli("review", "--format", "csv", "--since", str(before))
        assert csv_out.exit_code == 0
        assert [line for line in csv_out.stdout.splitlines() if ",disappeared," in line] == [
            "shop,disappeared,app.customers,table,email,pii,h4_auditor,SELECT,"
            "h4_auditor → SELECT on app.customers.email"
        ]
        md = team.cli("review", "--since", str(before))
        assert "disappeared: h4\\_auditor → SELECT on app.customers.email" in md.stdout
    finally:
        with psycopg.connect(team.server.conninfo("shop"), autocommit=True) as db:
            db.execute("GRANT SELECT (email) ON app.customers TO h4_auditor")


def test_a_new_column_that_matches_a_label_is_excepted_automatically(team: Team) -> None:
    with team.login("shop_deploy") as deploy:
        deploy.execute("ALTER TABLE app.orders ADD COLUMN phone text")
    with team.login("alice") as alice:  # default privileges gave the new column with the table's SELECT
        assert alice.execute("SELECT phone FROM app.orders").fetchall() == []
    check = team.cli("check", "--format", "json")
    fixes = [f.get("fix") or "" for f in check.json()["findings"] if f["role"] == "analysts"]
    assert any('"total"' in fix and '"orders"' in fix and '"phone"' not in fix for fix in fixes), check.stdout
    assert team.cli("apply", "--yes").exit_code == 0
    with team.login("alice") as alice:
        assert alice.execute("SELECT total FROM app.orders").fetchall() == []
        with pytest.raises(errors.InsufficientPrivilege):
            alice.execute("SELECT phone FROM app.orders")
    labelled = _review(team)["labelled"]
    assert {"object": "app.orders", "column": "phone", "labels": ["pii"]} in labelled


_MEASURE = """<script>
document.getElementById("layout").textContent = JSON.stringify({
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  widest: Math.max(...[...document.querySelectorAll("table")].map(t => t.getBoundingClientRect().right)),
  viewport: window.innerWidth, labelled: document.querySelectorAll("#labelled tr").length});
</script>"""


@pytest.mark.parametrize("width", [1400, 1024])
def test_html_page_fits_the_window_in_chromium(team: Team, tmp_path: Path, width: int) -> None:
    page = tmp_path / "review.html"
    assert team.cli("review", "--format", "html", "-o", str(page)).exit_code == 0
    text = page.read_text("utf-8")
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in text, external
    browser = find_chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); .ci/run installs it")
    dom = chromium_dom(browser, text.replace("</body>", f'<pre id="layout"></pre>{_MEASURE}</body>'), tmp_path, width)
    layout = json.loads(dom.split('<pre id="layout">')[1].split("</pre>")[0])
    assert layout["overflow"] <= 0 and layout["widest"] <= layout["viewport"], layout
    assert layout["labelled"] > 5, layout  # the labelled column's table: a header and its paths


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "is not JSON"),
        ('{"findings": []}', "is not a review"),
        ('{"database": "other", "access": []}', "the earlier review has no database shop"),
    ],
)
def test_a_bad_since_file_is_one_error_and_exit_2(team: Team, tmp_path: Path, content: str, needle: str) -> None:
    earlier = tmp_path / "earlier.json"
    earlier.write_text(content, encoding="utf-8")
    result = team.cli("review", "--since", str(earlier))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 2 and needle in lines[0] and lines[1].startswith("hint: "), str(
        result
    )
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["review", "report"])
def test_an_unwritable_output_is_one_error_and_exit_2(team: Team, tmp_path: Path, command: str) -> None:
    """-o into a folder that does not exist: the document is built, then one error naming the path and
    one hint, exit 2, nothing on standard output and no file made."""
    out = tmp_path / "missing" / "out.json"
    result = team.cli(command, "--format", "json", "-o", str(out))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, str(result)
    assert lines == [f"error: cannot write {out}: No such file or directory", "hint: choose a writable path for -o"]
    assert result.stdout == "" and not out.parent.exists()
