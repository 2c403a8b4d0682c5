"""`report` on a version 2 policy (docs/examples/team.toml): grants by scope, held vs. the scopes, members."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
from psycopg import sql

from test_probe_v2 import Team, team  # noqa: F401  (the fixture)


def report_json(t: Team) -> dict[str, Any]:
    result = t.cli("report", "--format", "json")
    assert result.exit_code in (0, 1), str(result)
    data: dict[str, Any] = result.json()
    schema = json.loads(resources.files("pgwarden.schemas").joinpath("report.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def cell(data: dict[str, Any], role: str, schema: str, kind: str, privilege: str) -> dict[str, Any]:
    return next(
        c
        for c in data["privileges"]
        if (c["role"], c["schema"], c["kind"], c["privilege"]) == (role, schema, kind, privilege)
    )


def test_report_compares_what_is_held_with_the_scopes(team: Team) -> None:  # noqa: F811
    data = report_json(team)
    assert data["deviations"] == 0 and data["scope_deviations"] == 0, [
        c for c in data["privileges"] + data["scope_privileges"] if c["deviation"]
    ]
    app, analysts = team["shop_app"], team["analysts"]
    # readwrite on app, readonly on reporting, append on audit: one role, three scopes
    assert cell(data, app, "app", "table", "INSERT")["held"] == 2
    assert cell(data, app, "reporting", "table", "INSERT")["expected"] == 0
    assert cell(data, app, "audit", "table", "INSERT")["expected"] == 1
    assert cell(data, app, "audit", "table", "SELECT")["expected"] == 0
    # the column exception: analysts read app.orders, but app.customers only column by column
    select = cell(data, analysts, "app", "table", "SELECT")
    assert (select["held"], select["expected"], select["total"], select["deviation"]) == (1, 1, 2, False)
    # grants by scope and members under their groups
    mine = [g for g in data["grants"] if g["role"] == analysts]
    assert {(g["profile"], tuple(g["schemas"])) for g in mine} == {("readonly", ("reporting",)), ("readonly", ("app",))}
    assert {"app.customers": ["email"]} in [g["except_columns"] for g in mine]
    members = {m["member"]: m["groups"] for m in data["members"]}
    assert members[team["alice"]] == [{"role": analysts, "inherit": True, "set": True}]
    kinds = {n["name"]: n["kind"] for n in data["graph"]["nodes"]}
    assert kinds[analysts] == "group" and kinds[team["alice"]] == kinds[team["bob"]] == "member"
    assert kinds[team["shop_app"]] == "access" and kinds[team["shop_owner"]] == "owner"
    edges = {(e["member"], e["role"]) for e in data["graph"]["edges"]}
    assert (team["alice"], analysts) in edges and (team["bob"], analysts) in edges
    dot = team.cli("report", "--format", "dot").stdout
    assert f'"{team["alice"]}\\n(member, login)"' in dot, dot
    text = team.cli("report").stdout
    assert f"{analysts}: readonly on schema(s) app, except column(s) app.customers (email)" in text, text
    assert f"{team['alice']} gets the rights of {analysts}" in text
    page = team.cli("report", "--format", "html").stdout
    assert "Grants by scope" in page and f"{team['bob']} gets the rights of {analysts}" in page

    # a grant behind pgwarden's back is an extra on that scope: one SELECT more than the policy says
    with team.admin_db() as db:
        db.execute(sql.SQL("GRANT SELECT ON audit.events TO {}").format(sql.Identifier(app)))
    data = report_json(team)
    extra = cell(data, app, "audit", "table", "SELECT")
    assert (extra["held"], extra["expected"], extra["deviation"]) == (1, 0, True)
    assert data["deviations"] == 1
