"""Upgraded clusters: pg_upgrade from 14 keeps an open `public`; pgwarden finds it in the catalogs, closes it."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import binaries_for
from helpers import CliResult, run_cli, write_policy
from pgwarden.server import LocalServer, PgBinaries


def run_as_server_user(server: LocalServer, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the OS user the server runs as (root cannot), in its base directory."""
    kwargs: dict[str, Any] = {}
    user = server._os_user  # the same account LocalServer uses for initdb/pg_ctl
    if user is not None:
        kwargs.update(user=user.uid, group=user.gid, extra_groups=[])
    return subprocess.run(
        args,
        cwd=str(server.base_dir),
        env={**server._env(), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def public_acl(conninfo: str) -> tuple[str, str]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(nspowner), COALESCE(nspacl::text, '') FROM pg_namespace WHERE nspname = 'public'"
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def public_can_create(conninfo: str) -> bool:
    """Does PUBLIC hold CREATE on schema public (an ACL item `=...C.../grantor`)?"""
    _, acl = public_acl(conninfo)
    return any(item.startswith("=") and "C" in item.split("/")[0] for item in acl.strip("{}").split(",") if item)


@pytest.fixture
def upgraded(pg_binaries: PgBinaries, tmp_path: Path) -> Iterator[LocalServer]:
    """A 14 cluster with a database, upgraded with pg_upgrade to the version under test, started."""
    target = pg_binaries.version
    if target < 15:
        pytest.skip("pg_upgrade from 14 needs a 15+ target")
    password = secrets.token_urlsafe(16)
    old = LocalServer(binaries_for(14), password=password)
    new = LocalServer(pg_binaries, password=password)
    try:
        old.start()
        with psycopg.connect(old.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE before_upgrade")
        old.stop()
        new.start()  # initdb with the same superuser, encoding and locale, then stop: pg_upgrade wants it empty
        new.stop()
        if target >= 18:  # initdb turns data checksums on from 18; the 14 cluster has none
            proc = run_as_server_user(new, [str(new._bindir / "pg_checksums"), "--disable", "-D", str(new.datadir)], {})
            assert proc.returncode == 0, proc.stdout + proc.stderr
        proc = run_as_server_user(
            new,
            [
                str(new._bindir / "pg_upgrade"),
                "-b",
                str(old._bindir),
                "-B",
                str(new._bindir),
                "-d",
                str(old.datadir),
                "-D",
                str(new.datadir),
                "-U",
                new.superuser,
            ],
            {"PGPASSWORD": password},
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        new.start()
        yield new
    finally:
        new.cleanup()
        old.cleanup()


def _cli(args: list[str]) -> CliResult:
    result = run_cli(args)
    assert "Traceback" not in result.stderr, str(result)
    return result


@pytest.mark.minversion(15)  # about 5 s: initdb twice and pg_upgrade, so it runs on every 15+ version
def test_upgraded_cluster_open_public_found_and_closed(upgraded: LocalServer, tmp_path: Path) -> None:
    admin = upgraded.conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        version = conn.info.server_version
        # a database created after the upgrade is copied from template1, which kept the old public
        conn.execute("CREATE DATABASE after_upgrade")
        for role in ("upg_owner", "upg_app"):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    assert version >= 150000
    figures = []
    for db in ("before_upgrade", "after_upgrade"):
        target = upgraded.conninfo(db)
        assert public_can_create(target), f"{db}: expected the open public kept by pg_upgrade: {public_acl(target)}"
        path = write_policy(tmp_path / f"{db}.toml", database=db, owner="upg_owner", app=["upg_app"])
        plan = _cli(["plan", "--format", "json", "-c", str(path), "--dsn", admin])
        assert plan.exit_code == 0, str(plan)
        public_steps = [
            s
            for s in plan.json()["steps"]
            if 'SCHEMA "public"' in s["sql"]
            and "PUBLIC" in s["sql"]
            and s["sql"].startswith("REVOKE")
            and "CREATE" in s["sql"]
        ]
        assert public_steps, f"{db}: plan on PostgreSQL {version // 10000} did not revoke CREATE on public: {plan}"
        result = _cli(["apply", "--yes", "-c", str(path), "--dsn", admin])
        assert result.exit_code == 0, str(result)
        assert not public_can_create(target), public_acl(target)
        clean = _cli(["plan", "--exit-code", "-c", str(path), "--dsn", admin])
        assert clean.exit_code == 0, str(clean)
        figures.append(f"{db}: {public_steps[0]['sql']}")
    print(f"\nupgrade 14 -> {version // 10000}: " + "; ".join(figures))
