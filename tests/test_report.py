"""`pgwarden report` on real servers: counts per role/schema/privilege, deviations, HTML in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from psycopg import sql

from conftest import PgCleanup
from test_core import Split, make_split


def report_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pgwarden.schemas").joinpath("report.json").read_text("utf-8"))
    return data


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    s.apply()
    with s.login(s.owner) as owner:
        owner.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        owner.execute("CREATE TABLE orders (id serial PRIMARY KEY)")
        owner.execute("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    return s


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
