"""Leased logins ([[leased]]) on real servers: the printed statements run as printed, check finds what
leased logins hold (each hazard proven first by acting as the login), and a non-superuser admin
retires 300 expired ones of 500 in batches, leaving nothing behind."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo, run_cli
from pgwarden.lease_statements import fill

ISSUER_PW = "issuer-pw-4711"


@dataclass
class Setup:
    admin_dsn: str
    path: Path
    db1: str
    db2: str
    owner: str
    group: str
    issuer: str
    prefix: str

    @property
    def issuer_dsn(self) -> str:
        return role_conninfo(self.admin_dsn, self.issuer, ISSUER_PW, "postgres")

    def cli(self, *args: str, dsn: str | None = None) -> Any:
        return run_cli([*args, "-c", str(self.path), "--dsn", dsn or self.admin_dsn])

    def run(self, db: str, *statements: str | sql.Composable, dsn: str | None = None) -> None:
        with psycopg.connect(db_conninfo(dsn or self.admin_dsn, db), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def leased(self) -> list[str]:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [self.prefix])
            return sorted(r[0] for r in rows)


def _statements(output: str) -> dict[int, list[str]]:
    """`leases statements` output, by its numbered sections (-- 1. ... -- 4.)."""
    out: dict[int, list[str]] = {}
    section = 0
    for line in output.splitlines():
        marker = re.match(r"-- (\d)\. ", line)
        if marker:
            section = int(marker.group(1))
        elif line.strip() and not line.startswith("--"):
            out.setdefault(section, []).append(line)
    return out


@pytest.fixture
def setup(
    tmp_path: Path,
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> Iterator[Setup]:
    s = Setup(
        admin_dsn,
        tmp_path / "pgwarden.toml",
        pg_cleanup.database(unique_name("db1")),
        pg_cleanup.database(unique_name("db2")),
        pg_cleanup.role(unique_name("owner")),
        pg_cleanup.role(unique_name("leased_group")),
        pg_cleanup.role(unique_name("vault")),
        unique_name("v") + "-",
    )
    for db in (s.db1, s.db2):
        admin_conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    databases = "".join(
        f'[[databases]]\nname = "{db}"\nschemas = ["public"]\n'
        f'grants = [{{ role = "{s.group}", profile = "readonly", schemas = ["public"] }}]\n\n'
        for db in (s.db1, s.db2)
    )
    s.path.write_text(
        f'version = 2\n\n[owner]\nname = "{s.owner}"\nlogin = false\n\n'
        f'[[roles]]\nname = "{s.group}"\nlogin = false\n\n{databases}'
        f'[[leased]]\npattern = "{s.prefix}*"\ngroup = "{s.group}"\nissuer = "{s.issuer}"\n',
        encoding="utf-8",
    )
    applied = s.cli("apply", "--yes")
    assert applied.exit_code == 0, str(applied)
    for db in (s.db1, s.db2):
        s.run(db, sql.SQL("SET ROLE {}").format(sql.Identifier(s.owner)), "CREATE TABLE public.items (id int)")
    # the issuer's minimal rights, exactly as printed, run once by a superuser
    printed = s.cli("leases", "statements")
    assert printed.exit_code == 0, str(printed)
    for statement in _statements(printed.stdout)[1]:
        admin_conn.execute(statement)
    admin_conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(s.issuer), ISSUER_PW))
    try:
        yield s
    finally:
        left = s.leased()
        if left:  # the logins still there, in one statement (500 DROP ROLE would be slow)
            names = sql.SQL(", ").join(sql.Identifier(n) for n in left)
            for db in (s.db1, s.db2, "postgres"):
                s.run(db, sql.SQL("DROP OWNED BY {}").format(names))
            admin_conn.execute(sql.SQL("DROP ROLE {}").format(names))


def test_printed_statements_run_and_keep_a_leased_login_to_its_group(setup: Setup, pg_version: int) -> None:
    s = setup
    issuer = psycopg.connect(s.issuer_dsn, autocommit=True)
    with issuer:
        row = issuer.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False, True)  # the issuer is no superuser
    printed = _statements(s.cli("leases", "statements").stdout)
    login, password = f"{s.prefix}one", "lease-pw-1"
    with psycopg.connect(s.issuer_dsn, autocommit=True) as conn:
        for statement in printed[2]:
            conn.execute(fill(statement, login, password, "2999-01-01 00:00:00+00"))
    # the login reads through its group, holds nothing itself, and may not write
    with psycopg.connect(role_conninfo(s.admin_dsn, login, password, s.db1), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.items").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO public.items VALUES (1)")
        row = conn.execute(
            "SELECT rolvaliduntil IS NOT NULL, ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b "
            "ON b.oid = m.roleid WHERE m.member = r.oid) FROM pg_roles r WHERE rolname = current_user"
        ).fetchone()
        assert row == (True, [s.group])
        session = psycopg.connect(role_conninfo(s.admin_dsn, login, password, s.db2), autocommit=True)
    for db in (s.db1, s.db2):
        assert _findings(s, db, expect=0) == []
    # revocation as printed, as the issuer: every database of the policy, then DROP ROLE; its open session ends
    for db in (s.db1, s.db2):
        with psycopg.connect(db_conninfo(s.issuer_dsn, db), autocommit=True) as conn:
            for statement in printed[3]:
                conn.execute(fill(statement, login))
    with psycopg.connect(s.issuer_dsn, autocommit=True) as conn:
        for statement in printed[4]:
            conn.execute(fill(statement, login))
    assert s.leased() == []
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()


#: 500 leased logins made by the issuer in one statement: the first 300 expired yesterday.
MAKE_500 = """
DO $$
BEGIN
  FOR i IN 1..500 LOOP
    EXECUTE format('CREATE ROLE %I LOGIN VALID UNTIL %L IN ROLE %I', {prefix} || i,
                   now() + CASE WHEN i <= 300 THEN interval '-1 day' ELSE interval '1 day' END, {group});
  END LOOP;
END
$$
"""


def _findings(s: Setup, db: str, expect: int = 1) -> list[dict[str, Any]]:
    result = s.cli("check", "--format", "json", "-d", db)
    assert result.exit_code == expect, str(result)
    return [f for f in result.json()["findings"] if f["rule"].startswith("lease.")]


def _holders(s: Setup, db: str) -> list[str]:
    """Leased logins named in any ACL or owning anything in `db` (pg_shdepend, plus the database's ACL)."""
    with psycopg.connect(db_conninfo(s.admin_dsn, db), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT r.rolname FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid "
            "WHERE starts_with(r.rolname, %s) AND (d.dbid = (SELECT oid FROM pg_database WHERE datname = "
            "current_database()) OR d.dbid = 0)",
            [s.prefix],
        )
        return sorted(r[0] for r in rows)


def test_500_leased_logins_found_by_check_and_300_expired_retired_by_a_non_superuser(
    setup: Setup, admin_conn: psycopg.Connection[Any]
) -> None:
    s = setup
    # the issuer retires them too: it acts as the owner (to reassign what they own to it), as a
    # non-superuser admin of pgwarden does
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(s.owner), sql.Identifier(s.issuer)))
    with psycopg.connect(s.issuer_dsn, autocommit=True) as conn:  # as Vault would: the issuer makes them
        conn.execute(sql.SQL(MAKE_500).format(prefix=sql.Literal(s.prefix), group=sql.Literal(s.group)))
    name = f"{s.prefix}{{}}".format
    granted = [name(i) for i in (1, 2, 3, 150, 299, 301, 302, 450)]  # expired and not: direct grants in db1
    owning = [name(i) for i in range(11, 21)]  # ten expired ones own a table each in db2
    for login in granted:
        s.run(s.db1, sql.SQL("GRANT SELECT, UPDATE ON public.items TO {}").format(sql.Identifier(login)))
    s.run(s.db2, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(s.db2), sql.Identifier(name(5))))
    for i, login in enumerate(owning):
        table = sql.Identifier("public", f"own_{i}")
        s.run(s.db2, sql.SQL("CREATE TABLE {} (id int)").format(table),
              sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(login)))  # fmt: skip

    # proof, acting as the logins: a direct grant gives what the group does not (UPDATE), ownership
    # lets it alter the table, and an expired login's grants still work for whoever can become it
    with psycopg.connect(db_conninfo(s.admin_dsn, s.db1)) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name(2))))  # expired yesterday
        conn.execute("UPDATE public.items SET id = id")
        conn.rollback()
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name(400))))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE public.items SET id = id")
    with psycopg.connect(db_conninfo(s.admin_dsn, s.db2)) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owning[0])))
        conn.execute("ALTER TABLE public.own_0 ADD COLUMN x int")
        conn.rollback()

    found1, found2 = _findings(s, s.db1), _findings(s, s.db2)
    assert sorted(f["role"] for f in found1 if f["rule"] == "lease.direct-grant") == sorted(granted)
    assert sorted(f["role"] for f in found2 if f["rule"] == "lease.owns-objects") == sorted(owning)
    assert [f["role"] for f in found2 if f["rule"] == "lease.direct-grant"] == [name(5)]  # CONNECT on db2
    for found in (found1, found2):
        (expired,) = [f for f in found if f["rule"] == "lease.expired"]
        assert expired["message"].startswith(f"300 leased login(s) named by '{s.prefix}*' expired")
    # the fix check prints for a direct grant runs, and the grant is gone
    fix = next(f["fix"] for f in found1 if f["role"] == name(450))
    s.run(s.db1, fix)
    assert name(450) not in _holders(s, s.db1)

    # the issuer, no superuser, retires the expired ones: a dry run first, then 100 per transaction
    dry = s.cli("leases", "retire", dsn=s.issuer_dsn)
    assert dry.exit_code == 0 and "300 expired leased login(s)" in dry.stderr and "blocked" not in dry.stderr, str(dry)
    assert len(s.leased()) == 500
    done = s.cli("leases", "retire", "--yes", dsn=s.issuer_dsn)
    assert done.exit_code == 0, str(done)
    assert [line for line in done.stderr.splitlines() if line.startswith("retiring")] == [
        f"retiring leased logins {a}-{a + 99} of 300" for a in (1, 101, 201)
    ]
    left = s.leased()
    assert left == sorted(name(i) for i in range(301, 501))
    for db in (s.db1, s.db2):  # nothing of the dropped ones is left: no ACL entry, no owned object
        assert [h for h in _holders(s, db) if h not in left] == []
        with psycopg.connect(db_conninfo(s.admin_dsn, db), autocommit=True) as conn:
            grantees = {
                r[0]
                for r in conn.execute(
                    "SELECT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a WHERE c.relname = 'items'"
                )
            }
            assert s.owner in grantees and not grantees - {s.owner, s.group, *(f'"{n}"' for n in left)}
    with psycopg.connect(db_conninfo(s.admin_dsn, s.db2), autocommit=True) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname LIKE 'own\\_%' AND relkind = 'r'"
        ).fetchall()
        assert owners == [(s.owner,)]
        datacl = conn.execute(
            "SELECT array_agg(a.grantee::regrole::text) FROM pg_database d, aclexplode(d.datacl) a "
            "WHERE d.datname = current_database() AND a.grantee <> 0"
        ).fetchone()
        assert datacl is not None and f'"{name(5)}"' not in datacl[0] and all(not g.isdigit() for g in datacl[0])
    assert not [f for f in _findings(s, s.db1) if f["rule"] == "lease.expired"]
    again = s.cli("leases", "retire", "--yes", dsn=s.issuer_dsn)
    assert again.exit_code == 0 and "no expired leased login exists" in again.stderr, str(again)
