"""Reconciliation modes: additive grants and creates what is missing and never revokes, drops or moves
what exists, listing the rest as withheld; authoritative then does exactly what was withheld."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from pgwarden.plan import plan
from pgwarden.policy import load_policy
from test_core import Split, make_split
from test_plan_pure import APP, OWNER, _policy, _table_group, acl, compliant

ACLS = """
SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1
"""


def _set_mode(split: Split, mode: str) -> None:
    policy = load_policy(split.path)
    split.path.write_text(policy.model_copy(update={"mode": mode}).to_toml(), "utf-8")


def _what(steps: list[dict[str, Any]]) -> set[tuple[str, str, str | None, str]]:
    return {(s["action"], s["object"], s["role"], s["sql"]) for s in steps}


def test_additive_withholds_what_takes_away_pure() -> None:
    extra = _table_group(2, acl_=acl((OWNER, OWNER, "SELECT INSERT"), (OWNER, APP, "SELECT TRUNCATE")))
    snap = compliant(groups=[extra])
    full = plan(_policy(), snap)
    additive = plan(_policy(), snap, mode="additive")
    assert additive.mode == "additive" and full.mode == "authoritative"
    assert all(not s.takes_away for s in additive.steps)
    assert {s.key for s in additive.steps} | {s.key for s in additive.withheld} == {s.key for s in full.steps}
    assert any(s.change == "revoke" and s.role == "app" for s in additive.withheld)
    assert any(s.change == "grant" and s.role == "ro" for s in additive.steps)  # ro lacks SELECT there
    # the policy's own mode is used when no override is given
    assert plan(_policy(mode="additive"), snap).withheld == additive.withheld


def test_additive_grants_what_is_missing_and_authoritative_then_revokes_exactly_the_extras(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    split.apply()
    outsider = pg_cleanup.role(unique_name("bi"))
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE public.items (id int)")
    with split.admin_db() as db:
        db.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
        db.execute(sql.SQL("GRANT TRUNCATE ON public.items TO {}").format(sql.Identifier(split.app)))
        db.execute(sql.SQL("GRANT SELECT ON public.items TO {}").format(sql.Identifier(outsider)))
        db.execute(sql.SQL("REVOKE SELECT ON public.items FROM {}").format(sql.Identifier(split.readonly)))
        db.execute("CREATE TABLE public.stray (id int)")  # owned by postgres: authoritative moves it
        before = db.execute(ACLS).fetchall()
    _set_mode(split, "additive")
    planned = split.plan_json()
    assert planned["mode"] == "additive"
    assert {(s["action"], s["role"]) for s in planned["steps"]} == {("grant", split.readonly)}, planned
    withheld = _what(planned["withheld"])
    assert {("revoke", split.app), ("revoke", outsider), ("alter-owner", "postgres")} <= {
        (a, r) for a, _, r, _ in withheld
    }, withheld
    split.apply()
    with split.admin_db() as db:
        after = db.execute(ACLS).fetchall()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 1 and changed[0][0][0] == "items", changed  # only the missing grant was added
    assert split.readonly in changed[0][1][2] and split.app in changed[0][1][2] and "D" in changed[0][1][2]
    assert dict((r[0], r[1]) for r in after)["stray"] == "postgres"
    with split.login(split.readonly) as ro:
        ro.execute("SELECT * FROM public.items")
    code = split.cli("plan", "--exit-code")
    assert code.exit_code == 0 and "withheld in additive mode" in code.stdout, str(code)
    # nothing left to grant: what the plan lists now is what authoritative mode does, exactly
    listed = split.plan_json()
    assert listed["steps"] == [] and _what(listed["withheld"]) >= {w for w in withheld if w[0] != "grant"}
    result = split.cli("apply", "--yes", "--mode", "authoritative", "--format", "json")
    assert result.exit_code == 0, str(result)
    assert _what(result.json()["executed"]) == _what(listed["withheld"])
    _set_mode(split, "authoritative")
    split.assert_clean()
    with split.login(split.app) as app, pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("TRUNCATE public.items")
