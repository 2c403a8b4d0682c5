"""The pytest plugin and the Django helpers work on the database they are told of, not the file's first one."""

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

from pgwarden.contrib.django_db import database_settings
from pgwarden.contrib.pytest_plugin import _base_policy
from pgwarden.errors import PolicyError
from pgwarden.multi import policy_named
from pgwarden.policy import build_policy, load_policies, password_env_for

#: Two databases: in shop the app writes; in audit only the auditor does (the app reads). What
#: "runtime" means depends on the database: the proof that the right entry was taken.
TWO = """\
version = 2

[owner]
name = "own"

[[roles]]
name = "app"
password_env = "PGWARDEN_PASSWORD_APP"

[[roles]]
name = "auditor"
password_env = "PGWARDEN_PASSWORD_AUDITOR"

[[databases]]
name = "shop"
grants = [{ role = "app", profile = "readwrite", schemas = ["public"] }]

[[databases]]
name = "audit_*"
grants = [
  { role = "app", profile = "readonly", schemas = ["public"] },
  { role = "auditor", profile = "readwrite", schemas = ["public"] },
]
"""


def _file(tmp_path: Path, text: str = TWO) -> Path:
    path = tmp_path / "pgwarden.toml"
    path.write_text(text)
    return path


def test_policy_named_takes_the_entry_listing_or_covering_the_name(tmp_path: Path) -> None:
    loaded = load_policies(_file(tmp_path))
    assert policy_named(loaded, "shop").database.name == "shop"
    covered = policy_named(loaded, "audit_2025")
    assert covered.database.name == "audit_2025"
    assert {g.role for g in covered.grants()} == {"app", "auditor"}
    for name, message in (
        (None, "the policy file covers several databases (shop, audit_*): which one?"),
        ("crm", "database 'crm' is not a database of the policy file (it lists shop, audit_*)"),
    ):
        with pytest.raises(PolicyError) as caught:
            policy_named(loaded, name)
        assert caught.value.message.startswith(message) and caught.value.hint


def test_django_settings_name_the_database_of_pgdatabase_or_the_argument(tmp_path: Path) -> None:
    path = _file(tmp_path)
    env = {"PGWARDEN_PASSWORD_APP": "a", "PGWARDEN_PASSWORD_AUDITOR": "b"}
    shop = database_settings(path, environ={**env, "PGDATABASE": "shop"})
    assert (shop["NAME"], shop["USER"], shop["PASSWORD"]) == ("shop", "app", "a")
    # `pgwarden run -d audit_2025` sets PGDATABASE: the tenant's database, and its runtime role
    audit = database_settings(path, environ={**env, "PGDATABASE": "audit_2025"})
    assert (audit["NAME"], audit["USER"], audit["PASSWORD"]) == ("audit_2025", "auditor", "b")
    given = database_settings(path, environ=env, database="audit_1")
    assert (given["NAME"], given["USER"]) == ("audit_1", "auditor")
    with pytest.raises(PolicyError) as caught:
        database_settings(path, environ=env)  # several databases and no name: never the first by default
    assert "which one?" in caught.value.message
    # a file of one database keeps naming it, whatever PGDATABASE says
    single = tmp_path / "single.toml"
    single.write_text(build_policy(database="shopdb", owner="o", app=["a"]).to_toml())
    assert database_settings(single, environ={"PGDATABASE": "other"})["NAME"] == "shopdb"


def test_pytest_plugin_copies_the_database_named_or_the_connections(tmp_path: Path) -> None:
    path = _file(tmp_path)
    assert _base_policy(path, "audit_x", None).database.name == "audit_x"
    assert _base_policy(path, None, "host=h dbname=shop").database.name == "shop"  # the admin connection's
    with pytest.raises(PolicyError) as caught:
        _base_policy(path, None, "host=h dbname=postgres")
    assert "which one?" in caught.value.message
    assert caught.value.hint == "name it with pgwarden_database in the pytest ini (or --pgwarden-database NAME)"


pytest.importorskip("alembic", reason="the test extra installs alembic and sqlalchemy")

PROJECT = Path(__file__).parent / "projects" / "sqla_app"


def test_pytest_plugin_with_a_glob_entry_makes_the_named_tenant_and_its_tests_pass(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    prefix = unique_name("plugt")
    owner, app, reader = (pg_cleanup.role(unique_name(k)) for k in ("plugowner", "plugapp", "plugro"))
    proj = tmp_path / "sqla_app"
    shutil.copytree(PROJECT, proj, ignore=shutil.ignore_patterns("__pycache__"))
    policy = build_policy(database=f"{prefix}_*", owner=owner, app=[app], readonly=[reader], version=2)
    (proj / "pgwarden.toml").write_text(policy.to_toml())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))},
        "PGWARDEN_DSN": admin_dsn,
        password_env_for(owner): "owner-pw",
        password_env_for(app): "app-pw",
        password_env_for(reader): "ro-pw",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    argv = [sys.executable, "-m", "pytest", "-p", "pgwarden", "-p", "no:cacheprovider", "-q", "tests"]
    tenant = f"{prefix}_main"
    proc = subprocess.run(
        [*argv, "--pgwarden-database", tenant], cwd=proj, env=env, capture_output=True, text=True, timeout=300
    )
    made = [r[0] for r in admin_conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{prefix}%"])]
    for name in made:
        pg_cleanup.database(name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout, proc.stdout
    assert made == []  # the throwaway database (<tenant>_test_...) was dropped
    # without a name (the admin connection names postgres): an error naming the setting, no database made
    unnamed = subprocess.run(argv, cwd=proj, env=env, capture_output=True, text=True, timeout=300)
    assert unnamed.returncode != 0
    assert "pgwarden_database" in unnamed.stdout + unnamed.stderr
    left = admin_conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", [f"{prefix}%"]).fetchone()
    assert left == (0,)
