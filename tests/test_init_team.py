"""`init` for a team, on a real server: a NOLOGIN owner with a deploy login, groups and people
(`--group`, `--member`), `--append` of a database to an existing file, and `-c` like every command
(`-o` kept as its old name). What it writes applies, checks clean and probes clean."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli
from pgwarden.policy import password_env_for


def _login(dsn: str, db: str, role: str, password: str) -> psycopg.Connection[object]:
    conninfo = psycopg.conninfo.make_conninfo(db_conninfo(dsn, db), user=role)
    return psycopg.connect(conninfo, password=password, autocommit=True)  # type: ignore[return-value]


def test_a_nologin_owner_with_a_deploy_login_groups_and_people_apply_and_prove(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    owner, deploy, app, analysts, alice = (
        pg_cleanup.role(unique_name(k)) for k in ("owner", "deploy", "app", "analysts", "alice")
    )
    db, billing = pg_cleanup.database(unique_name("db")), pg_cleanup.database(unique_name("billing"))
    path = tmp_path / "team.toml"
    args = ["init", "-c", str(path), "--database", db, "--owner", owner, "--deploy-login", deploy, "--app", app]
    args += ["--group", f"{analysts}:readonly", "--member", f"{alice}:{analysts}"]
    result = run_cli(args)
    assert result.exit_code == 0, str(result)
    for role in (deploy, app, alice):
        assert password_env_for(role) in result.stderr
    assert password_env_for(owner) not in result.stderr  # the owner never logs in
    env = {password_env_for(r): f"{r}-pw" for r in (deploy, app, alice)}

    def cli(*more: str) -> int:
        out = run_cli([*more, "-c", str(path), "--dsn", admin_dsn], env=env)
        assert "Traceback" not in out.stderr, str(out)
        return out.exit_code

    assert cli("apply", "--yes") == 0
    assert cli("check") == 0 and cli("probe", "--login") == 0
    with psycopg.connect(admin_dsn) as conn:
        row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (owner,)).fetchone()
    assert row == (False,)
    # the migration runs through the deploy login, as the owner
    with _login(admin_dsn, db, deploy, f"{deploy}-pw") as conn:
        conn.execute("CREATE TABLE public.orders (id int)")
        owned = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'").fetchone()
    assert owned == (owner,)
    assert cli("apply", "--yes") == 0
    with _login(admin_dsn, db, alice, f"{alice}-pw") as conn:  # alice reads through her group, nothing more
        conn.execute("SELECT * FROM public.orders")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("INSERT INTO public.orders VALUES (1)")

    # --append: a second database in the same file, the file as it was kept above it
    before = path.read_text()
    result = run_cli(["init", "--append", "-c", str(path), "--database", billing, "--group", f"{analysts}:readonly"])
    assert result.exit_code == 0, str(result)
    assert path.read_text().startswith(before.rstrip("\n"))
    assert cli("apply", "--yes", "-d", billing) == 0 and cli("check") == 0
    with psycopg.connect(db_conninfo(admin_dsn, billing)) as conn:
        query = sql.SQL(
            "SELECT has_schema_privilege({}, 'public', 'USAGE'), has_schema_privilege({}, 'public', 'CREATE')"
        )
        assert conn.execute(query.format(sql.Literal(alice), sql.Literal(alice))).fetchone() == (True, False)


def test_init_takes_c_like_every_command_and_o_as_its_old_name(tmp_path: Path) -> None:
    base = ["init", "--database", "d", "--owner", "o", "--app", "a"]
    assert run_cli([*base, "-c", str(tmp_path / "c.toml")]).exit_code == 0 and (tmp_path / "c.toml").exists()
    assert run_cli([*base, "-o", str(tmp_path / "o.toml")]).exit_code == 0 and (tmp_path / "o.toml").exists()
    result = run_cli([*base, "-c", str(tmp_path / "x.toml"), "-o", str(tmp_path / "y.toml")])
    assert result.exit_code == 2 and "hint: " in result.stderr
    assert not (tmp_path / "x.toml").exists() and not (tmp_path / "y.toml").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--group", "analysts:readwrte"], "unknown profile 'readwrte'"),
        (["--group", "analysts"], "NAME:PROFILE"),
        (["--member", "alice:nogroup"], "nogroup"),
    ],
)
def test_bad_group_and_member_arguments_are_one_error(tmp_path: Path, extra: list[str], needle: str) -> None:
    path = tmp_path / "p.toml"
    result = run_cli(["init", "-c", str(path), "--database", "d", "--owner", "o", "--app", "a", *extra])
    assert result.exit_code == 2, str(result)
    assert needle in result.stderr and "hint: " in result.stderr and not path.exists()


def test_append_refuses_a_database_the_file_has_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    assert run_cli(["init", "-c", str(path), "--database", "d", "--owner", "o", "--app", "a"]).exit_code == 0
    text = path.read_text()
    again = run_cli(["init", "--append", "-c", str(path), "--database", "d", "--app", "b"])
    assert again.exit_code == 2 and "already in" in again.stderr and path.read_text() == text
    missing = run_cli(["init", "--append", "-c", str(tmp_path / "none.toml"), "--database", "e", "--app", "b"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
