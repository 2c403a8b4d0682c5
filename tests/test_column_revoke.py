"""A whole-table grant revoked from a group that keeps column grants: one apply converges (a table-level
REVOKE takes the role's column privileges with it, so apply grants the columns again after it)."""

from __future__ import annotations

import json

import psycopg
from psycopg import sql

from test_probe_v2 import Team, team  # noqa: F401 - the fixture


def _reads(t: Team, columns: str) -> bool:
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns.split(", "))
    with t.login("alice") as conn:
        try:
            conn.execute(sql.SQL("SELECT {} FROM app.customers").format(names)).fetchall()
            return True
        except psycopg.errors.InsufficientPrivilege:
            return False


def test_one_apply_keeps_the_groups_column_grants(team: Team) -> None:  # noqa: F811
    assert _reads(team, "id, name") and not _reads(team, "email")  # the policy's exception holds
    with team.admin_db() as db:
        db.execute(sql.SQL("GRANT SELECT ON app.customers TO {}").format(sql.Identifier(team["analysts"])))
    assert _reads(team, "email")  # the hazard is real: alice, through analysts, reads the excepted column
    found = team.cli("check", "--format", "json")
    assert found.exit_code == 1, str(found)
    objects = {(f["object"], f["role"]) for f in found.json()["findings"]}
    assert ("table app.customers", team["analysts"]) in objects, json.dumps(found.json()["findings"], indent=1)

    assert team.cli("apply", "--yes").exit_code == 0
    # one apply: the excepted column is gone and the columns the policy gives are still there
    assert not _reads(team, "email")
    assert _reads(team, "id, name")
    clean = team.cli("check")
    assert clean.exit_code == 0, str(clean)
