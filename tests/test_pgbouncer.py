"""[pgbouncer] on a real server and a real PgBouncer (Debian's `pgbouncer`, started here with
auth_type = scram-sha-256 and auth_query calling the lookup routine apply installs): the app logs in
through it with its password, `postgres` is refused; check flags an auth_user that is a superuser or
reads the verifiers itself (each proven first by acting as it); apply refuses a superuser auth_user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from conftest import PgCleanup
from helpers import db_conninfo, role_conninfo, run_cli
from pgwarden.policy import password_env_for
from pgwarden.pooler import auth_query
from pgwarden.server.cluster import LocalServer
from pgwarden.server.osuser import server_os_user

APP_PW, BOUNCER_PW = "app-pw-8231", "bouncer-pw-5517"


def _pgbouncer() -> str:
    """The pgbouncer binary; skip (locally) or fail (CI=true) when it is not installed, as the
    migration-tool tests do: a missing tool never passes silently (.ci/run installs it)."""
    found = shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.path.exists(p)), None)
    if found is None:
        reason = "pgbouncer is not installed (Debian package pgbouncer; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Setup:
    admin_dsn: str
    path: Path
    db: str
    owner: str
    app: str
    bouncer: str

    @property
    def env(self) -> dict[str, str | None]:
        return {password_env_for(self.app): APP_PW, password_env_for(self.bouncer): BOUNCER_PW}

    def cli(self, *args: str) -> Any:
        return run_cli([*args, "-c", str(self.path), "--dsn", self.admin_dsn], env=self.env)

    def check(self) -> list[dict[str, Any]]:
        result = self.cli("check", "--format", "json")
        assert result.exit_code in (0, 1), str(result)
        findings: list[dict[str, Any]] = result.json()["findings"]
        return findings


@pytest.fixture
def setup(
    tmp_path: Path,
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> Setup:
    s = Setup(
        admin_dsn,
        tmp_path / "pgwarden.toml",
        pg_cleanup.database(unique_name("db")),
        pg_cleanup.role(unique_name("owner")),
        pg_cleanup.role(unique_name("app")),
        pg_cleanup.role(unique_name("bouncer")),
    )
    s.path.write_text(
        f'version = 2\n\n[owner]\nname = "{s.owner}"\nlogin = false\n\n'
        f'[[roles]]\nname = "{s.app}"\npassword_env = "{password_env_for(s.app)}"\n\n'
        f'[[roles]]\nname = "{s.bouncer}"\npassword_env = "{password_env_for(s.bouncer)}"\n\n'
        f'[[databases]]\nname = "{s.db}"\nschemas = ["public"]\n'
        f'grants = [{{ role = "{s.app}", profile = "readwrite", schemas = ["public"] }}, '
        f'{{ role = "{s.bouncer}", profile = "connect" }}]\n\n'
        f'[pgbouncer]\nauth_user = "{s.bouncer}"\n',
        encoding="utf-8",
    )
    applied = s.cli("apply", "--yes")
    assert applied.exit_code == 0, str(applied)
    return s


@pytest.fixture
def bouncer(setup: Setup, pg_server: LocalServer) -> Iterator[int]:
    """A PgBouncer in front of the policy's database, on a free port; its port. Stopped and its files
    removed afterwards."""
    binary = _pgbouncer()
    s = setup
    user = server_os_user()  # pgbouncer refuses to run as root, as postgres does
    workdir = Path(tempfile.mkdtemp(prefix="pgwarden-pgbouncer-"))
    port = _free_port()
    (workdir / "userlist.txt").write_text(f'"{s.bouncer}" "{BOUNCER_PW}"\n', encoding="utf-8")
    (workdir / "pgbouncer.ini").write_text(
        f"[databases]\n{s.db} = host={pg_server.host} port={pg_server.port} dbname={s.db}\n\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {workdir / 'userlist.txt'}\n"
        f"auth_user = {s.bouncer}\nauth_query = {auth_query_of(s)}\n"
        f"pool_mode = session\nlogfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n",
        encoding="utf-8",
    )
    if user is not None:
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, user.uid, user.gid)
    os.chmod(workdir / "userlist.txt", 0o600)
    proc = subprocess.Popen(
        [binary, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        user=user.uid if user else None,
        group=user.gid if user else None,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (workdir / "pgbouncer.log").read_text() if (workdir / "pgbouncer.log").exists() else ""
                    err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
                    pytest.fail(f"pgbouncer did not start: {err}{log}")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)


def auth_query_of(s: Setup) -> str:
    from pgwarden.policy import load_policy

    return auth_query(load_policy(s.path))


def _through(port: int, db: str, user: str, password: str) -> str:
    return f"host=127.0.0.1 port={port} dbname={db} user={user} password={password} connect_timeout=10"


def test_the_app_logs_in_through_pgbouncer_and_postgres_is_refused(setup: Setup, bouncer: int) -> None:
    s = setup
    with psycopg.connect(_through(bouncer, s.db, s.app, APP_PW), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (s.app,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_through(bouncer, s.db, s.app, "not-the-password")).close()
    admin = conninfo_to_dict(s.admin_dsn)
    assert admin.get("user") == "postgres"
    with pytest.raises(psycopg.OperationalError):  # a superuser: the routine returns no verifier for it
        psycopg.connect(_through(bouncer, s.db, "postgres", str(admin["password"]))).close()
    # the same password straight to the server works: PgBouncer refused it because of the routine
    psycopg.connect(role_conninfo(s.admin_dsn, "postgres", str(admin["password"]), s.db)).close()


def test_the_routine_is_the_auth_users_only_and_apply_keeps_it_so(
    setup: Setup, admin_conn: psycopg.Connection[Any]
) -> None:
    s = setup
    assert [f for f in s.check() if f["rule"].startswith(("pooler", "drift", "outside"))] == []
    function = sql.Identifier("pgbouncer", "user_lookup")
    lookup = sql.SQL("SELECT uname, phash FROM {}(%s)").format(function)
    with psycopg.connect(role_conninfo(s.admin_dsn, s.bouncer, BOUNCER_PW, s.db), autocommit=True) as conn:
        uname, phash = conn.execute(lookup, [s.app]).fetchone() or (None, None)
        assert uname == s.app and str(phash).startswith("SCRAM-SHA-256$")
        assert conn.execute(lookup, ["postgres"]).fetchone() == (None, None)  # never a superuser's
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # nor pg_authid itself
            conn.execute("SELECT rolpassword FROM pg_catalog.pg_authid")
    with psycopg.connect(role_conninfo(s.admin_dsn, s.app, APP_PW, s.db), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(lookup, [s.app])
    # tampering: PUBLIC may execute it and its search_path is reset; check finds it, apply repairs it
    with psycopg.connect(db_conninfo(s.admin_dsn, s.db), autocommit=True) as db_admin:
        db_admin.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {}(text) TO PUBLIC").format(function))
        db_admin.execute(sql.SQL("ALTER FUNCTION {}(text) RESET search_path").format(function))
    assert {f["rule"] for f in s.check()} >= {"drift.pooler"}
    assert s.cli("apply", "--yes").exit_code == 0
    assert [f for f in s.check() if f["rule"].startswith(("pooler", "drift"))] == []
    with psycopg.connect(role_conninfo(s.admin_dsn, s.app, APP_PW, s.db), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(lookup, [s.app])


def test_check_flags_an_auth_user_that_reads_verifiers_and_apply_refuses_a_superuser(
    setup: Setup, admin_conn: psycopg.Connection[Any]
) -> None:
    s = setup
    bouncer = sql.Identifier(s.bouncer)
    admin_conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(bouncer))
    # proof, as the auth_user: it reads every verifier, the superuser's included
    with psycopg.connect(role_conninfo(s.admin_dsn, s.bouncer, BOUNCER_PW, s.db), autocommit=True) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = 'postgres'").fetchone()
        assert row is not None and str(row[0]).startswith("SCRAM-SHA-256$")
    (found,) = [f for f in s.check() if f["rule"].startswith("pooler.")]
    assert found["rule"] == "pooler.auth-user-reads-secrets" and "pg_read_all_data" in found["message"]
    admin_conn.execute(found["fix"])
    assert [f for f in s.check() if f["rule"].startswith("pooler.")] == []

    admin_conn.execute(sql.SQL("ALTER ROLE {} SUPERUSER").format(bouncer))
    try:
        (found,) = [f for f in s.check() if f["rule"].startswith("pooler.")]
        assert found["rule"] == "pooler.auth-user-superuser"
        refused = s.cli("apply", "--yes")
        assert refused.exit_code == 2, str(refused)
        lines = refused.stderr.strip().splitlines()
        assert lines[0].startswith(f"error: [pgbouncer] auth_user {s.bouncer} is a superuser")
        assert lines[1].startswith("hint: ") and len(lines) == 2
    finally:
        admin_conn.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(bouncer))


def test_a_non_superuser_admin_is_told_the_routine_needs_a_superuser_and_nothing_changes(
    setup: Setup, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s = setup
    adm = pg_cleanup.role(unique_name("adm"))
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'adm-pw-991'").format(sql.Identifier(adm)))
    admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(s.owner), sql.Identifier(adm)))
    with psycopg.connect(db_conninfo(s.admin_dsn, s.db), autocommit=True) as conn:
        conn.execute('DROP FUNCTION "pgbouncer"."user_lookup"(text)')
    adm_dsn = role_conninfo(s.admin_dsn, adm, "adm-pw-991", "postgres")
    checked = run_cli(["check", "--format", "json", "-c", str(s.path), "--dsn", adm_dsn], env=s.env)
    assert "drift.pooler" in {f["rule"] for f in checked.json()["findings"]}, str(checked)
    refused = run_cli(["apply", "--yes", "-c", str(s.path), "--dsn", adm_dsn], env=s.env)
    assert refused.exit_code == 2 and "superuser" in refused.stderr, str(refused)
    with psycopg.connect(db_conninfo(s.admin_dsn, s.db), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname = 'user_lookup'").fetchone() == (0,)
