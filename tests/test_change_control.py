"""Reviewed plans on real servers: `apply --plan` runs exactly the file's steps, or refuses and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import db_conninfo, run_cli
from test_atomicity import acl_snapshot
from test_core import Split, make_split
from test_json_schemas import schema
from test_multi_v2 import three  # noqa: F401 (a fixture)


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, schemas=("app",))


def _seeded(split: Split) -> None:
    """The split applied, then a table the owner does not own and a hand grant: a plan with steps."""
    split.apply()
    with split.admin_db() as conn:
        conn.execute("CREATE TABLE app.orders (id int)")
        conn.execute(sql.SQL("GRANT SELECT ON app.orders TO {}").format(sql.Identifier(split.readonly)))


def _plan_out(split: Split, path: Path) -> dict[str, Any]:
    result = split.cli("plan", "--out", str(path))
    assert result.exit_code == 0, str(result)
    assert "app.orders" in result.stdout  # the usual text as well
    assert f"apply --plan {path}" in result.stderr
    data: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema("planfile")).validate(data)
    return data


def _ledger(split: Split) -> list[tuple[Any, ...]]:
    with split.admin_db() as conn:
        if conn.execute("SELECT to_regclass('pgwarden_ledger.entries')").fetchone() == (None,):
            return []
        return conn.execute("SELECT id, action, outcome, steps FROM pgwarden_ledger.entries ORDER BY id").fetchall()


def test_plan_file_runs_exactly_its_steps_and_the_ledger_has_them(split: Split, tmp_path: Path) -> None:
    _seeded(split)
    data = _plan_out(split, tmp_path / "plan.json")
    (entry,) = data["databases"]
    planned = [(s["action"], s["object"], s["sql"]) for s in entry["plan"]["steps"]]
    assert planned and entry["database"] == split.database
    before = len(_ledger(split))

    result = split.cli("apply", "--plan", str(tmp_path / "plan.json"), "--format", "json")
    assert result.exit_code == 0, str(result)
    executed = [(s["action"], s["object"], s["sql"]) for s in result.json()["executed"]]
    assert executed == planned
    split.assert_clean()
    entries = _ledger(split)
    assert len(entries) == before + 1
    _, action, outcome, steps = entries[-1]
    assert (action, outcome) == ("apply", "committed")
    assert [(s["action"], s["object"], s["sql"]) for s in steps] == planned


def test_plan_file_refused_after_a_change_it_depends_on_and_nothing_changes(
    split: Split, tmp_path: Path, admin_dsn: str
) -> None:
    _seeded(split)
    _plan_out(split, tmp_path / "plan.json")
    with split.admin_db() as conn:  # by hand, after the review: another grant on the same schema
        conn.execute("CREATE TABLE app.invoices (id int)")
        conn.execute(sql.SQL("GRANT DELETE ON app.invoices TO {}").format(sql.Identifier(split.app)))
    before = acl_snapshot(db_conninfo(admin_dsn, split.database))
    entries = _ledger(split)

    result = split.cli("apply", "--plan", str(tmp_path / "plan.json"))
    assert result.exit_code == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert lines[-2].startswith("error: ") and "no longer matches" in lines[-2] and "tables of schema app" in lines[-2]
    assert lines[-1].startswith("hint: ") and "plan --out" in lines[-1]
    assert acl_snapshot(db_conninfo(admin_dsn, split.database)) == before
    assert _ledger(split) == entries  # refused: nothing happened, nothing recorded


def test_plan_file_refused_for_another_policy_or_server(split: Split, tmp_path: Path) -> None:
    _seeded(split)
    data = _plan_out(split, tmp_path / "plan.json")
    other = dict(data, server=dict(data["server"], system_identifier="1"))
    (tmp_path / "other.json").write_text(json.dumps(other))
    result = split.cli("apply", "--plan", str(tmp_path / "other.json"))
    assert result.exit_code == 2 and "another server" in result.stderr, str(result)

    split.path.write_text(split.path.read_text().replace('mode = "authoritative"', 'mode = "additive"'))
    result = split.cli("apply", "--plan", str(tmp_path / "plan.json"))
    assert result.exit_code == 2 and "the policy changed" in result.stderr, str(result)

    (tmp_path / "junk.json").write_text("{}")
    result = split.cli("apply", "--plan", str(tmp_path / "junk.json"))
    assert result.exit_code == 2 and "not a usable plan file" in result.stderr, str(result)
    assert "Traceback" not in result.stderr


def test_hand_grant_after_apply_is_reported_as_outside_pgwarden(split: Split) -> None:
    _seeded(split)
    split.apply()
    (last_id, *_) = _ledger(split)[-1]
    clean = split.cli("check", "--format", "json")
    assert clean.exit_code == 0, str(clean)
    with split.admin_db() as conn:
        conn.execute(sql.SQL("GRANT TRUNCATE ON app.orders TO {}").format(sql.Identifier(split.app)))
    with split.login(split.app) as app:  # the hand grant is real: the app may truncate
        app.execute("TRUNCATE app.orders")
    result = split.cli("check", "--format", "json")
    assert result.exit_code == 1, str(result)
    data = result.json()
    jsonschema.Draft202012Validator(schema("check")).validate(data)
    assert any(f["rule"] == "drift.grant" or f["rule"].startswith("drift.") for f in data["findings"])
    outside = data["outside_pgwarden"]
    assert outside["since"]["id"] == last_id and outside["since"]["action"] == "apply"
    assert f"#{last_id} (apply by" in outside["message"] and "tables of schema app" in outside["message"]
    text = split.cli("check")
    assert text.exit_code == 1 and f"changed outside pgwarden since the last recorded change #{last_id}" in text.stdout


def test_ledger_is_the_admins_alone(split: Split, admin_conn: psycopg.Connection[Any]) -> None:
    _seeded(split)
    split.apply()
    for role in (split.app, split.readonly, split.owner):
        with split.login(role) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM pgwarden_ledger.entries")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DROP SCHEMA pgwarden_ledger CASCADE")
    split.assert_clean()  # the ledger itself is no drift
    result = split.cli("check")
    assert result.exit_code == 0, str(result)


def test_one_plan_file_for_every_database_of_a_version_2_file(
    three: tuple[Path, list[str], dict[str, str]],  # noqa: F811 (the fixture imported above)
    admin_dsn: str,
    tmp_path: Path,
) -> None:
    cfg, dbs, names = three
    env = {
        "PGWARDEN_DSN": admin_dsn,
        f"PGWARDEN_PASSWORD_{names['app'].upper()}": "app-secret-1",
        f"PGWARDEN_PASSWORD_{names['who'].upper()}": "who-secret-1",
    }
    out = tmp_path / "plan.json"
    planned = run_cli(["plan", "-c", str(cfg), "--out", str(out)], env)
    assert planned.exit_code == 0, str(planned)
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(schema("planfile")).validate(data)
    assert [d["database"] for d in data["databases"]] == sorted(dbs)

    applied = run_cli(["apply", "-c", str(cfg), "--plan", str(out), "--format", "json"], env)
    assert applied.exit_code == 0, str(applied)
    for entry in applied.json()["databases"]:
        assert "error" not in entry, entry
    clean = run_cli(["plan", "-c", str(cfg), "--exit-code"], env)
    assert clean.exit_code == 0, str(clean)  # every database as its reviewed plan left it: the policy's
    again = run_cli(["apply", "-c", str(cfg), "--plan", str(out)], env)
    # applied: the state moved on; refused, and the output says which database
    assert again.exit_code == 2 and "no longer matches" in again.stdout, str(again)


def test_outside_report_names_the_entry_as_the_log_shows_it(split: Split) -> None:
    # check reads the last entry without its steps and detail (an apply's steps are megabytes at
    # 100k tables): the entry it names must still be the one `log` shows, every other field equal
    _seeded(split)
    split.apply()
    with split.admin_db() as conn:
        conn.execute(sql.SQL("GRANT TRUNCATE ON app.orders TO {}").format(sql.Identifier(split.app)))
    with split.login(split.app) as app:  # the hand grant is real: the app may truncate
        app.execute("TRUNCATE app.orders")
    result = split.cli("check", "--format", "json")
    assert result.exit_code == 1, str(result)
    log = split.cli("log", "--format", "json")
    assert log.exit_code == 0, str(log)
    last = log.json()["entries"][0]
    assert last["action"] == "apply" and last["steps"], last  # the entry has steps, check leaves them out
    expected = {k: v for k, v in last.items() if k not in ("steps", "detail")}
    assert result.json()["outside_pgwarden"]["since"] == expected
