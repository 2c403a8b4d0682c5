"""Least privilege for pgwarden itself: read-only commands from a plain role; apply from a CREATEDB CREATEROLE admin."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import PgCleanup
from helpers import CliResult, role_conninfo, run_cli, write_policy
from pgwarden.policy import password_env_for
from pgwarden.server import LocalServer


class Env:
    def __init__(
        self, tmp_path: Path, server: LocalServer, unique_name: Callable[[str], str], cleanup: PgCleanup
    ) -> None:
        self.server = server
        self.super = server.conninfo("postgres")
        self.db = cleanup.database(unique_name("db"))
        self.owner, self.app, self.ro = (cleanup.role(unique_name(s)) for s in ("owner", "app", "ro"))
        self.cleanup = cleanup
        self.unique_name = unique_name
        self.passwords = {r: "pw-" + secrets.token_hex(8) for r in (self.owner, self.app, self.ro)}
        self.path = tmp_path / "p.toml"

    def write(self, ignore: tuple[str, ...] = ()) -> None:
        write_policy(self.path, database=self.db, owner=self.owner, app=[self.app], readonly=[self.ro])
        if ignore:
            text = self.path.read_text().replace("roles = []", "roles = [" + ", ".join(f'"{r}"' for r in ignore) + "]")
            self.path.write_text(text)

    @property
    def env(self) -> dict[str, str | None]:
        return {password_env_for(r): p for r, p in self.passwords.items()}

    def cli(self, *args: str, dsn: str, passwords: bool = True) -> CliResult:
        env = self.env if passwords else {k: None for k in self.env}
        result = run_cli([*args, "-c", str(self.path), "--dsn", dsn], env=env)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, str(result)
        return result

    def make_role(self, suffix: str, attrs: str) -> tuple[str, str]:
        name = self.cleanup.role(self.unique_name(suffix))
        pw = "pw-" + secrets.token_hex(8)
        with psycopg.connect(self.super, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN " + attrs + " PASSWORD {}").format(sql.Identifier(name), sql.Literal(pw))
            )
        return name, role_conninfo(self.super, name, pw, "postgres")


@pytest.fixture
def env(tmp_path: Path, pg_server: LocalServer, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Env:
    return Env(tmp_path, pg_server, unique_name, pg_cleanup)


def test_read_only_commands_from_a_plain_role(env: Env) -> None:
    """plan, check, report and probe --login need no attribute: CONNECT and the catalogs are enough."""
    monitor, monitor_dsn = env.make_role("mon", "NOSUPERUSER NOCREATEDB NOCREATEROLE")
    env.write(ignore=(monitor,))
    assert env.cli("apply", "--yes", dsn=env.super).exit_code == 0
    with psycopg.connect(make_conninfo(env.super, dbname=env.db), autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(env.db), sql.Identifier(monitor))
        )

    # without password variables: nothing to verify; the plan is empty as seen by the plain role too
    # (its own missing membership in the owner is a means for apply, not a change to the database)
    result = env.cli("plan", "--exit-code", "--format", "json", dsn=monitor_dsn, passwords=False)
    assert result.exit_code == 0 and result.json()["steps"] == [], str(result)
    # with them: it verifies them by logging in (it cannot read verifiers), so unchanged ones are no step
    result = env.cli("plan", "--exit-code", "--format", "json", dsn=monitor_dsn)
    assert result.exit_code == 0 and result.json()["steps"] == [], str(result)
    # a changed one is a step it may not run, saying what it needs
    real = env.passwords[env.app]
    env.passwords[env.app] = "pw-changed-" + secrets.token_hex(4)
    result = env.cli("plan", "--format", "json", dsn=monitor_dsn)
    assert result.exit_code == 0, str(result)
    # (with a change to make, apply would need the admin's membership in the owner: that step is listed too)
    steps = [s for s in result.json()["steps"] if s["action"] != "grant-membership"]
    assert [(s["action"], s["object"]) for s in steps] == [("set-password", f"role {env.app}")], str(result)
    assert not steps[0]["allowed"] and steps[0]["needs"], str(result)
    env.passwords[env.app] = real
    # apply from it: the database already matches, so there is nothing it would need rights for
    result = env.cli("apply", "--yes", dsn=monitor_dsn)
    assert result.exit_code == 0 and "nothing changed" in result.stdout, str(result)

    outputs: dict[str, CliResult] = {}
    for args in (["check", "--format", "json"], ["probe", "--login", "--format", "json"], ["report"]):
        result = env.cli(*args, dsn=monitor_dsn)
        if result.exit_code == 2 and "No such command" in result.stderr:
            continue
        outputs[args[0]] = result
        assert result.exit_code in (0, 1), str(result)
    assert "check" in outputs and "probe" in outputs
    # check sees what plan sees: passwords verified by login (no set-password drift); and nothing else
    # is found (the connected role's own membership in the owner is a means, not drift)
    rules = {f["rule"] for f in outputs["check"].json()["findings"]}
    assert not rules, str(outputs["check"])
    assert outputs["probe"].exit_code == 0, str(outputs["probe"])
    print("\nleast privilege, plain role: " + ", ".join(f"{k} exit {v.exit_code}" for k, v in outputs.items()))


def test_check_from_a_plain_role_on_a_compliant_database_is_clean(env: Env) -> None:
    monitor, monitor_dsn = env.make_role("mon", "")
    env.write(ignore=(monitor,))
    assert env.cli("apply", "--yes", dsn=env.super).exit_code == 0
    with psycopg.connect(make_conninfo(env.super, dbname=env.db), autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(env.db), sql.Identifier(monitor))
        )
    result = env.cli("check", "--format", "json", dsn=monitor_dsn)
    assert result.exit_code == 0, str(result)


def _plain_dsn_without_connect(env: Env) -> str:
    _, dsn = env.make_role("nocon", "")
    return dsn


def test_plain_role_without_connect_gets_a_clear_message(env: Env) -> None:
    env.write()
    assert env.cli("apply", "--yes", dsn=env.super).exit_code == 0
    dsn = _plain_dsn_without_connect(env)
    result = env.cli("plan", dsn=dsn)
    assert result.exit_code == 2, str(result)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and env.db in lines[0], str(result)


@pytest.mark.minversion(15)
def test_apply_from_createdb_createrole_admin(env: Env) -> None:
    """The managed-service admin: no superuser, CREATEDB and CREATEROLE. A fresh setup works end to end."""
    _, admin_dsn = env.make_role("adm", "CREATEDB CREATEROLE")
    env.write()
    result = env.cli("apply", "--yes", dsn=admin_dsn)
    assert result.exit_code == 0, str(result)
    result = env.cli("plan", "--exit-code", "--format", "json", dsn=admin_dsn, passwords=False)
    assert result.exit_code == 0, str(result)
    with psycopg.connect(env.super, autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (env.db,)).fetchone()
    assert row == (env.owner,)


@pytest.mark.minversion(15)
def test_apply_reports_what_needs_more_than_createrole(
    env: Env, pg_version: int, request: pytest.FixtureRequest
) -> None:
    """An owner and a database created earlier by a superuser: the CREATEROLE admin has no authority over them
    (16+: no ADMIN OPTION; database owned by someone else). apply says which steps and what they need,
    changes nothing, and --skip-unprivileged does the rest and prints the SQL for someone else."""
    _, admin_dsn = env.make_role("adm", "CREATEDB CREATEROLE")
    with psycopg.connect(env.super, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(env.owner)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(env.db)))
    with psycopg.connect(make_conninfo(env.super, dbname=env.db), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.legacy (id int)")
    env.write()
    before = _acl(env)

    plan = env.cli("plan", "--format", "json", dsn=admin_dsn, passwords=False)
    assert plan.exit_code == 0, str(plan)
    blocked = [s for s in plan.json()["steps"] if not s["allowed"]]
    assert blocked, str(plan)
    assert all(s["needs"] for s in blocked), str(plan)
    objects = " ".join(s["object"] for s in blocked)
    assert f"database {env.db}" in objects and "legacy" in objects, str(plan)

    result = env.cli("apply", "--yes", dsn=admin_dsn, passwords=False)
    assert result.exit_code == 2, str(result)
    assert "need more than the connected role has" in result.stderr and "nothing was changed" in result.stderr, str(
        result
    )
    assert _acl(env) == before

    result = env.cli("apply", "--yes", "--skip-unprivileged", "--format", "json", dsn=admin_dsn, passwords=False)
    print(
        f"\nleast privilege, CREATEROLE admin: {len(blocked)} step(s) need more: "
        + "; ".join(sorted({s["needs"] for s in blocked}))
    )
    assert result.exit_code in (0, 1), str(result)
    skipped = result.json()["skipped"]
    assert skipped and all(s["sql"] for s in skipped), str(result)
    # a superuser finishes the job; then everything converges
    assert env.cli("apply", "--yes", dsn=env.super, passwords=False).exit_code == 0
    assert env.cli("plan", "--exit-code", dsn=env.super, passwords=False).exit_code == 0


def _acl(env: Env) -> list[tuple[Any, ...]]:
    with psycopg.connect(make_conninfo(env.super, dbname=env.db), autocommit=True) as conn:
        return conn.execute(
            "SELECT 'c', relname, relowner::regrole::text, relacl::text FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace "
            "UNION ALL SELECT 'n', nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace "
            "WHERE nspname = 'public' "
            "UNION ALL SELECT 'd', datname, datdba::regrole::text, datacl::text FROM pg_database "
            "WHERE datname = current_database() "
            "ORDER BY 1, 2"
        ).fetchall()
