"""The providers' hazards (rules/managed.py), each first proven by acting as the role on a server laid
out like the provider (test_providers.py's layouts), then found by `check`, then gone once repaired."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo, run_cli
from pgwarden.server import LocalServer
from test_providers import LAYOUTS, Site, _create

BY_NAME = {lay.provider: lay for lay in LAYOUTS}


def _site(
    name: str, tmp_path: Path, server: LocalServer, version: int, unique: Callable[[str], str], cleanup: PgCleanup
) -> Site:
    layout = BY_NAME[name]
    if version not in layout.versions:
        pytest.skip(f"{name} does not offer PostgreSQL {version}")
    site = Site(layout, server, cleanup, unique, tmp_path / "p.toml")
    _create(site, version)
    result = site.cli("apply", "--yes", "--skip-unprivileged")  # on 14, public's CREATE is the provider's
    assert result.exit_code == 0, str(result)
    return site


@pytest.fixture
def make(
    tmp_path: Path, pg_server: LocalServer, pg_version: int, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> Iterator[Callable[[str], Site]]:
    yield lambda name: _site(name, tmp_path, pg_server, pg_version, unique_name, pg_cleanup)


def _as(site: Site, role: str, query: str, *, db: str | None = None) -> Any:
    """One query logged in as `role` (with its password from the policy) in the site's database."""
    dsn = role_conninfo(db_conninfo(site.super_dsn, db or site.db), role, site.passwords[role])
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)
        while cur.nextset():  # several statements: the last one's answer
            pass
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def _findings(site: Site, rule: str) -> list[dict[str, Any]]:
    data = site.cli("check", "--format", "json").json()
    return [f for f in data["findings"] if f["rule"] == rule]


def test_password_login_reaching_rds_iam_through_a_group(make: Callable[[str], Site]) -> None:
    site = make("rds")
    group = site.cleanup.role(site.unique_name("iamgroup"))
    site.sql("CREATE ROLE {} NOLOGIN", sql.Identifier(group))
    site.sql("GRANT rds_iam TO {}", sql.Identifier(group))
    assert _as(site, site.app, "SELECT pg_has_role('rds_iam', 'MEMBER')") is False
    assert _findings(site, "provider.iam-lockout") == []

    site.sql("GRANT {} TO {}", sql.Identifier(group), sql.Identifier(site.app))
    # the proof, as the login: it is now a member of rds_iam (on RDS its password would be refused)
    assert _as(site, site.app, "SELECT pg_has_role('rds_iam', 'MEMBER')") is True
    [found] = _findings(site, "provider.iam-lockout")
    assert found["role"] == site.app and f"through {group}" in found["message"], found
    assert found["severity"] == "high"

    site.sql(found["fix"])  # the fix cuts the first hop; the group keeps rds_iam
    assert _as(site, site.app, "SELECT pg_has_role('rds_iam', 'MEMBER')") is False
    assert _findings(site, "provider.iam-lockout") == []


def test_access_role_in_neon_superuser_bypasses_rls_and_reads_everything(make: Callable[[str], Site]) -> None:
    site = make("neon")
    site.sql(
        "SET ROLE {0}; CREATE TABLE app.secret (v int); INSERT INTO app.secret VALUES (1), (2); "
        "ALTER TABLE app.secret ENABLE ROW LEVEL SECURITY; REVOKE ALL ON app.secret FROM {1}",
        sql.Identifier(site.owner),
        sql.Identifier(site.app),
        db=site.db,
    )
    denied = "SELECT has_table_privilege('app.secret', 'SELECT')"
    assert _as(site, site.app, denied) is False
    assert _findings(site, "provider.role-reached") == []

    site.sql("GRANT neon_superuser TO {}", sql.Identifier(site.app))  # what Neon's console does
    # the proof, as the role: every row of a table it holds nothing on, row level security bypassed
    assert _as(site, site.app, "SET ROLE neon_superuser; SELECT count(*) FROM app.secret") == 2
    found = _findings(site, "provider.role-reached")
    assert [f["role"] for f in found] == [site.app], found
    assert found[0]["severity"] == "critical" and "BYPASSRLS" in found[0]["message"], found
    site.sql(found[0]["fix"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as(site, site.app, "SET ROLE neon_superuser")
    assert _findings(site, "provider.role-reached") == []


def test_supabase_default_privileges_undo_the_policy(make: Callable[[str], Site]) -> None:
    site = make("supabase")
    assert _findings(site, "provider.default-privileges") == []
    site.sql(
        "ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA app GRANT ALL ON TABLES TO {}",
        sql.Identifier(site.app),
        db=site.db,
    )
    site.sql("SET ROLE supabase_admin; CREATE TABLE app.fresh (v int)", db=site.db)
    # the proof, as the access role: TRUNCATE, which the readwrite policy never gives
    assert _as(site, site.app, "SELECT has_table_privilege('app.fresh', 'TRUNCATE')") is True
    _as(site, site.app, "TRUNCATE app.fresh; SELECT 1")
    [found] = _findings(site, "provider.default-privileges")
    assert found["role"] == site.app and "TRUNCATE" in found["message"] and "only Supabase" in found["message"]
    # and the admin indeed cannot change them
    with psycopg.connect(db_conninfo(site.admin_dsn, site.db), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA app REVOKE ALL ON TABLES FROM {}"
                ).format(sql.Identifier(site.app))
            )
    site.sql("DROP TABLE app.fresh", db=site.db)
    site.sql(
        "ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA app REVOKE ALL ON TABLES FROM {}",
        sql.Identifier(site.app),
        db=site.db,
    )
    assert _findings(site, "provider.default-privileges") == []


def test_admin_holds_admin_option_on_the_owner_it_created(make: Callable[[str], Site], pg_version: int) -> None:
    site = make("rds")
    found = _findings(site, "provider.admin-option")
    if pg_version < 16:  # before 16 a CREATEROLE role administers every non-superuser role anyway
        assert found == []
        return
    assert [(f["role"], f["object"]) for f in found] == [(site.admin, f"role {site.owner}")], found
    # the proof, as the admin: it makes an outsider a member of the owner
    outsider = site.cleanup.role(site.unique_name("outsider"))
    site.sql("CREATE ROLE {} NOLOGIN", sql.Identifier(outsider))
    with psycopg.connect(site.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(site.owner), sql.Identifier(outsider)))
        assert conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (outsider, site.owner)).fetchone() == (True,)
    site.sql("REVOKE {} FROM {}", sql.Identifier(site.owner), sql.Identifier(outsider))
    # createrole_self_grant: the admin also inherits every role it creates from then on
    site.sql("ALTER ROLE {} SET createrole_self_grant = 'set, inherit'", sql.Identifier(site.admin))
    created = site.cleanup.role(site.unique_name("created"))
    with psycopg.connect(site.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(created)))
        assert conn.execute("SELECT pg_has_role(%s, 'USAGE')", (created,)).fetchone() == (True,)
    [found] = _findings(site, "provider.admin-option")
    assert "createrole_self_grant = 'set, inherit'" in found["message"], found


def test_supabase_preset(make: Callable[[str], Site]) -> None:
    """init --preset supabase on a server laid out like Supabase: apply as its admin; then, logged in as
    authenticator, SET ROLE anon reads what the policy gives and nothing more, and authenticator
    itself holds nothing and cannot become the owner or the platform's roles."""
    site = make("supabase")
    site.sql(
        "SET ROLE {}; CREATE TABLE app.notes (v int); INSERT INTO app.notes VALUES (1)",
        sql.Identifier(site.owner),
        db=site.db,
    )
    result = run_cli(
        [
            "init",
            "--preset",
            "supabase",
            "--database",
            site.db,
            "--owner",
            site.owner,
            "--schema",
            "app",
            "-c",
            str(site.path),
            "--force",
        ]
    )
    assert result.exit_code == 0, str(result)
    site.passwords.pop(site.app)  # the preset's roles have no password variables
    password = "pw-authenticator"
    site.sql("ALTER ROLE authenticator LOGIN PASSWORD {}", sql.Literal(password))  # the platform's login
    result = site.cli("apply", "--yes")
    assert result.exit_code == 0, str(result)
    assert site.cli("plan", "--exit-code").exit_code == 0
    site.passwords["authenticator"] = password

    def as_authenticator(query: str) -> Any:
        return _as(site, "authenticator", query)

    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # not inherited: it holds nothing itself
        as_authenticator("SELECT count(*) FROM app.notes")
    assert as_authenticator("SET ROLE anon; SELECT count(*) FROM app.notes") == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_authenticator("SET ROLE anon; INSERT INTO app.notes VALUES (2)")  # readonly
    assert (
        as_authenticator("SET ROLE authenticated; INSERT INTO app.notes VALUES (2); SELECT count(*) FROM app.notes")
        == 2
    )
    for forbidden in (site.owner, "supabase_admin", "supabase_auth_admin"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_authenticator(f'SET ROLE "{forbidden}"')
    # the platform's roles were left alone, and check finds nothing about them
    data = site.cli("check", "--format", "json").json()
    assert data["provider"]["id"] == "supabase"
    assert not [f for f in data["findings"] if f["role"] in ("supabase_admin", "supabase_auth_admin", "dashboard_user")]
