"""Every JSON document validates against its schema in the package, on the outputs of real servers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from conftest import PgCleanup
from helpers import run_cli
from test_core import Split, make_split

DOCUMENTS = ("plan", "apply", "check", "probe", "report", "adopt", "run", "multi")


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pgwarden.schemas").joinpath(f"{name}.json").read_text("utf-8"))
    return data


@pytest.mark.parametrize("name", DOCUMENTS)
def test_schemas_are_valid_and_require_schema_version(name: str) -> None:
    doc = schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["required"][0] == "schema_version" and doc["properties"]["schema_version"] == {
        "const": 1,
        "description": "bumped only on incompatible changes",
    }


def _valid(name: str, data: Any) -> Any:
    jsonschema.Draft202012Validator(schema(name)).validate(data)
    assert data["schema_version"] == 1
    return data


def _json(split: Split, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    result = split.cli(*args, "--format", "json")
    assert result.exit_code in codes, str(result)
    return result.json()


def _valid_multi(name: str, data: Any) -> None:
    """The envelope, then each database's entry as the single-database document it wraps."""
    _valid("multi", data)
    single = schema(name)
    for entry in data["databases"]:
        assert "error" not in entry, entry
        inner = {
            k: v for k, v in entry.items() if k != "seconds" and (k != "database" or "database" in single["properties"])
        }
        jsonschema.Draft202012Validator(single).validate({"schema_version": 1, **inner})


def test_every_command_json_validates_on_a_real_server(
    tmp_path: Path,
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
) -> None:
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    assert _valid("plan", _json(split, "plan"))["changes"] > 0  # the database does not exist yet
    assert _valid("apply", _json(split, "apply", "--yes"))["executed"]
    admin = admin_conn.execute("SELECT current_user").fetchone()[0]  # type: ignore[index]
    with split.admin_db() as db:
        db.execute("CREATE TABLE stray (id serial PRIMARY KEY)")  # owned by the admin: findings, deviations
    assert _valid("check", _json(split, "check", codes=(1,)))["findings"]
    _valid("probe", _json(split, "probe", codes=(0, 1)))
    assert _valid("report", _json(split, "report"))["deviations"] > 0
    options = ["-c", str(split.path), "--dsn", admin_dsn, "--format", "json"]
    run = run_cli(["run", *options, "--", sys.executable, "-c", "pass"], env=split.env)
    assert run.exit_code == 1 and _valid("run", run.json())["findings"], str(run)
    assert _valid("adopt", _json(split, "adopt", "--from", admin))["dry_run"] is True
    moved = _valid("adopt", _json(split, "adopt", "--from", admin, "--yes"))
    assert moved["moved"] >= 1 and moved["dry_run"] is False
    other = pg_cleanup.database(unique_name("db"))
    admin_conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(other)))
    several = ("-d", split.database, "-d", other)
    _valid_multi("plan", _json(split, "plan", *several))
    _valid_multi("apply", _json(split, "apply", "--yes", *several))
    _valid_multi("check", _json(split, "check", *several, codes=(0, 1)))
    _valid_multi("probe", _json(split, "probe", *several, codes=(0, 1)))
