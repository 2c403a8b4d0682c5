"""Django's daily paths with the split: pytest-django, `run --as owner -- manage.py test`, loaddata and flush."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, run_cli, write_policy

pytest.importorskip("django", reason="the test extra installs django>=5.2")
pytest.importorskip("pytest_django", reason="the test extra installs pytest-django")

PROJECT = Path(__file__).parent / "projects" / "django_site"
SRC = str(Path(__file__).parents[1] / "src")
CONFTEST = "from pgwarden.contrib.django_pytest import django_db_setup  # noqa: F401\n"
PYTEST_INI = "[pytest]\nDJANGO_SETTINGS_MODULE = site_cfg.settings\npython_files = tests.py\n"


@dataclass
class Site:
    path: Path
    policy: Path
    db: str
    owner: str
    app: str
    env: dict[str, str]
    admin_dsn: str

    def python(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=self.path, env=env or self.env, capture_output=True, text=True, timeout=300
        )

    def run_as_owner(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`pgwarden run --as owner -- python ARGS`: the command gets the owner's credentials only."""
        argv = ["-m", "pgwarden", "run", "-c", str(self.policy), "--dsn", self.admin_dsn, "--as", "owner", "--no-check"]
        return self.python(*argv, "--", sys.executable, *args)

    def db_conn(self, name: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(db_conninfo(self.admin_dsn, name or self.db), autocommit=True)


@pytest.fixture
def site(admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: Any, tmp_path: Path) -> Site:
    db = pg_cleanup.database(unique_name("djd"))
    for suffix in ("", "_gw0", "_gw1"):
        pg_cleanup.database(f"test_{db}{suffix}")
    owner, app = pg_cleanup.role(unique_name("djdowner")), pg_cleanup.role(unique_name("djdapp"))
    policy = write_policy(tmp_path / "pgwarden.toml", database=db, owner=owner, app=[app])
    secrets = {f"PGWARDEN_PASSWORD_{owner.upper()}": "owner-pw", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    path = tmp_path / "site"
    shutil.copytree(PROJECT, path, ignore=shutil.ignore_patterns("later", "__pycache__"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "DJANGO")) and k != "DATABASE_URL"},
        **secrets,
        "PGWARDEN_POLICY": str(policy),
        "PGWARDEN_DSN": admin_dsn,
        "PYTHONPATH": os.pathsep.join([SRC, str(path)]),
    }
    return Site(path, policy, db, owner, app, env, admin_dsn)


def _pytest(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return site.python("-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_django", *args)


def test_pytest_django_runs_the_project_tests_as_the_app_role(site: Site) -> None:
    """pytest-django ignores TEST_RUNNER: without pgwarden's fixture the app role cannot create the test
    database; with it (one import in conftest.py) the owner creates, migrates and hardens it and every
    test passes as the app role (DDL denied, fixtures loaded, TransactionTestCase flushes), in two xdist
    workers too."""
    (site.path / "pytest.ini").write_text(PYTEST_INI)
    bare = _pytest(site, "shop/tests.py", "-q", "-x")
    assert bare.returncode != 0 and "permission denied to create database" in bare.stdout + bare.stderr, bare.stdout

    (site.path / "conftest.py").write_text(CONFTEST)
    done = _pytest(site, "shop/tests.py", "-v")
    assert done.returncode == 0 and "7 passed" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]
    assert "test_ddl_is_denied PASSED" in done.stdout and "test_queries_run_as_the_app_role PASSED" in done.stdout
    with site.db_conn("postgres") as conn:  # dropped after the session
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [f"test_{site.db}"]).fetchone() is None

    kept = _pytest(site, "shop/tests.py", "-q", "--reuse-db", "-n", "2")
    assert kept.returncode == 0 and "7 passed" in kept.stdout, kept.stdout[-4000:] + kept.stderr[-2000:]
    with site.db_conn(f"test_{site.db}_gw0") as conn:  # a worker's database: the owner's, hardened
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
        assert owners == [(site.owner,)]
        held = (
            "SELECT has_table_privilege(%s, 'django_migrations', 'UPDATE'),"
            " has_database_privilege(%s, current_database(), 'CREATE')"
        )
        assert conn.execute(held, [site.app, site.app]).fetchone() == (False, False)


def test_run_as_owner_manage_py_test_says_what_to_do(site: Site) -> None:
    """`pgwarden run --as owner -- manage.py test` hands the command the owner's password only; the
    TestRunner needs the app's too: one error line and one hint line, exit 2, no traceback, nothing left."""
    done = site.run_as_owner("manage.py", "test", "shop", "--noinput")
    out = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in out, out[-4000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(lines) == 2, out
    assert lines[0].startswith("error:") and f"PGWARDEN_PASSWORD_{site.app.upper()}" in lines[0], lines
    assert lines[1].startswith("hint:") and "manage.py test" in lines[1], lines
    with site.db_conn("postgres") as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [f"test_{site.db}"]).fetchone() is None
    # run directly, with both passwords, the same tests pass as the app role
    direct = site.python("manage.py", "test", "shop", "--noinput")
    assert direct.returncode == 0 and "Ran 7 tests" in direct.stderr, direct.stderr[-3000:]


def test_loaddata_and_flush_run_as_the_owner(site: Site) -> None:
    """As the app role loaddata fails on the sequence reset (setval: UPDATE on the sequence) and flush
    on TRUNCATE; through `pgwarden run --as owner` both work, and the app's next row follows the fixture."""
    migrated = site.run_as_owner("manage.py", "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    with site.db_conn() as conn:  # created by this first migrate: the owner took the app's writes back at once
        may = (
            "SELECT has_table_privilege(%s, 'django_migrations', 'UPDATE'),"
            " has_table_privilege(%s, 'django_migrations', 'SELECT')"
        )
        assert conn.execute(may, [site.app, site.app]).fetchone() == (False, True)
    as_app = site.python("manage.py", "loaddata", "products")
    assert as_app.returncode != 0 and "permission denied for sequence" in as_app.stderr, as_app.stderr[-2000:]
    flush_app = site.python("manage.py", "flush", "--no-input")
    assert flush_app.returncode != 0 and "couldn't be flushed" in flush_app.stderr, flush_app.stderr[-2000:]

    loaded = site.run_as_owner("manage.py", "loaddata", "products")
    assert loaded.returncode == 0 and "Installed 1 object" in loaded.stdout, loaded.stdout + loaded.stderr
    script = (
        "import django; django.setup()\nfrom shop.models import Product\n"
        "from django.db import connection\nc = connection.cursor(); c.execute('SELECT current_user')\n"
        "print(c.fetchone()[0], Product.objects.create(name='next').pk)"
    )
    made = site.python("-c", script, env={**site.env, "DJANGO_SETTINGS_MODULE": "site_cfg.settings"})
    assert made.stdout.split() == [site.app, "42"], made.stdout + made.stderr[-2000:]

    flushed = site.run_as_owner("manage.py", "flush", "--no-input")
    assert flushed.returncode == 0, flushed.stderr[-2000:]
    with site.db_conn() as conn:
        assert conn.execute("SELECT count(*) FROM shop_product").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0  # flush keeps the history
