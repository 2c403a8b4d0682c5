"""pgwarden's pytest plugin: a sample Alembic + SQLAlchemy project's tests pass as the app role."""

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

from helpers import write_policy
from pgwarden.policy import password_env_for

pytest.importorskip("alembic", reason="the test extra installs alembic and sqlalchemy")

PROJECT = Path(__file__).parent / "projects" / "sqla_app"


def test_sample_project_tests_pass_as_the_app_role(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    db = unique_name("plugdb")
    owner = pg_cleanup.role(unique_name("plugowner"))
    app = pg_cleanup.role(unique_name("plugapp"))
    reader = pg_cleanup.role(unique_name("plugro"))
    proj = tmp_path / "sqla_app"
    shutil.copytree(PROJECT, proj, ignore=shutil.ignore_patterns("__pycache__"))
    write_policy(proj / "pgwarden.toml", database=db, owner=owner, app=[app], readonly=[reader])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))},
        "PGWARDEN_DSN": admin_dsn,
        password_env_for(owner): "owner-pw",
        password_env_for(app): "app-pw",
        password_env_for(reader): "ro-pw",
        # the plugin's pgwarden_migrate runs `alembic` from this environment
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # -p pgwarden works with or without plugin autoloading (the entry point is named pgwarden)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "pgwarden", "-p", "no:cacheprovider", "-q", "tests"],
        cwd=proj,
        env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    leftover = [
        r[0] for r in admin_conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{db}_test_%"])
    ]
    for name in leftover:
        pg_cleanup.database(name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout, proc.stdout
    assert leftover == [], "the throwaway database was not dropped"
