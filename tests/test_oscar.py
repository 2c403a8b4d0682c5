"""A django-oscar 4 shop (tests/projects/oscar_site) tested as the app role, by Django's runner and by pytest-django."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import run_cli, write_policy
from pgwarden.policy import build_policy
from pgwarden.policy.refresh import RefreshSpec

pytest.importorskip("oscar", reason="pip install django-oscar (docs/django.md: the oscar test)")
pytest.importorskip("pytest_django", reason="the test extra installs pytest-django")

PROJECT = Path(__file__).parent / "projects" / "oscar_site"
SRC = str(Path(__file__).parents[1] / "src")
TESTS = 14  # storefront/tests.py


@pytest.fixture
def shop(
    admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: Any, tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    db = pg_cleanup.database(unique_name("oscar"))
    pg_cleanup.database(f"test_{db}")
    owner, app = pg_cleanup.role(unique_name("oscarowner")), pg_cleanup.role(unique_name("oscarapp"))
    # oscar refreshes a materialized view when a product's categories change: the policy says the app
    # may (MAINTAIN on 17); a migration creates the view, so it is `expected` until then
    built = build_policy(database=db, owner=owner, app=[app], version=2)
    view = "public.catalogue_product_category_hierarchy"
    database = built.database.model_copy(
        update={"refresh": (RefreshSpec(role=app, views=(view,)),), "expected": (view,)}
    )
    policy = write_policy(
        tmp_path / "pgwarden.toml", built.model_copy(update={"database": database, "databases": (database,)})
    )
    secrets = {f"PGWARDEN_PASSWORD_{owner.upper()}": "owner-pw", f"PGWARDEN_PASSWORD_{app.upper()}": "app-pw"}
    assert run_cli(["apply", "-c", str(policy), "--dsn", admin_dsn, "--yes"], env=secrets).exit_code == 0
    site = tmp_path / "shop"
    shutil.copytree(PROJECT, site, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "DJANGO")) and k != "DATABASE_URL"},
        **secrets,
        "PGWARDEN_POLICY": str(policy),
        "PGWARDEN_DSN": admin_dsn,
        "PYTHONPATH": os.pathsep.join([SRC, str(site)]),
        "OSCAR_MATVIEW": "1",  # oscar's materialized view, refreshed by the app role (the policy's `refresh`)
    }
    return site, env


def _run(site: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=site, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.minversion(17)
@pytest.mark.maxversion(17)  # one version: migrating oscar takes a while (the issue: PostgreSQL 17 only)
@pytest.mark.slow
def test_oscar_shop_tests_pass_as_the_app_role_under_django_and_pytest_django(
    shop: tuple[Path, dict[str, str]],
) -> None:
    site, env = shop
    # the owner creates and migrates the test database once (--keepdb); pytest-django reuses it (--reuse-db)
    django_run = _run(site, env, "manage.py", "test", "storefront", "--noinput", "--keepdb")
    assert django_run.returncode == 0, django_run.stderr[-5000:]
    assert f"Ran {TESTS} tests" in django_run.stderr and "OK" in django_run.stderr, django_run.stderr[-3000:]

    (site / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = oscar_cfg.settings\npython_files = tests.py\n")
    (site / "conftest.py").write_text("from pgwarden.contrib.django_pytest import django_db_setup  # noqa: F401\n")
    py = _run(
        site,
        env,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_django",
        "--reuse-db",
        "storefront/tests.py",
    )
    assert py.returncode == 0 and re.search(rf"\b{TESTS} passed", py.stdout), py.stdout[-5000:] + py.stderr[-2000:]
