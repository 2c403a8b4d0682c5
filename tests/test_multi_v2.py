"""Several databases in one version 2 file: every command works on all of them, -d selects among them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, run_cli
from pgwarden.errors import PolicyError
from pgwarden.multi import select_in_file
from pgwarden.policy import parse_policies
from test_json_schemas import _valid, _valid_multi


def v2_file(dbs: list[str], owner: str, app: str, group: str, person: str) -> str:
    """Three databases with different grants; one owner, an app login, a group and a person in it."""
    return f"""\
version = 2

[owner]
name = "{owner}"
login = false

[[roles]]
name = "{app}"
password_env = "PGWARDEN_PASSWORD_{app.upper()}"

[[roles]]
name = "{group}"
login = false

[[roles]]
name = "{person}"
password_env = "PGWARDEN_PASSWORD_{person.upper()}"
member_of = ["{group}"]

[[databases]]
name = "{dbs[0]}"
schemas = ["public", "sales"]
grants = [
  {{ role = "{app}", profile = "readwrite", schemas = ["public", "sales"] }},
  {{ role = "{group}", profile = "readonly", schemas = ["sales"] }},
]

[[databases]]
name = "{dbs[1]}"
grants = [{{ role = "{app}", profile = "readonly", schemas = ["public"] }}]

[[databases]]
name = "{dbs[2]}"
grants = [{{ role = "{group}", profile = "append", schemas = ["public"] }}]
"""


PURE = v2_file(["shop", "shop_eu", "audit"], "own", "app", "analysts", "alice")


def test_select_in_file_names_globs_and_unknown_names() -> None:
    policies = parse_policies(PURE)
    assert list(select_in_file(policies, None, ())) == ["shop", "shop_eu", "audit"]
    assert list(select_in_file(policies, None, ("audit",))) == ["audit"]
    # a glob matches the file's names, never the cluster's (no connection is made: dsn None)
    assert list(select_in_file(policies, None, ("shop*",))) == ["shop", "shop_eu"]
    assert list(select_in_file(policies, None, ("audit", "shop", "sh?p"))) == ["shop", "audit"]
    with pytest.raises(PolicyError) as exc:
        select_in_file(policies, None, ("billing",), source="p.toml")
    assert "'billing' is not a database of p.toml (it lists shop, shop_eu, audit)" in exc.value.message
    assert exc.value.hint and "shop, shop_eu, audit" in exc.value.hint
    with pytest.raises(PolicyError, match="matches none of the databases"):
        select_in_file(policies, None, ("tenant_*",))


def test_unknown_database_is_one_error_before_connecting(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(PURE)
    for command in ("plan", "check", "probe", "apply --yes", "report", "adopt --from x", "run"):
        args = [*command.split(), "-c", str(cfg), "-d", "billing", "--dsn", "host=127.0.0.1 port=1"]
        result = run_cli(args + (["--", "true"] if command == "run" else []))
        assert result.exit_code == 2, (command, result)
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error: --database 'billing' is not a database of"), (command, result)
        assert lines[1] == (
            "hint: give one of shop, shop_eu, audit, or add a [[databases]] table named 'billing' to the file"
        )


@pytest.fixture
def three(tmp_path: Path, unique_name: Any, pg_cleanup: Any) -> tuple[Path, list[str], dict[str, str]]:
    """A version 2 file with three databases (not created yet) and four roles (not created yet)."""
    dbs = [pg_cleanup.database(unique_name(f"db{i}")) for i in range(3)]
    names = {k: pg_cleanup.role(unique_name(k)) for k in ("own", "app", "grp", "who")}
    cfg = tmp_path / "p.toml"
    cfg.write_text(v2_file(dbs, names["own"], names["app"], names["grp"], names["who"]))
    return cfg, dbs, names


def test_three_databases_apply_in_parallel_creates_each_role_once(
    three: tuple[Path, list[str], dict[str, str]], admin_dsn: str, admin_conn: Any
) -> None:
    cfg, dbs, names = three
    env = {
        "PGWARDEN_DSN": admin_dsn,
        f"PGWARDEN_PASSWORD_{names['app'].upper()}": "app-secret-1",
        f"PGWARDEN_PASSWORD_{names['who'].upper()}": "who-secret-1",
    }

    pending = run_cli(["plan", "-c", str(cfg), "--exit-code", "--format", "json"], env)
    assert pending.exit_code == 1, pending
    planned = pending.json()["databases"]
    assert [d["database"] for d in planned] == sorted(dbs)
    to_create = [{s["role"] for s in d["steps"] if s["action"] == "create-role"} for d in planned]
    # each database's plan, made alone, creates the cluster's roles
    assert to_create[0] == to_create[1] == to_create[2] == {names[k] for k in ("own", "app", "grp", "who")}

    applied = run_cli(["apply", "-c", str(cfg), "-j", "3", "--yes", "--format", "json"], env)
    assert applied.exit_code == 0, applied
    envelope = applied.json()
    assert [d["database"] for d in envelope["databases"]] == sorted(dbs)
    assert all("error" not in d for d in envelope["databases"]), envelope
    created = Counter(s["role"] for d in envelope["databases"] for s in d["executed"] if s["action"] == "create-role")
    # every role is created by exactly one of the three parallel runs, and none of them failed for it
    assert created == Counter(to_create[0]), created
    owners = dict(
        admin_conn.execute(
            "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = ANY(%s)", (dbs,)
        ).fetchall()
    )
    assert owners == {db: names["own"] for db in dbs}

    # applying one database does not undo what the others need (roles are shared): all stay clean
    clean = run_cli(["plan", "-c", str(cfg), "--exit-code"], env)
    assert clean.exit_code == 0, clean
    assert "3 database(s): 0 with changes" in clean.stderr
    checked = run_cli(["check", "-c", str(cfg), "--format", "json"], env)
    assert checked.exit_code == 0, checked.stdout
    assert checked.json()["summary"]["databases"] == 3
    probed = run_cli(["probe", "-c", str(cfg), "-d", dbs[1], "--format", "json"], env)
    assert probed.exit_code == 0, probed
    assert probed.json()["database"] == dbs[1]


def test_adopt_report_and_run_on_several_databases(
    three: tuple[Path, list[str], dict[str, str]],
    tmp_path: Path,
    admin_dsn: str,
    admin_conn: Any,
    unique_name: Any,
    pg_cleanup: Any,
) -> None:
    cfg, dbs, names = three
    secret = "app-secret-2"
    env = {"PGWARDEN_DSN": admin_dsn, f"PGWARDEN_PASSWORD_{names['app'].upper()}": secret}
    legacy = pg_cleanup.role(unique_name("legacy"))
    admin_conn.execute(f'CREATE ROLE "{legacy}"')
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}" OWNER "{legacy}"')
        with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
            conn.execute(f'SET ROLE "{legacy}"; CREATE TABLE public.t (id int); RESET ROLE')

    dry = run_cli(["adopt", "-c", str(cfg), "--from", legacy, "--format", "json"], env)
    assert dry.exit_code == 0, dry
    assert [d["database"] for d in dry.json()["databases"]] == sorted(dbs)
    assert all(d["dry_run"] and d["objects"] for d in dry.json()["databases"]), dry.stdout
    _valid_multi("adopt", dry.json())
    assert _table_owners(admin_dsn, dbs) == {db: legacy for db in dbs}  # a dry run changes nothing

    # the policy's roles do not exist yet: adopt creates them once, then adopts the three at once
    done = run_cli(["adopt", "-c", str(cfg), "--from", legacy, "-j", "3", "--yes", "--format", "json"], env)
    assert done.exit_code == 0, done
    assert done.json()["summary"] == {"databases": 3, "moved": 6, "errors": 0}  # a database and a table each
    _valid_multi("adopt", done.json())
    assert _table_owners(admin_dsn, dbs) == {db: names["own"] for db in dbs}

    applied = run_cli(["apply", "-c", str(cfg), "--yes"], env)
    assert applied.exit_code == 0, applied
    report = run_cli(["report", "-c", str(cfg), "--format", "json"], env)
    assert report.exit_code == 0, report
    # each database reported with its own part of the file (its schemas), in one envelope
    schemas = {d["database"]: d["schemas"] for d in report.json()["databases"]}
    assert schemas == {dbs[0]: ["public", "sales"], dbs[1]: ["public"], dbs[2]: ["public"]}
    assert report.json()["summary"]["databases"] == 3
    # the envelope only: report.json does not know v2's level "no grant" yet (a role without grant here)
    _valid("multi", report.json())
    one = run_cli(["report", "-c", str(cfg), "-d", dbs[2], "--format", "markdown"], env)
    text = one.stdout.replace("\\", "")  # Markdown escapes the underscores of the names (issue 22)
    assert one.exit_code == 0 and dbs[2] in text and dbs[0] not in text, one
    page = run_cli(["report", "-c", str(cfg), "--format", "html"], env)
    assert page.exit_code == 2 and "choose one with -d NAME" in page.stderr, page

    # one migration command, one database: several selected is refused before anything runs
    marker = tmp_path / "ran"
    cmd = ["--", "sh", "-c", f'echo "$PGUSER $PGDATABASE" > {marker}']
    refused = run_cli(["run", "-c", str(cfg), "--as", names["app"], *cmd], env)
    assert refused.exit_code == 2 and "3 are selected" in refused.stderr, refused
    assert not marker.exists()
    ran = run_cli(["run", "-c", str(cfg), "-d", dbs[1], "--as", names["app"], "--no-check", *cmd], env)
    assert ran.exit_code == 0, ran
    assert marker.read_text().split() == [names["app"], dbs[1]]


def _table_owners(admin_dsn: str, dbs: list[str]) -> dict[str, str]:
    owners = {}
    for db in dbs:
        with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
            row = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 't'").fetchone()
            assert row is not None
            owners[db] = row[0]
    return owners


def test_applying_the_next_database_is_not_a_change_outside_pgwarden_of_the_first(
    three: tuple[Path, list[str], dict[str, str]], admin_dsn: str
) -> None:
    """One apply over the file's databases, one after the other: each database's own grants (CONNECT
    for its roles) change as its turn comes, after the databases before it recorded their state. A
    hand grant in the first database afterwards is reported as changed outside pgwarden, and only it:
    not the other databases' grants, which pgwarden itself changed (and recorded in their ledgers)."""
    cfg, dbs, names = three
    env = {
        "PGWARDEN_DSN": admin_dsn,
        f"PGWARDEN_PASSWORD_{names['app'].upper()}": "app-secret-1",
        f"PGWARDEN_PASSWORD_{names['who'].upper()}": "who-secret-1",
    }
    applied = run_cli(["apply", "-c", str(cfg), "-j", "1", "--yes"], env)
    assert applied.exit_code == 0, applied
    first = sorted(dbs)[0]
    with psycopg.connect(db_conninfo(admin_dsn, first), autocommit=True) as conn:
        conn.execute(f'CREATE TABLE sales.hand (id int); ALTER TABLE sales.hand OWNER TO "{names["own"]}"')
        conn.execute(f'GRANT TRUNCATE ON sales.hand TO "{names["app"]}"')
    checked = run_cli(["check", "-c", str(cfg), "-d", first, "--format", "json"], env)
    assert checked.exit_code == 1, checked
    outside = checked.json()["outside_pgwarden"]
    assert outside["changed"] == ["objects:sales:table"], outside
    assert "tables of schema sales" in outside["message"] and " on database" not in outside["message"], outside
