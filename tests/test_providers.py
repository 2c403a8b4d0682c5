"""Managed services simulated on a local server: each provider's roles, memberships, parameters and
admin shape (a CREATEROLE CREATEDB login in the provider's admin group); detection, its roles left
alone by apply, and the steps its admin cannot run refused (with the reason) before anything runs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import CliResult, db_conninfo, role_conninfo, run_cli, write_policy
from pgwarden.policy import password_env_for
from pgwarden.providers import BY_ID
from pgwarden.server import LocalServer
from test_json_schemas import schema


@dataclass(frozen=True)
class Layout:
    """How one provider lays a server out (from its documentation: docs/managed-services.md)."""

    provider: str
    versions: frozenset[int]
    roles: tuple[tuple[str, str], ...]  # (name, attributes) created NOLOGIN
    memberships: tuple[tuple[str, str], ...] = ()  # (role, member)
    admin_group: str | None = None
    admin_attrs: str = "CREATEROLE CREATEDB"
    admin_superuser: bool = False
    setting: tuple[str, str] | None = None  # a parameter of the provider's, set for the admin
    superuser_role: str | None = None  # the provider's own superuser, which owns what the admin cannot touch


ALL = frozenset({14, 15, 16, 17, 18})
LAYOUTS = (
    Layout(
        "rds",
        ALL,
        (
            ("rdsadmin", "SUPERUSER"),
            ("rds_superuser", ""),
            ("rds_iam", ""),
            ("rds_replication", ""),
            ("rds_password", ""),
        ),
        (("rds_password", "rds_superuser"), ("rds_replication", "rds_superuser")),
        admin_group="rds_superuser",
        setting=("rds.extensions", "pg_stat_statements,pgcrypto"),
        superuser_role="rdsadmin",
    ),
    Layout(
        "cloudsql",
        ALL,
        (
            ("cloudsqladmin", "SUPERUSER"),
            ("cloudsqlsuperuser", "CREATEROLE CREATEDB"),
            ("cloudsqliamuser", ""),
            ("cloudsqlimportexport", "CREATEROLE CREATEDB"),
        ),
        admin_group="cloudsqlsuperuser",
        setting=("cloudsql.iam_authentication", "on"),
        superuser_role="cloudsqladmin",
    ),
    Layout(
        "alloydb",
        frozenset({14, 15, 16, 17}),
        (
            ("alloydbadmin", "SUPERUSER"),
            ("alloydbsuperuser", "CREATEROLE CREATEDB"),
            ("alloydbiamuser", ""),
            ("alloydbagent", "CREATEROLE CREATEDB"),
            ("alloydbreplica", "REPLICATION"),
        ),
        admin_group="alloydbsuperuser",
        setting=("alloydb.iam_authentication", "on"),
        superuser_role="alloydbadmin",
    ),
    Layout(
        "azure",
        frozenset({14, 15, 16, 17}),
        (("azuresu", "SUPERUSER"), ("azure_pg_admin", "")),
        admin_group="azure_pg_admin",
        admin_attrs="CREATEROLE CREATEDB REPLICATION",
        setting=("azure.extensions", "pgcrypto"),
        superuser_role="azuresu",
    ),
    Layout(
        "supabase",
        frozenset({15, 17}),
        (
            ("supabase_admin", "SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS"),
            ("supabase_auth_admin", "NOINHERIT CREATEROLE"),
            ("supabase_storage_admin", "NOINHERIT CREATEROLE"),
            ("dashboard_user", "CREATEROLE CREATEDB REPLICATION"),
            ("anon", "NOINHERIT"),
            ("authenticated", "NOINHERIT"),
            ("service_role", "NOINHERIT BYPASSRLS"),
            ("authenticator", "NOINHERIT"),
        ),
        (("anon", "authenticator"), ("authenticated", "authenticator"), ("service_role", "authenticator")),
        admin_attrs="CREATEROLE CREATEDB REPLICATION BYPASSRLS",
        setting=("supautils.reserved_roles", "supabase_admin"),
        superuser_role="supabase_admin",
    ),
    Layout(
        "neon",
        ALL,
        (("cloud_admin", "SUPERUSER"), ("neon_superuser", "CREATEDB CREATEROLE BYPASSRLS")),
        (("pg_read_all_data", "neon_superuser"), ("pg_write_all_data", "neon_superuser")),
        admin_group="neon_superuser",
        setting=("neon.timeline_id", "0"),
        superuser_role="cloud_admin",
    ),
    Layout(
        "crunchy-bridge",
        ALL,
        (("crunchy_read", ""), ("crunchy_write", ""), ("application", "")),
        admin_superuser=True,
    ),
)


@dataclass
class Site:
    """One simulated provider on the test server: its roles exist; `admin_dsn` logs in as its admin."""

    layout: Layout
    server: LocalServer
    cleanup: PgCleanup
    unique_name: Callable[[str], str]
    path: Path
    admin: str = ""
    admin_dsn: str = ""
    db: str = ""
    owner: str = ""
    app: str = ""
    passwords: dict[str, str] = field(default_factory=dict)
    version: int = 0

    @property
    def super_dsn(self) -> str:
        return self.server.conninfo("postgres")

    def sql(self, text: str, *args: Any, db: str | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.server.conninfo(db or "postgres"), autocommit=True) as conn:
            cur = conn.execute(sql.SQL(text).format(*args))  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def cli(self, *args: str, dsn: str | None = None) -> CliResult:
        env = {password_env_for(r): p for r, p in self.passwords.items()}
        result = run_cli([*args, "-c", str(self.path), "--dsn", dsn or self.admin_dsn], env=env)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, str(result)
        return result

    def state_of(self, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """Everything about the provider's roles that apply could change: attributes, settings,
        memberships both ways, and what they hold on the database's objects."""
        rows = self.sql(
            "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, "
            "r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil::text, "
            "(SELECT array_agg(s::text ORDER BY s::text) FROM pg_db_role_setting s WHERE s.setrole = r.oid) "
            "FROM pg_roles r WHERE r.rolname = ANY({}) ORDER BY 1",
            sql.Literal(list(names)),
        )
        rows += self.sql(
            "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a "
            "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
            "WHERE r.rolname = ANY({0}) OR m.rolname = ANY({0}) ORDER BY 1, 2",
            sql.Literal(list(names)),
        )
        rows += self.sql(
            "SELECT c.relname, a.privilege_type, g.rolname FROM pg_class c, aclexplode(c.relacl) a "
            "JOIN pg_roles g ON g.oid = a.grantee WHERE g.rolname = ANY({}) ORDER BY 1, 2, 3",
            sql.Literal(list(names)),
            db=self.db,
        )
        return rows


def _create(site: Site, pg_version: int) -> None:
    layout = site.layout
    site.version = pg_version
    for name, attrs in layout.roles:
        site.cleanup.role(name)
        site.sql("CREATE ROLE {} NOLOGIN " + attrs, sql.Identifier(name))
    for role, member in layout.memberships:
        site.sql("GRANT {} TO {}", sql.Identifier(role), sql.Identifier(member))
    site.admin = site.cleanup.role(site.unique_name("admin"))
    password = "pw-" + secrets.token_hex(8)
    attrs = "SUPERUSER" if layout.admin_superuser else layout.admin_attrs
    site.sql("CREATE ROLE {} LOGIN " + attrs + " PASSWORD {}", sql.Identifier(site.admin), sql.Literal(password))
    if layout.admin_group:
        site.sql("GRANT {} TO {}", sql.Identifier(layout.admin_group), sql.Identifier(site.admin))
    if layout.setting:
        name, value = layout.setting
        site.sql("ALTER ROLE {} SET " + name + " = {}", sql.Identifier(site.admin), sql.Literal(value))
    site.admin_dsn = role_conninfo(site.super_dsn, site.admin, password, "postgres")
    # the database as the provider's admin creates it: owned by the admin; on 14 its schema public
    # belongs to the provider's superuser (the bootstrap superuser of the provider's template1)
    site.db = site.cleanup.database(site.unique_name("db"))
    site.sql("CREATE DATABASE {} OWNER {}", sql.Identifier(site.db), sql.Identifier(site.admin))
    if pg_version < 15 and layout.superuser_role:
        site.sql("ALTER SCHEMA public OWNER TO {}", sql.Identifier(layout.superuser_role), db=site.db)
    site.owner, site.app = (site.cleanup.role(site.unique_name(s)) for s in ("owner", "app"))
    site.passwords = {r: "pw-" + secrets.token_hex(8) for r in (site.owner, site.app)}
    write_policy(site.path, database=site.db, owner=site.owner, app=[site.app], schemas=["app"])


@pytest.fixture(params=LAYOUTS, ids=[lay.provider for lay in LAYOUTS])
def site(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_server: LocalServer,
    pg_version: int,
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> Iterator[Site]:
    layout: Layout = request.param
    if pg_version not in layout.versions:
        pytest.skip(f"{layout.provider} does not offer PostgreSQL {pg_version}")
    site = Site(layout, pg_server, pg_cleanup, unique_name, tmp_path / "p.toml")
    _create(site, pg_version)
    yield site


def _external(site: Site) -> tuple[str, ...]:
    return tuple(name for name, _ in site.layout.roles)


def test_detected_in_plan_check_and_report(site: Site) -> None:
    """plan, check and report (JSON and text) name the provider and what identified it."""
    p = BY_ID[site.layout.provider]
    documents = {name: site.cli(name, "--format", "json").json() for name in ("plan", "check", "report")}
    for name, data in documents.items():  # each validates against its schema, provider included
        jsonschema.Draft202012Validator(schema(name)).validate(data)
    plan = documents["plan"]["provider"]
    assert plan["id"] == p.id, plan
    assert f"role {site.layout.roles[0][0]}" in plan["signals"] or any(s.startswith("role ") for s in plan["signals"])
    if site.layout.setting:
        assert f"setting {site.layout.setting[0]}" in plan["signals"], plan
    assert set(plan["external_roles"]) == set(_external(site)) - {site.layout.superuser_role} | (
        {site.layout.superuser_role} - {None}
    ), plan
    text = site.cli("plan")
    assert f"provider: {p.name}" in text.stdout, str(text)
    check = site.cli("check", "--format", "json")
    assert check.json()["provider"]["id"] == p.id, str(check)
    assert f"provider: {p.name}" in site.cli("check").stdout
    said = documents["plan"]["provider"]["impossible"]
    for command in ("plan", "check", "report"):  # the text says the same, impossible steps included
        text = site.cli(command).stdout
        assert f"provider: {p.name}" in text, text
        assert all(f"cannot on {p.name}: {i['object']}: {i['why']}" in text for i in said), text
    report = site.cli("report", "--format", "json")
    assert report.json()["provider"]["id"] == p.id, str(report)


def test_community_postgresql_keeps_the_documents_it_had(
    tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """No provider role: community PostgreSQL, and plan/check JSON keep their shape (no provider key)."""
    db, owner = pg_cleanup.database(unique_name("db")), pg_cleanup.role(unique_name("owner"))
    path = write_policy(tmp_path / "p.toml", database=db, owner=owner)
    for command in ("plan", "check"):
        result = run_cli([command, "--format", "json", "-c", str(path), "--dsn", pg_server.conninfo("postgres")])
        assert "provider" not in result.json(), str(result)
    result = run_cli(["plan", "-c", str(path), "--dsn", pg_server.conninfo("postgres")])
    assert "provider:" not in result.stdout, str(result)


def test_impossible_steps_refused_before_anything_runs_and_external_roles_untouched(site: Site) -> None:
    """A table owned by the provider's superuser sits in the managed schema: the admin cannot move it.
    apply refuses before any change, saying why and what to do instead; with --skip-unprivileged it
    applies the rest, and the provider's roles (attributes, memberships, grants) are as they were
    while an ordinary outsider loses the same grant."""
    layout = site.layout
    site.sql("CREATE SCHEMA app AUTHORIZATION {}", sql.Identifier(site.admin), db=site.db)
    outsider = site.cleanup.role(site.unique_name("outsider"))
    site.sql("CREATE ROLE {} NOLOGIN", sql.Identifier(outsider))
    holder = layout.superuser_role or layout.roles[0][0]
    site.sql("CREATE TABLE app.legacy (id int)", db=site.db)
    site.sql("ALTER TABLE app.legacy OWNER TO {}", sql.Identifier(holder), db=site.db)
    site.sql("CREATE TABLE app.t (id int)", db=site.db)
    site.sql("ALTER TABLE app.t OWNER TO {}", sql.Identifier(site.admin), db=site.db)
    grantees = [r for r, _ in layout.roles if r != layout.superuser_role][:2] + [outsider]
    for role in grantees:
        site.sql("GRANT SELECT ON app.t TO {}", sql.Identifier(role), db=site.db)
    before = site.state_of(_external(site))

    if layout.admin_superuser:  # Crunchy Bridge: its admin is a superuser, nothing is impossible
        result = site.cli("apply", "--yes")
        assert result.exit_code == 0, str(result)
    else:
        plan = site.cli("plan", "--format", "json").json()
        said = plan["provider"]["impossible"]
        assert any(i["object"].endswith("app.legacy") and holder in i["why"] for i in said), said
        if site.version < 15:  # public belongs to the provider's superuser: PUBLIC keeps CREATE there
            [public] = [i for i in said if i["object"] == "schema public"]
            assert f"{holder} is {BY_ID[layout.provider].name}'s own role" in public["why"], public
        result = site.cli("apply", "--yes")
        assert result.exit_code == 2, str(result)
        assert f"cannot be run on {BY_ID[layout.provider].name}" in result.stderr, str(result)
        assert "app.legacy" in result.stderr and "hint: instead:" in result.stderr, str(result)
        # nothing ran: the owner was not even created
        assert site.sql("SELECT 1 FROM pg_roles WHERE rolname = {}", sql.Literal(site.owner)) == []
        result = site.cli("apply", "--yes", "--skip-unprivileged")
        assert result.exit_code == 0, str(result)
        owner_of = site.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'legacy'", db=site.db)
        assert owner_of == [(holder,)]

    assert site.state_of(_external(site)) == before
    outsider_grants = site.sql(
        "SELECT 1 FROM pg_class c, aclexplode(c.relacl) a WHERE c.relname = 't' AND a.grantee = {}::regrole",
        sql.Literal(outsider),
        db=site.db,
    )
    assert outsider_grants == [], "the ordinary outsider keeps a grant: the comparison proves nothing"
    # and the app works through the policy
    with psycopg.connect(role_conninfo(db_conninfo(site.super_dsn, site.db), site.app, site.passwords[site.app])) as c:
        assert c.execute("SELECT count(*) FROM app.t").fetchone() == (0,)


def test_policy_naming_a_provider_role_is_refused(site: Site) -> None:
    """A provider's own role under the policy's roles: one error line, nothing planned."""
    p = BY_ID[site.layout.provider]
    if not p.roles:
        pytest.skip("no provider role")
    role = p.roles[0]
    write_policy(site.path, database=site.db, owner=site.owner, app=[role], schemas=["app"])
    result = site.cli("plan")
    assert result.exit_code == 2, str(result)
    assert f"role {role!r}, which belongs to {p.name}" in result.stderr, str(result)


def test_access_role_in_the_admin_group_is_found(site: Site) -> None:
    """Every provider's admin group: an access role made a member of it (as a console-created user
    is) can act as it, proven as the role, and check reports provider.role-reached."""
    group = site.layout.admin_group
    if group is None:
        pytest.skip("no admin group")
    result = site.cli("apply", "--yes", "--skip-unprivileged")
    assert result.exit_code == 0, str(result)
    dsn = role_conninfo(db_conninfo(site.super_dsn, site.db), site.app, site.passwords[site.app])
    probe = sql.SQL("SET ROLE {}").format(sql.Identifier(group))
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(probe)
    assert not [
        f for f in site.cli("check", "--format", "json").json()["findings"] if f["rule"] == "provider.role-reached"
    ]
    site.sql("GRANT {} TO {}", sql.Identifier(group), sql.Identifier(site.app))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(probe)  # the proof: it acts as the provider's admin group
        assert conn.execute("SELECT current_user").fetchone() == (group,)
    found = [
        f for f in site.cli("check", "--format", "json").json()["findings"] if f["rule"] == "provider.role-reached"
    ]
    assert [(f["role"], f["object"]) for f in found] == [(site.app, f"role {group}")], found
