"""Role settings at every level PostgreSQL stores them (pg_db_role_setting), in its order of precedence:
role in database > role > database > every role > server. Each level is proved by logging in as the
role and reading the setting; check finds what overrides the policy, apply resets it, and what does
not override it (a database-wide setting under a role's own) is no finding."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from pgwarden.policy import build_policy, load_policy
from test_check import check_json
from test_core import Split, make_split


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    """A split whose app role declares statement_timeout = 5s for every database."""
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    policy = build_policy(
        database=s.database, owner=s.owner, app=[s.app], readonly=[s.readonly], schemas=["public"], version=2
    )
    access = tuple(
        a.model_copy(update={"settings": {"statement_timeout": "5s"}}) if a.name == s.app else a for a in policy.access
    )
    s.path.write_text(policy.model_copy(update={"access": access}).to_toml(), "utf-8")
    assert [a.settings for a in load_policy(s.path).access if a.name == s.app] == [{"statement_timeout": "5s"}]
    s.apply()
    return s


def _timeout(split: Split) -> str:
    with split.login(split.app) as conn:
        row = conn.execute("SHOW statement_timeout").fetchone()
    assert row is not None
    return str(row[0])


def _setting_findings(split: Split) -> list[dict[str, Any]]:
    code, data = check_json(split)
    found = [f for f in data["findings"] if "setting" in f["object"]]
    assert code == (1 if data["findings"] else 0)
    assert len(found) == len(data["findings"]), json.dumps(data["findings"], indent=1)
    return found


def test_a_role_in_database_setting_overrides_the_policy_and_is_reset(split: Split) -> None:
    assert _timeout(split) == "5s"
    db, app = sql.Identifier(split.database), sql.Identifier(split.app)
    with split.admin_db() as admin:
        # lower levels do not override the role's own setting: the policy still holds, no finding
        admin.execute(sql.SQL("ALTER DATABASE {} SET statement_timeout = '1min'").format(db))
        assert _timeout(split) == "5s"
        assert _setting_findings(split) == []
        # the role in this database does: the declared setting silently stops holding here
        admin.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET statement_timeout = 0").format(app, db))
    assert _timeout(split) == "0"
    (found,) = _setting_findings(split)
    assert found["rule"] == "drift.role-setting" and found["role"] == split.app, found
    assert f"in database {split.database}" in found["object"] and "takes precedence" in found["message"], found
    split.apply()
    assert _timeout(split) == "5s"
    assert _setting_findings(split) == []
    with split.admin_db() as admin:  # the database-wide setting is not the policy's: left as it was
        row = admin.execute(
            "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        assert row == (["statement_timeout=1min"],)
        admin.execute(sql.SQL("ALTER DATABASE {} RESET statement_timeout").format(db))


@pytest.fixture
def every_role(admin_conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """ALTER ROLE ALL SET is cluster-wide: whatever a test sets there is reset afterwards."""
    try:
        yield admin_conn
    finally:
        admin_conn.execute("ALTER ROLE ALL RESET search_path")


def test_a_search_path_set_for_every_role_is_judged(
    split: Split,
    every_role: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> None:
    schema = unique_name("shared")
    nosy = pg_cleanup.role(unique_name("nosy"))
    every_role.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(nosy)))
    with split.admin_db() as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        admin.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO PUBLIC").format(sql.Identifier(schema)))
    every_role.execute(sql.SQL("ALTER ROLE ALL SET search_path = {}, public").format(sql.Identifier(schema)))
    # the path is real: the app's sessions look names up in the schema first, and anyone creates there
    with split.login(split.app) as conn:
        assert conn.execute("SELECT (current_schemas(false))[1]").fetchone() == (schema,)
    with split.admin_db() as admin, admin.transaction(force_rollback=True):
        admin.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(nosy)))
        admin.execute(
            sql.SQL("CREATE FUNCTION {}.now() RETURNS int LANGUAGE sql AS 'SELECT 1'").format(sql.Identifier(schema))
        )
    code, data = check_json(split)
    found = [f for f in data["findings"] if f["rule"] == "settings.writable-search-path"]
    assert code == 1 and found and "every role setting" in found[0]["message"], json.dumps(data["findings"], indent=1)
    with split.admin_db() as admin:
        admin.execute(found[0]["fix"])
    code, data = check_json(split)
    assert not [f for f in data["findings"] if f["rule"] == "settings.writable-search-path"], data["findings"]
    with split.admin_db() as admin:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
