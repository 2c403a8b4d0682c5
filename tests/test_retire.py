"""Retiring roles on real servers: reassigned or dropped in every database, then dropped; the preflight."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo, run_cli

#: Everything a retirement could touch, by name, for the catalog fingerprint (system schemas left out).
FINGERPRINT = """
SELECT 'relation' AS what, n.nspname AS schema, c.relname AS name, pg_get_userbyid(c.relowner) AS owner,
       c.relacl::text[] AS acl
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'
UNION ALL
SELECT 'schema', n.nspname, '', pg_get_userbyid(n.nspowner), n.nspacl::text[]
FROM pg_namespace n WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
UNION ALL
SELECT 'routine', n.nspname, p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text[]
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'default', coalesce(n.nspname, ''), d.defaclobjtype::text, pg_get_userbyid(d.defaclrole), d.defaclacl::text[]
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
"""


@dataclass(frozen=True)
class Row:
    what: str
    schema: str
    name: str
    owner: str
    acl: frozenset[tuple[str, str, str]]  # (grantor, grantee, privileges)


def _acl(items: list[str] | None) -> frozenset[tuple[str, str, str]]:
    out = set()
    for item in items or []:
        grantee, rest = str(item).rsplit("=", 1)
        privs, grantor = rest.split("/")
        out.add((grantor.strip('"'), grantee.strip('"') or "PUBLIC", privs))
    return frozenset(out)


def fingerprint(admin_dsn: str, databases: list[str], roles: list[str]) -> dict[str, Any]:
    """The objects of `databases` (owner and ACL), their owners and ACLs, and `roles` with their
    attributes and memberships among themselves."""
    out: dict[str, Any] = {}
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        out["roles"] = set(
            conn.execute(
                "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolconnlimit "
                "FROM pg_roles WHERE rolname = ANY(%s)",
                [roles],
            ).fetchall()
        )
        out["memberships"] = set(
            conn.execute(
                "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a "
                "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                "WHERE r.rolname = ANY(%s) OR m.rolname = ANY(%s)",
                [roles, roles],
            ).fetchall()
        )
        out["databases"] = {
            (name, owner, _acl(acl))
            for name, owner, acl in conn.execute(
                "SELECT datname, pg_get_userbyid(datdba), datacl::text[] FROM pg_database WHERE datname = ANY(%s)",
                [databases],
            )
        }
    for db in databases:
        with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
            rows = conn.execute(FINGERPRINT).fetchall()
            out[db] = {Row(w, s, n, o, _acl(a)) for w, s, n, o, a in rows}
    return out


def expected_after(before: dict[str, Any], retired: str, owner: str) -> dict[str, Any]:
    """`before` as it must be once `retired` is retired with objects = "reassign": what it owned is
    the owner's (its ACL entries with it), its privileges and default privileges are gone, and so
    is the role with its memberships. Nothing else."""

    def swap(name: str) -> str:
        return owner if name == retired else name

    out: dict[str, Any] = {
        "roles": {r for r in before["roles"] if r[0] != retired},
        "memberships": {m for m in before["memberships"] if retired not in m[:2]},
        "databases": {(n, swap(o), frozenset(e for e in acl if e[1] != retired)) for n, o, acl in before["databases"]},
    }
    for db, rows in before.items():
        if db in out:
            continue
        moved = set()
        for row in rows:
            if row.what == "default" and row.owner == retired:
                continue  # DROP OWNED removes its default privileges
            if row.owner == retired:
                acl = frozenset((swap(g), swap(e), p) for g, e, p in row.acl)
                moved.add(Row(row.what, row.schema, row.name, owner, acl))
            else:
                moved.add(
                    Row(row.what, row.schema, row.name, row.owner, frozenset(e for e in row.acl if e[1] != retired))
                )
        out[db] = moved
    return out


@dataclass
class Cluster:
    """A policy database, a second database outside the policy, the policy's roles and a bystander."""

    admin_dsn: str
    path: Path
    db1: str
    db2: str
    owner: str
    app: str
    bystander: str

    def write(self, retired: str = "") -> None:
        line = f"retired = [{retired}]\n" if retired else ""
        self.path.write_text(
            f'version = 2\n{line}\n[owner]\nname = "{self.owner}"\nlogin = false\n\n'
            f'[[roles]]\nname = "{self.app}"\nlogin = false\n\n'
            f'[[databases]]\nname = "{self.db1}"\nschemas = ["public"]\n'
            f'grants = [{{ role = "{self.app}", profile = "readwrite", schemas = ["public"] }}]\n',
            encoding="utf-8",
        )

    def cli(self, *args: str) -> Any:
        return run_cli([*args, "-c", str(self.path), "--dsn", self.admin_dsn])

    def run(self, db: str, *statements: str | sql.Composable) -> None:
        with psycopg.connect(db_conninfo(self.admin_dsn, db), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def exists(self, role: str) -> bool:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


@pytest.fixture
def cluster(
    tmp_path: Path,
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> Iterator[Cluster]:
    c = Cluster(
        admin_dsn,
        tmp_path / "pgwarden.toml",
        pg_cleanup.database(unique_name("db1")),
        pg_cleanup.database(unique_name("db2")),
        pg_cleanup.role(unique_name("owner")),
        pg_cleanup.role(unique_name("app")),
        pg_cleanup.role(unique_name("bystander")),
    )
    for db in (c.db1, c.db2):
        admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(c.bystander)))
    c.write()
    result = c.cli("apply", "--yes")
    assert result.exit_code == 0, str(result)
    yield c


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _retiree(c: Cluster, admin_conn: psycopg.Connection[Any], name: str, *options: str) -> None:
    admin_conn.execute(sql.SQL("CREATE ROLE {} " + " ".join(options)).format(_ident(name)))


def _owns_in_both(c: Cluster, r: str) -> None:
    """The issue's case: r owns a schema and tables in db1 and a table in db2, sets default
    privileges, and holds grants (on a bystander's table and on db2 itself)."""
    ri, by = _ident(r), _ident(c.bystander)
    c.run(
        c.db1,
        sql.SQL("CREATE SCHEMA legacy AUTHORIZATION {}").format(ri),
        sql.SQL("SET ROLE {}").format(ri),
        "CREATE TABLE legacy.orders (id int PRIMARY KEY)",
        "CREATE TABLE legacy.lines (id int)",
        sql.SQL("GRANT SELECT ON legacy.orders TO {}").format(_ident(c.app)),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA legacy GRANT SELECT ON TABLES TO {}").format(_ident(c.app)),
        "RESET ROLE",
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT EXECUTE ON FUNCTIONS TO {}").format(ri, by),
    )
    c.run(
        c.db2,
        sql.SQL("CREATE TABLE public.kept (id int)"),
        sql.SQL("ALTER TABLE public.kept OWNER TO {}").format(by),
        sql.SQL("GRANT SELECT, UPDATE ON public.kept TO {}").format(ri),
        sql.SQL("CREATE TABLE public.report (id int)"),
        sql.SQL("ALTER TABLE public.report OWNER TO {}").format(ri),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_ident(c.db2), ri),
    )


def _schema(name: str = "plan") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pgwarden.schemas").joinpath(f"{name}.json").read_text("utf-8"))
    return data


def test_retired_role_is_reassigned_in_every_database_and_nothing_else_changes(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    r = pg_cleanup.role(unique_name("Old App"))  # a capital and a space: quoted everywhere
    _retiree(c, admin_conn, r)
    _owns_in_both(c, r)
    roles = [c.owner, c.app, c.bystander, r]
    before = fingerprint(c.admin_dsn, [c.db1, c.db2], roles)
    c.write(json.dumps(r))

    check = c.cli("check", "--format", "json")
    jsonschema.Draft202012Validator(_schema("check")).validate(check.json())
    found = [f for f in check.json()["findings"] if f["rule"] == "drift.retire-role"]
    assert check.exit_code == 1 and len(found) == 1, str(check)
    assert found[0]["severity"] == "medium" and found[0]["fix"] == "pgwarden apply" and found[0]["role"] == r

    text = c.cli("plan")
    assert text.exit_code == 0, str(text)
    assert f"retired role {r}: {c.db1}: owns 2 relations" in text.stdout, text.stdout
    assert f"{c.db2}: " in text.stdout and "holds privileges on 1 relation" in text.stdout
    assert "blocked" not in text.stdout
    assert c.cli("plan", "--exit-code").exit_code == 1
    data = c.cli("plan", "--format", "json").json()
    jsonschema.Draft202012Validator(_schema()).validate(data)
    (retirement,) = data["retired"]
    assert retirement["role"] == r and not retirement["blocked"]
    assert {d["database"] for d in retirement["databases"]} == {c.db1, c.db2}
    assert retirement["after"][0]["sql"] == sql.SQL("DROP ROLE {}").format(_ident(r)).as_string(None)
    script = c.cli("plan", "--format", "sql").stdout
    assert f"REASSIGN OWNED BY {_ident(r).as_string(None)}" in script

    applied = c.cli("apply", "--yes")
    assert applied.exit_code == 0, str(applied)
    assert not c.exists(r)
    assert fingerprint(c.admin_dsn, [c.db1, c.db2], roles) == expected_after(before, r, c.owner)
    # it really moved: the owner owns its objects in both databases, and the grant it gave is the owner's
    after = fingerprint(c.admin_dsn, [c.db1, c.db2], roles)
    orders = next(row for row in after[c.db1] if row.name == "orders")
    assert orders.owner == c.owner and (c.owner, c.app, "r") in orders.acl
    assert {row.owner for row in after[c.db2] if row.name == "report"} == {c.owner}
    assert not [row for db in (c.db1, c.db2) for row in after[db] if row.what == "default" and row.owner == r]
    clean = c.cli("plan", "--exit-code")
    assert clean.exit_code == 0, str(clean)
    assert not [f for f in c.cli("check", "--format", "json").json()["findings"] if f["rule"] == "drift.retire-role"]


def test_objects_drop_drops_them_and_terminate_ends_its_sessions(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    r = pg_cleanup.role(unique_name("etl"))
    owned_db = pg_cleanup.database(unique_name("etl_db"))
    _retiree(c, admin_conn, r, "LOGIN PASSWORD 'retire-me-pw'")
    admin_conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(_ident(owned_db), _ident(r)))
    c.run(
        c.db2,
        sql.SQL("CREATE TABLE public.scratch (id int)"),
        sql.SQL("ALTER TABLE public.scratch OWNER TO {}").format(_ident(r)),
    )
    session = psycopg.connect(role_conninfo(c.admin_dsn, r, "retire-me-pw", c.db2), autocommit=True)
    try:
        assert session.execute("SELECT count(*) FROM public.scratch").fetchone() == (0,)  # it is live, as r
        c.write(f'{{ name = "{r}", objects = "drop", terminate = true }}')
        plan = c.cli("plan")
        assert "1 live session(s) (ended first)" in plan.stdout, str(plan)
        assert "cluster-wide: owns 1 database" in plan.stdout
        applied = c.cli("apply", "--yes", "--format", "json")
        assert applied.exit_code == 0, str(applied)
        jsonschema.Draft202012Validator(_schema("apply")).validate(applied.json())
        changes = [s["sql"] for s in applied.json()["executed"] if s["phase"] == "retire"]
        assert changes[:2] == [f'ALTER ROLE "{r}" NOLOGIN', changes[1]] and "pg_terminate_backend" in changes[1]
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    finally:
        session.close()
    assert not c.exists(r)
    with psycopg.connect(db_conninfo(c.admin_dsn, c.db2), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('public.scratch')").fetchone() == (None,)  # dropped, not moved
    # a database is never dropped: it went to the owner
    row = admin_conn.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [owned_db]
    ).fetchone()
    assert row == (c.owner,)


def test_a_database_the_admin_cannot_enter_blocks_the_retirement_and_apply_changes_nothing(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    r = pg_cleanup.role(unique_name("locked"))
    closed = pg_cleanup.database(unique_name("closed"))
    _retiree(c, admin_conn, r)
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(_ident(closed)))
    for db in (c.db2, closed):
        c.run(db, "CREATE TABLE public.t (id int)", sql.SQL("ALTER TABLE public.t OWNER TO {}").format(_ident(r)))
    admin_conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(_ident(closed)))
    roles = [c.owner, c.app, c.bystander, r]
    before = fingerprint(c.admin_dsn, [c.db1, c.db2], roles)
    c.write(json.dumps(r))

    plan = c.cli("plan", "--format", "json")
    assert plan.exit_code == 0, str(plan)
    (retirement,) = plan.json()["retired"]
    assert retirement["blocked"] and any(closed in b and "datallowconn" in b for b in retirement["blockers"])
    text = c.cli("plan").stdout
    assert f"blocked: database {closed} does not allow connections" in text, text

    refused = c.cli("apply", "--yes")
    assert refused.exit_code == 2, str(refused)
    lines = refused.stderr.strip().splitlines()
    assert lines[0].startswith("error: retired role") and closed in lines[0] and "nothing was changed" in lines[0]
    assert lines[1].startswith("hint: ") and len(lines) == 2
    assert c.exists(r) and fingerprint(c.admin_dsn, [c.db1, c.db2], roles) == before

    skipped = c.cli("apply", "--yes", "--skip-unprivileged")
    assert skipped.exit_code == 0, str(skipped)
    assert f"retired role {r} was left as it is" in skipped.stderr + skipped.stdout
    assert c.exists(r) and fingerprint(c.admin_dsn, [c.db1, c.db2], roles) == before


def test_pgwarden_never_retires_the_bootstrap_superuser_a_superuser_or_a_system_role(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    boss = pg_cleanup.role(unique_name("boss"))
    _retiree(c, admin_conn, boss, "SUPERUSER")
    bootstrap = admin_conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()
    assert bootstrap is not None
    cases = {bootstrap[0]: "bootstrap superuser", boss: "is a superuser", "pg_monitor": "reserved by PostgreSQL"}
    for name, why in cases.items():
        c.write(json.dumps(name))
        for command in (("plan",), ("apply", "--yes"), ("check",)):
            result = c.cli(*command)
            lines = result.stderr.strip().splitlines()
            assert result.exit_code == 2 and len(lines) == 2, (command, str(result))
            assert lines[0].startswith("error: ") and why in lines[0] and lines[1].startswith("hint: "), str(result)
        assert c.exists(name)
    # the hint's statement runs, and then the role can be retired
    c.write(json.dumps(boss))
    hint = c.cli("plan").stderr.splitlines()[1]
    statement = hint.split("run ", 1)[1].split(" as a superuser")[0]
    admin_conn.execute(statement)
    assert c.cli("apply", "--yes").exit_code == 0 and not c.exists(boss)


@pytest.mark.minversion(16)
def test_memberships_the_retired_role_granted_are_kept_16(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    r, group, member = (pg_cleanup.role(unique_name(n)) for n in ("lead", "team", "person"))
    _retiree(c, admin_conn, r, "CREATEROLE")
    for name in (group, member):
        admin_conn.execute(sql.SQL("CREATE ROLE {}").format(_ident(name)))
    admin_conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN TRUE").format(_ident(group), _ident(r)))
    admin_conn.execute(sql.SQL("SET ROLE {}").format(_ident(r)))
    admin_conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(_ident(group), _ident(member)))
    admin_conn.execute("RESET ROLE")
    membership = (
        "SELECT m.admin_option, m.inherit_option, m.set_option FROM pg_auth_members m "
        "WHERE m.roleid = %s::regrole AND m.member = %s::regrole"
    )
    quoted = [_ident(group).as_string(None), _ident(member).as_string(None)]
    assert admin_conn.execute(membership, quoted).fetchall() == [(False, False, True)]
    c.write(json.dumps(r))
    # the hazard is real: as things are, the server refuses to drop it
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        admin_conn.execute(sql.SQL("DROP ROLE {}").format(_ident(r)))
    plan = c.cli("plan")
    assert f"memberships it granted, granted again by the admin: {member} in {group}" in plan.stdout, str(plan)
    applied = c.cli("apply", "--yes")
    assert applied.exit_code == 0, str(applied)
    assert not c.exists(r)
    assert admin_conn.execute(membership, quoted).fetchall() == [(False, False, True)]  # kept, options and all


def _owner_of(c: Cluster, db: str, table: str) -> str:
    with psycopg.connect(db_conninfo(c.admin_dsn, db), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass", [table]
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_an_interrupted_retirement_says_what_was_kept_and_the_next_apply_finishes_it(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    from pgwarden.apply import ApplyInterrupted, apply
    from pgwarden.plan import Phase, Step
    from pgwarden.policy import load_policy
    from pgwarden.session import Session

    c = cluster
    r = pg_cleanup.role(unique_name("halfway"))
    extra = pg_cleanup.database(unique_name("extra"))
    _retiree(c, admin_conn, r, "LOGIN")
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(_ident(extra)))
    for db in (c.db2, extra):
        c.run(db, "CREATE TABLE public.t (id int)", sql.SQL("ALTER TABLE public.t OWNER TO {}").format(_ident(r)))
    c.write(f'{{ name = "{r}", terminate = true }}')
    seen: list[str] = []

    def interrupt(event: str, step: Step | None, done: int, total: int) -> None:
        if step is not None and step.phase == Phase.RETIRE:
            seen.append(step.change)
            if step.change == "drop-owned" and seen.count("drop-owned") == 2:  # the second database, uncommitted
                raise KeyboardInterrupt

    with Session.open(c.admin_dsn, load_policy(c.path)) as session, pytest.raises(ApplyInterrupted) as info:
        apply(session, on_event=interrupt)
    message = str(info.value)
    assert info.value.exit_code == 130 and f"interrupted while retiring role {r}" in message, message
    assert "kept: " in message and "nologin, terminate" in message and "apply` again" in str(info.value.hint)
    # as said: logins stay refused, every database's part was rolled back, the role is still there
    assert c.exists(r) and _owner_of(c, c.db2, "public.t") == r and _owner_of(c, extra, "public.t") == r
    row = admin_conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [r]).fetchone()
    assert row == (False,)
    finished = c.cli("apply", "--yes")
    assert finished.exit_code == 0, str(finished)
    assert not c.exists(r) and _owner_of(c, c.db2, "public.t") == c.owner and _owner_of(c, extra, "public.t") == c.owner


def test_additive_mode_withholds_the_retirement(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    r = pg_cleanup.role(unique_name("kept"))
    _retiree(c, admin_conn, r)
    c.write(json.dumps(r))
    data = c.cli("plan", "--mode", "additive", "--format", "json").json()
    assert "retired" not in data and any(s["sql"].startswith("DROP ROLE") for s in data["withheld"])
    applied = c.cli("apply", "--yes", "--mode", "additive")
    assert applied.exit_code == 0 and c.exists(r), str(applied)
    assert f"retired role(s) {r} not dropped" in applied.stderr + applied.stdout


def test_a_createrole_admin_retires_a_role_it_created(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    adm, r = pg_cleanup.role(unique_name("adm")), pg_cleanup.role(unique_name("made"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'adm-pw-123'").format(_ident(adm)))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(_ident(c.owner), _ident(adm)))  # it acts as the owner
    adm_dsn = role_conninfo(c.admin_dsn, adm, "adm-pw-123", "postgres")
    with psycopg.connect(adm_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(_ident(r)))  # 16+: ADMIN OPTION on what it creates
    c.run(c.db2, "CREATE TABLE public.t (id int)", sql.SQL("ALTER TABLE public.t OWNER TO {}").format(_ident(r)))
    c.write(json.dumps(r))
    plan = run_cli(["plan", "--format", "json", "-c", str(c.path), "--dsn", adm_dsn])
    assert plan.exit_code == 0, str(plan)
    (retirement,) = plan.json()["retired"]
    assert not retirement["blocked"], retirement["blockers"]
    assert [s["sql"] for s in retirement["before"]] == [f'GRANT "{r}" TO "{adm}"']
    applied = run_cli(["apply", "--yes", "-c", str(c.path), "--dsn", adm_dsn])
    assert applied.exit_code == 0, str(applied)
    assert not c.exists(r) and _owner_of(c, c.db2, "public.t") == c.owner


def test_a_lock_in_the_last_database_rolls_back_every_database(
    cluster: Cluster, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    c = cluster
    r = pg_cleanup.role(unique_name("busy"))
    _retiree(c, admin_conn, r)
    db3 = pg_cleanup.database(unique_name("db3"))
    admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(_ident(db3)))
    first, last = sorted([c.db2, db3])  # the order the retirement visits them in
    for db in (first, last):
        c.run(db, "CREATE TABLE public.t (id int)", sql.SQL("ALTER TABLE public.t OWNER TO {}").format(_ident(r)))
    c.write(json.dumps(r))
    with psycopg.connect(db_conninfo(c.admin_dsn, last)) as reader:  # live traffic in the last database
        reader.execute("LOCK TABLE public.t IN ACCESS SHARE MODE")
        refused = c.cli("apply", "--yes", "--lock-timeout", "200ms")
        reader.rollback()
    assert refused.exit_code == 2, str(refused)
    assert "lock timeout" in refused.stderr and "--lock-timeout" in refused.stderr, refused.stderr
    assert "nothing was changed" in refused.stderr, refused.stderr
    # the first database's part had run, uncommitted: it was rolled back with the rest
    assert c.exists(r) and _owner_of(c, first, "public.t") == r and _owner_of(c, last, "public.t") == r
    assert c.cli("apply", "--yes").exit_code == 0
    assert not c.exists(r) and _owner_of(c, first, "public.t") == c.owner == _owner_of(c, last, "public.t")
