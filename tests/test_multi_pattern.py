"""A version 2 [[databases]] entry whose name is a glob: every matching database of the cluster, -d among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from helpers import db_conninfo, role_conninfo, run_cli


def _file(entries: list[str], owner: str, deploy: str, app: str, settings_key: str) -> str:
    """The roles, then one [[databases]] table per name in `entries`, all alike."""
    tables = "".join(
        f"""
[[databases]]
name = "{name}"
grants = [{{ role = "{app}", profile = "readwrite", schemas = ["public"] }}]
"""
        for name in entries
    )
    return f"""\
version = 2

[owner]
name = "{owner}"
login = false
deploy_logins = ["{deploy}"]

[[roles]]
name = "{app}"
password_env = "PGWARDEN_PASSWORD_{app.upper()}"
database_settings = {{ "{settings_key}" = {{ work_mem = "7MB" }} }}
{tables}"""


def _sqls(doc: dict[str, Any]) -> list[str]:
    """Every statement of a plan document (single or one per database)."""
    plans = doc["databases"] if "databases" in doc else [doc]
    return [s["sql"] for p in plans for s in p["steps"]]


def test_one_glob_entry_covers_every_tenant_and_d_selects_one(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    prefix = unique_name("tn")
    pattern = f"{prefix}_*"
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in (1, 2, 3)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    owner, deploy, app = (pg_cleanup.role(unique_name(k)) for k in ("own", "dep", "app"))
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file([pattern], owner, deploy, app, pattern))
    env = {
        "PGWARDEN_DSN": admin_dsn,
        f"PGWARDEN_PASSWORD_{app.upper()}": "app-secret-1",
        f"PGWARDEN_PASSWORD_{deploy.upper()}": "deploy-secret-1",
    }

    planned = run_cli(["plan", "-c", str(cfg), "--format", "json", "--exit-code"], env)
    assert planned.exit_code == 1, planned
    assert [d["database"] for d in planned.json()["databases"]] == dbs
    assert not [s for s in _sqls(planned.json()) if "CREATE DATABASE" in s], planned.stdout  # never the pattern
    one = run_cli(["plan", "-c", str(cfg), "-d", dbs[1], "--format", "json"], env)
    assert one.exit_code == 0 and one.json()["database"] == dbs[1], one

    # -d NAME works on that tenant only: the others keep their drift
    applied = run_cli(["apply", "-c", str(cfg), "-d", dbs[1], "--yes"], env)
    assert applied.exit_code == 0, applied
    assert run_cli(["check", "-c", str(cfg), "-d", dbs[1]], env).exit_code == 0
    assert run_cli(["plan", "-c", str(cfg), "-d", dbs[0], "--exit-code"], env).exit_code == 1
    owners = dict(admin_conn.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database").fetchall())
    assert [owners[db] == owner for db in dbs] == [False, True, False]

    applied = run_cli(["apply", "-c", str(cfg), "-j", "3", "--yes"], env)
    assert applied.exit_code == 0, applied
    assert run_cli(["plan", "-c", str(cfg), "--exit-code"], env).exit_code == 0
    # each tenant's check sees the other tenants' CONNECT for the deploy login as the file's design
    checked = run_cli(["check", "-c", str(cfg), "-j", "2", "--format", "json"], env)
    assert checked.exit_code == 0, checked.stdout
    assert checked.json()["summary"]["databases"] == 3
    probed = run_cli(["probe", "-c", str(cfg), "--format", "json"], env)
    assert probed.exit_code == 0, probed
    assert [d["database"] for d in probed.json()["databases"]] == dbs
    reported = run_cli(["report", "-c", str(cfg), "-d", f"{prefix}_[23]", "--format", "json"], env)
    assert reported.exit_code == 0 and [d["database"] for d in reported.json()["databases"]] == dbs[1:], reported

    for db in dbs:
        # the split holds in every tenant: the owner (through the deploy login) creates, the app writes rows
        with psycopg.connect(role_conninfo(admin_dsn, deploy, "deploy-secret-1", db), autocommit=True) as conn:
            conn.execute("CREATE TABLE public.t (id int)")
        with psycopg.connect(role_conninfo(admin_dsn, app, "app-secret-1", db), autocommit=True) as conn:
            conn.execute("INSERT INTO public.t VALUES (1)")
            assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)  # database_settings under the pattern

    # a new tenant is covered as soon as it exists: plan shows its drift, nothing else
    new = pg_cleanup.database(f"{prefix}_4")
    admin_conn.execute(f'CREATE DATABASE "{new}"')
    again = run_cli(["plan", "-c", str(cfg), "--format", "json", "--exit-code"], env)
    assert again.exit_code == 1, again
    pending = [d["database"] for d in again.json()["databases"] if d["steps"]]
    assert pending == [new], again.stdout


def test_pattern_matching_nothing_overlaps_and_d_without_match_are_errors(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    prefix = unique_name("tn")
    owner, deploy, app = (pg_cleanup.role(unique_name(k)) for k in ("own", "dep", "app"))
    env = {"PGWARDEN_DSN": admin_dsn}
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file([f"{prefix}_*"], owner, deploy, app, f"{prefix}_*"))

    # no tenant yet: every command says so (exit 2) and creates nothing, not even a database named "tn_*"
    for command in ("plan", "check", "probe", "apply --yes", "report"):
        result = run_cli([*command.split(), "-c", str(cfg)], env)
        assert result.exit_code == 2, (command, result)
        error, hint = result.stderr.splitlines()[-2:]
        assert error == (
            f"error: [[databases]] '{prefix}_*' of {cfg} matches no database of the cluster (a pattern never "
            "creates one)"
        ), (command, result.stderr)
        assert hint.startswith("hint: create the databases first"), result.stderr
    made = admin_conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)).fetchone()
    assert made == (0,)
    rolled = admin_conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", ([owner, app],)).fetchone()
    assert rolled == (0,)

    # beside a plain entry, the empty pattern does not stop work on the plain one when -d selects it
    plain_db = pg_cleanup.database(unique_name("plain"))
    both = tmp_path / "both.toml"
    both.write_text(_file([plain_db, f"{prefix}_*"], owner, deploy, app, f"{prefix}_*"))
    only = run_cli(["plan", "-c", str(both), "-d", plain_db, "--format", "json"], env)
    assert only.exit_code == 0 and only.json()["database"] == plain_db, only
    assert f'CREATE DATABASE "{plain_db}"' in "\n".join(_sqls(only.json()))  # a plain name is created
    assert run_cli(["plan", "-c", str(both)], env).exit_code == 2

    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in (1, 2)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    # -d with a pattern none of the file's databases match: an error, not a silent narrowing
    nomatch = run_cli(["check", "-c", str(cfg), "-d", "nomatch*"], env)
    assert nomatch.exit_code == 2, nomatch
    assert nomatch.stderr.splitlines()[0] == (
        f"error: --database 'nomatch*' matches none of the databases of {cfg} ({prefix}_* (2 matching))"
    )
    assert nomatch.stderr.splitlines()[1].startswith("hint: ")
    # a template or a database that refuses connections is never covered
    closed = pg_cleanup.database(f"{prefix}_closed")
    admin_conn.execute(f'CREATE DATABASE "{closed}" ALLOW_CONNECTIONS false')
    listed = run_cli(["plan", "-c", str(cfg), "--format", "json"], env)
    assert [d["database"] for d in listed.json()["databases"]] == dbs, listed

    # two entries covering one database: an error naming both, before anything runs
    cfg.write_text(_file([f"{prefix}_*", f"{prefix}_[12]"], owner, deploy, app, f"{prefix}_*"))
    twice = run_cli(["plan", "-c", str(cfg)], env)
    assert twice.exit_code == 2, twice
    assert twice.stderr.splitlines()[0] == (
        f"error: database '{dbs[0]}' is covered by two [[databases]] entries: '{prefix}_*' and '{prefix}_[12]' of {cfg}"
    )
    cfg.write_text(_file([dbs[1], f"{prefix}_*"], owner, deploy, app, f"{prefix}_*"))
    plain = run_cli(["check", "-c", str(cfg), "-d", dbs[0]], env)
    assert plain.exit_code == 2 and f"'{dbs[1]}' and '{prefix}_*'" in plain.stderr, plain


def test_run_needs_exactly_one_tenant(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    prefix = unique_name("tn")
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in (1, 2)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}"')
    owner, deploy, app = (pg_cleanup.role(unique_name(k)) for k in ("own", "dep", "app"))
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file([f"{prefix}_*"], owner, deploy, app, f"{prefix}_*"))
    env = {"PGWARDEN_DSN": admin_dsn, f"PGWARDEN_PASSWORD_{app.upper()}": "app-secret-1"}
    assert run_cli(["apply", "-c", str(cfg), "--yes"], env).exit_code == 0
    marker = tmp_path / "ran"
    cmd = ["--", "sh", "-c", f'echo "$PGDATABASE" > {marker}']
    refused = run_cli(["run", "-c", str(cfg), "--as", app, *cmd], env)
    assert refused.exit_code == 2 and "2 are selected" in refused.stderr, refused
    assert not marker.exists()
    ran = run_cli(["run", "-c", str(cfg), "-d", dbs[1], "--as", app, "--no-check", *cmd], env)
    assert ran.exit_code == 0, ran
    assert marker.read_text().strip() == dbs[1]


def test_upgraded_v1_file_plans_what_v1_with_d_pattern_planned_and_adopt_covers_the_tenants(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    prefix = unique_name("tn")
    owner, app, legacy = (pg_cleanup.role(unique_name(k)) for k in ("own", "app", "old"))
    admin_conn.execute(f'CREATE ROLE "{legacy}"')
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in (1, 2)]
    for db in dbs:
        admin_conn.execute(f'CREATE DATABASE "{db}" OWNER "{legacy}"')
        with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
            conn.execute(f'SET ROLE "{legacy}"; CREATE TABLE public.t (id int); RESET ROLE')
    v1 = tmp_path / "v1.toml"
    v1.write_text(
        f'version = 1\n\n[database]\nname = "{prefix}_template"\n\n[owner]\nname = "{owner}"\n\n'
        f'[[access]]\nname = "{app}"\nlevel = "readwrite"\npassword_env = "PGWARDEN_PASSWORD_{app.upper()}"\n'
    )
    env = {"PGWARDEN_DSN": admin_dsn, f"PGWARDEN_PASSWORD_{app.upper()}": "app-secret-1"}
    before = run_cli(["plan", "-c", str(v1), "-d", f"{prefix}_*", "--format", "json"], env)
    assert before.exit_code == 0, before
    v2 = tmp_path / "v2.toml"
    upgraded = run_cli(["policy", "upgrade", str(v1), "--databases", f"{prefix}_*", "-o", str(v2)])
    assert upgraded.exit_code == 0, upgraded
    after = run_cli(["plan", "-c", str(v2), "--format", "json"], env)
    assert after.exit_code == 0, after

    def steps(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
        return [(d["database"], [s["sql"] for s in d["steps"]]) for d in doc["databases"]]

    assert steps(after.json()) == steps(before.json())
    assert [db for db, sqls in steps(after.json()) if sqls] == dbs

    # adopt moves every tenant's objects from the legacy owner (a dry run lists them all)
    dry = run_cli(["adopt", "-c", str(v2), "--from", legacy, "--format", "json"], env)
    assert dry.exit_code == 0, dry
    assert [d["database"] for d in dry.json()["databases"]] == dbs
    assert all(d["dry_run"] and d["objects"] for d in dry.json()["databases"]), dry.stdout
    one = run_cli(["adopt", "-c", str(v2), "-d", dbs[0], "--from", legacy, "--yes", "--format", "json"], env)
    assert one.exit_code == 0, one
    owners = {}
    for db in dbs:
        with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
            owners[db] = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 't'").fetchone()
    assert owners == {dbs[0]: (owner,), dbs[1]: (legacy,)}
