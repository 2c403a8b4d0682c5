"""pgwarden.contrib.django with a real Django 5.2 project: migrate as the owner, serve as the runtime role."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from helpers import db_conninfo, run_cli, write_policy
from pgwarden.contrib.django import database_settings, runtime_can_alter_schema

pytest.importorskip("django", reason="the test extra installs django>=5.2")

PROJECT = Path(__file__).parent / "projects" / "django_site"

RUNTIME_SCRIPT = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_cfg.settings")
django.setup()
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
user = User.objects.create_user("alice", password="pw12345!")
client = Client()
assert client.login(username="alice", password="pw12345!")
resp = client.get("/buy/")
assert resp.status_code == 200, resp.status_code
with connection.cursor() as cur:
    cur.execute("INSERT INTO shop_legacy (note) VALUES ('x') RETURNING id")
    cur.execute("SELECT current_user")
    print("runtime as", cur.fetchone()[0])
print("ok")
"""


def _python(cwd: Path, args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_database_settings_switch(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "p.toml", database="shopdb", owner="shop_owner", app=["shop_app"])
    env = {"PGWARDEN_PASSWORD_SHOP_APP": "a", "PGWARDEN_PASSWORD_SHOP_OWNER": "o", "PGHOST": "h"}
    runtime = database_settings(policy, environ=env)
    assert (runtime["USER"], runtime["PASSWORD"], runtime["NAME"], runtime["HOST"]) == ("shop_app", "a", "shopdb", "h")
    owner = database_settings(policy, environ={**env, "PGWARDEN_MIGRATE": "1"})
    assert (owner["USER"], owner["PASSWORD"], owner["OPTIONS"]) == ("shop_owner", "o", {})
    text = policy.read_text().replace(
        "login = true\ncreatedb", 'login = false\ndeploy_logins = ["shop_deploy"]\ncreatedb', 1
    )
    policy.write_text(text)
    # settings.PGWARDEN_POLICY relative to BASE_DIR, whatever the current directory
    script = (
        "import sys; from django.conf import settings\n"
        "settings.configure(BASE_DIR=sys.argv[1], PGWARDEN_POLICY='p.toml')\n"
        "from pgwarden.contrib.django import policy_path_setting; print(policy_path_setting())"
    )
    found = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd="/")
    assert found.stdout.strip() == str(policy), found.stderr
    # with no PGHOST/PGPORT, the server of PGWARDEN_DSN
    from_dsn = database_settings(policy, environ={"PGWARDEN_DSN": "host=db.example port=6432 user=admin"})
    assert (from_dsn["HOST"], from_dsn["PORT"]) == ("db.example", "6432")
    deploy = database_settings(policy, role="owner", environ={"PGWARDEN_PASSWORD_SHOP_DEPLOY": "d"})
    assert (deploy["USER"], deploy["PASSWORD"], deploy["OPTIONS"]) == (
        "shop_deploy",
        "d",
        {"assume_role": "shop_owner"},
    )


def test_django_project(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    db = pg_cleanup.database(unique_name("djdb"))
    owner = pg_cleanup.role(unique_name("djowner"))
    app = pg_cleanup.role(unique_name("djapp"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {f"PGWARDEN_PASSWORD_{owner.upper()}": "owner-pw", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw"}
    applied = run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets)
    assert applied.exit_code == 0, applied

    site = tmp_path / "site"
    shutil.copytree(PROJECT, site, ignore=shutil.ignore_patterns("later", "__pycache__"))
    params = conninfo_to_dict(admin_dsn)
    src = str(Path(__file__).parents[1] / "src")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"},
        **secrets,
        "PGWARDEN_POLICY": str(policy),
        "PGHOST": str(params.get("host", "")),
        "PGPORT": str(params.get("port", "")),
        "PYTHONPATH": os.pathsep.join([src, str(site)]),
    }

    # 1. migrate through `pgwarden run --as owner`: succeeds, and the check afterwards is clean
    cwd = os.getcwd()
    os.chdir(site)
    try:
        res = run_cli(
            [
                "run",
                "-c",
                str(policy),
                "--dsn",
                admin_dsn,
                "--as",
                "owner",
                "--",
                sys.executable,
                "manage.py",
                "migrate",
                "--no-input",
            ],
            env={**env, "PGWARDEN_DSN": None},
        )
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res
    check = run_cli(["check", "-c", str(policy), "--dsn", admin_dsn, "--format", "json"], env=secrets)
    drift = [f for f in check.json()["findings"] if f["rule"].startswith(("drift.", "ownership."))]
    assert drift == [], check

    # 2. the runtime role serves requests: a user, a session, rows with serial and identity keys
    out = _python(site, ["-c", RUNTIME_SCRIPT], env).stdout
    assert f"runtime as {app}" in out and "ok" in out
    # the system check is quiet for the runtime role (it cannot alter the schema)
    checked = _python(site, ["manage.py", "check", "--database", "default"], env)
    assert "pgwarden.W001" not in checked.stdout + checked.stderr

    # 3. a migration added later; the runtime role running migrate fails clearly and changes nothing
    shutil.copy(PROJECT / "later" / "0002_coupon.py", site / "shop" / "migrations" / "0002_coupon.py")
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM django_migrations").fetchone()
    bad = _python(site, ["manage.py", "migrate", "--no-input"], env, check=False)
    assert bad.returncode != 0
    assert f"migrations must run as the owner {owner}" in bad.stderr, bad.stderr
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM django_migrations").fetchone() == before
        assert conn.execute("SELECT to_regclass('shop_coupon')").fetchone() == (None,)

    # 4. the owner applies it; default privileges cover it without another `pgwarden apply`
    os.chdir(site)
    try:
        res = run_cli(
            ["run", "-c", str(policy), "--dsn", admin_dsn, "--", sys.executable, "manage.py", "migrate", "--no-input"],
            env={**env, "PGWARDEN_DSN": None},
        )
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_cfg.settings'); django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as c: c.execute(\"INSERT INTO shop_coupon (code) VALUES ('X')\")\n"
        "print('coupon ok')"
    )
    assert "coupon ok" in _python(site, ["-c", script], env).stdout

    # 5. manage.py pgwarden_check runs check against the project's database (clean: exit 0 or findings of hazards only)
    mc = _python(site, ["manage.py", "pgwarden_check", "--dsn", admin_dsn, "--fail-on", "high"], env, check=False)
    assert mc.returncode in (0, 1), mc.stderr
    assert "drift." not in mc.stdout, mc.stdout
    # pgwarden could not run (no server there): 2, as the CLI says it, not 1 (found something)
    down = _python(site, ["manage.py", "pgwarden_check", "--dsn", "host=127.0.0.1 port=1"], env, check=False)
    assert down.returncode == 2 and "cannot open the admin connection" in down.stderr, down.stderr
    # W001's reasons for a superuser: that it is one (not a count of every object it can act for)
    with admin_conn.cursor() as cursor:
        assert runtime_can_alter_schema(cursor) == ["is a superuser"]


def test_project_tests_run_as_the_app_role(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: Any, tmp_path: Path
) -> None:
    """TEST_RUNNER = pgwarden.contrib.django.TestRunner: the owner creates, migrates and hardens the test
    database (and --parallel clones); the project's tests then run as the app role, so DDL is denied."""
    db = pg_cleanup.database(unique_name("djtdb"))
    for name in (f"test_{db}", f"test_{db}_1", f"test_{db}_2"):
        pg_cleanup.database(name)
    owner = pg_cleanup.role(unique_name("djtowner"))
    app = pg_cleanup.role(unique_name("djtapp"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {f"PGWARDEN_PASSWORD_{owner.upper()}": "owner-pw", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    site = tmp_path / "site"
    shutil.copytree(PROJECT, site, ignore=shutil.ignore_patterns("later", "__pycache__"))
    src = str(Path(__file__).parents[1] / "src")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"},
        **secrets,
        "PGWARDEN_POLICY": str(policy),
        "PGWARDEN_DSN": admin_dsn,  # the admin connection that hardens the test database; HOST/PORT come from it
        "PYTHONPATH": os.pathsep.join([src, str(site)]),
    }
    test = ["manage.py", "test", "shop", "--noinput"]

    # 1. in parallel, keeping the databases: every test passes as the app role
    first = _python(site, [*test, "--keepdb", "--parallel", "2"], env, check=False)
    assert first.returncode == 0 and "Ran 7 tests" in first.stderr, first.stdout + first.stderr
    with psycopg.connect(db_conninfo(admin_dsn, f"test_{db}"), autocommit=True) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
        assert owners == [(owner,)]
    # the test database and its clones are hardened as the policy says: check finds nothing
    for name in (f"test_{db}", f"test_{db}_1", f"test_{db}_2"):
        copy = write_policy(tmp_path / f"{name}.toml", database=name, owner=owner, app=[app])
        check = run_cli(["check", "-c", str(copy), "--dsn", admin_dsn, "--format", "json"], env=secrets)
        assert check.exit_code == 0 and check.json()["findings"] == [], check

    # 2. --keepdb again: the kept database is reused, migrate (nothing pending) passes the guard as the owner
    again = _python(site, [*test, "--keepdb"], env, check=False)
    assert again.returncode == 0 and "Using existing test database" in again.stderr, again.stderr

    # 3. the same tests under Django's default runner as the owner: DDL is allowed, so the test fails
    owner_run = subprocess.run(
        [sys.executable, "-m", "pgwarden", "run", "-c", str(policy), "--dsn", admin_dsn, "--no-check", "--"]
        + [sys.executable, *test, "--testrunner", "django.test.runner.DiscoverRunner"],
        cwd=site,
        env={**env, "PGWARDEN_DSN": ""},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert owner_run.returncode == 1, owner_run.stdout + owner_run.stderr
    assert (
        "FAIL: test_ddl_is_denied" in owner_run.stderr and "FAIL: test_queries_run_as_the_app_role" in owner_run.stderr
    )

    # 4. no admin connection to harden the test database with: one error and one hint line, exit 2,
    #    and the test database it had created is dropped again
    params = conninfo_to_dict(admin_dsn)
    server = {"PGHOST": str(params["host"]), "PGPORT": str(params["port"])}  # the database itself is reachable
    down = _python(site, test, {**env, **server, "PGWARDEN_DSN": "host=127.0.0.1 port=1"}, check=False)
    lines = [line for line in down.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert down.returncode == 2 and "Traceback" not in down.stderr, down.stderr
    assert lines[0].startswith("error: cannot open the admin connection") and lines[1].startswith("hint:"), down.stderr
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [f"test_{db}"]).fetchone() is None
