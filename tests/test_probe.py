"""`pgwarden probe` on real servers: the post's "let's test it" matrix, side-effect free, differences found."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from conftest import PgCleanup
from pgwarden.probe import ACTIONS
from test_core import Split, make_split

ACCESS_ALLOWED = {
    "readwrite": {"select", "insert", "update", "delete", "sequence-select", "sequence-usage", "execute", "connect"},
    "readonly": {"select", "sequence-select", "execute", "connect"},
}


def probe_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pgwarden.schemas").joinpath("probe.json").read_text("utf-8"))
    return data


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup, schemas=("public", "billing"))
    s.apply()
    with s.login(s.owner) as owner:
        owner.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        owner.execute("CREATE TABLE lines (id bigint GENERATED ALWAYS AS IDENTITY, item int REFERENCES items)")
        owner.execute("CREATE VIEW item_names AS SELECT name FROM items")
        owner.execute("CREATE FUNCTION add_one(i integer) RETURNS integer LANGUAGE sql AS 'SELECT i + 1'")
        owner.execute("CREATE TABLE billing.invoices (id serial, total numeric)")
        owner.execute("INSERT INTO items (name) VALUES ('a'), ('b')")
        owner.execute("INSERT INTO lines (item) VALUES (1)")
        owner.execute("INSERT INTO billing.invoices (total) VALUES (10)")
    return s


def probe_json(split: Split, *extra: str) -> tuple[int, dict[str, Any]]:
    result = split.cli("probe", "--format", "json", *extra)
    assert result.exit_code in (0, 1), str(result)
    data: dict[str, Any] = result.json()
    jsonschema.Draft202012Validator(probe_schema()).validate(data)
    return result.exit_code, data


def matrix(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(c["role"], c["action"]): c["outcome"] for c in data["matrix"]}


def expected_matrix(split: Split, *, login: bool) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for role, level in ((split.owner, "owner"), (split.app, "readwrite"), (split.readonly, "readonly")):
        for action in ACTIONS:
            if action == "connect" and not login:
                continue
            allowed = level == "owner" or action in ACCESS_ALLOWED[level]
            out[(role, action)] = "allowed" if allowed else "denied"
    return out


def fingerprint(split: Split) -> dict[str, Any]:
    """Catalogs and data a probe could change: relations, ACLs, schemas, defaults, rows, sequences."""
    with split.admin_db() as db:
        q = {
            "relations": "SELECT c.oid, c.relname, c.relnamespace, c.relkind, c.relowner, c.relacl::text, c.relnatts "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
            "schemas": "SELECT oid, nspname, nspowner, nspacl::text FROM pg_namespace ORDER BY 1",
            "database": "SELECT datacl::text FROM pg_database WHERE datname = current_database()",
            "defaults": "SELECT defaclrole, defaclnamespace, defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3",  # noqa: E501
            "functions": "SELECT oid, proname, proacl::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1",  # noqa: E501
            "rows": "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM lines), (SELECT count(*) FROM billing.invoices)",  # noqa: E501
            "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
            "attributes": "SELECT attrelid, attname, attnum FROM pg_attribute WHERE attrelid = 'items'::regclass ORDER BY 3",  # noqa: E501
        }
        return {k: db.execute(v).fetchall() for k, v in q.items()}  # type: ignore[call-overload]


def test_correct_setup_probes_clean_and_leaves_nothing_behind(split: Split) -> None:
    before = fingerprint(split)
    code, data = probe_json(split)
    assert code == 0, json.dumps([a for a in data["attempts"] if not a["ok"]], indent=1)
    assert matrix(data) == expected_matrix(split, login=False)
    assert fingerprint(split) == before
    objects = {a["object"] for a in data["attempts"]}
    for name in ("public.items", "public.lines", "public.item_names", "billing.invoices", "public.add_one(integer)"):
        assert name in objects, objects
    denied = [a for a in data["attempts"] if a["outcome"] == "denied" and a["method"] == "attempt"]
    assert all(a["sqlstate"] == "42501" or a["action"] == "grant-to-public" for a in denied), denied
    text = split.cli("probe")
    assert text.exit_code == 0 and "all as the policy expects" in text.stdout, str(text)
    junit = split.cli("probe", "--format", "junit")
    root = ET.fromstring(junit.stdout)
    assert root.tag == "testsuites" and int(root.get("failures", "-1")) == 0
    assert len(root.findall("testsuite")) == 3


def test_login_probe_proves_connect_and_matches(split: Split) -> None:
    before = fingerprint(split)
    code, data = probe_json(split, "--login")
    assert code == 0, json.dumps([a for a in data["attempts"] if not a["ok"]], indent=1)
    assert data["mode"] == "login"
    assert matrix(data) == expected_matrix(split, login=True)
    assert fingerprint(split) == before
    missing = split.cli("probe", "--login", "--format", "json", env={k: None for k in split.env})
    assert missing.exit_code == 1
    assert {a["outcome"] for a in missing.json()["attempts"]} == {"skipped"}


def test_tampering_shows_in_the_matrix(split: Split) -> None:
    from psycopg import sql

    app, ro = sql.Identifier(split.app).as_string(None), sql.Identifier(split.readonly).as_string(None)
    with split.admin_db() as db:
        db.execute(f"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {app}")  # type: ignore[call-overload]
        db.execute(f"GRANT INSERT ON items TO {ro}")  # type: ignore[call-overload]
        db.execute(f"REVOKE EXECUTE ON FUNCTION add_one(integer) FROM {ro}, PUBLIC")  # type: ignore[call-overload]
        db.execute(f"GRANT CREATE ON SCHEMA billing TO {app}")  # type: ignore[call-overload]
    before = fingerprint(split)
    code, data = probe_json(split)
    assert code == 1
    bad = {(a["role"], a["action"], a["object"], a["outcome"]) for a in data["attempts"] if not a["ok"]}
    assert (
        (split.app, "truncate", "public.items", "allowed") in bad
        or (split.app, "truncate", "public.item_names", "allowed") in bad
        or any(r == split.app and act == "truncate" and out == "allowed" for r, act, _, out in bad)
    ), bad
    assert (split.readonly, "insert", "public.items", "allowed") in bad, bad
    assert (split.readonly, "execute", "public.add_one(integer)", "denied") in bad, bad
    assert (split.app, "create-table", "schema billing", "allowed") in bad, bad
    assert fingerprint(split) == before
    text = split.cli("probe")
    assert text.exit_code == 1 and "UNEXPECTED" in text.stdout, str(text)


def test_an_error_other_than_insufficient_privilege_is_a_failure(split: Split) -> None:
    with split.login(split.owner) as owner:
        owner.execute(
            "CREATE FUNCTION no_inserts() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN RAISE EXCEPTION 'inserts are frozen' USING ERRCODE = 'P0001'; END$$"
        )
        owner.execute("CREATE TRIGGER frozen BEFORE INSERT ON items FOR EACH STATEMENT EXECUTE FUNCTION no_inserts()")
    code, data = probe_json(split)
    assert code == 1
    errors = [a for a in data["attempts"] if a["outcome"] == "error"]
    assert {(a["role"], a["action"], a["sqlstate"]) for a in errors} >= {
        (split.owner, "insert", "P0001"),
        (split.app, "insert", "P0001"),
    }, errors
    assert all(not a["ok"] for a in errors)


def test_beyond_max_objects_the_server_is_asked(split: Split) -> None:
    code, data = probe_json(split, "--max-objects", "1")
    assert code == 0, json.dumps([a for a in data["attempts"] if not a["ok"]], indent=1)
    assert matrix(data) == expected_matrix(split, login=False)
    inquired = {a["object"] for a in data["attempts"] if a["method"] == "inquiry" and a["action"] == "select"}
    assert inquired, data["attempts"]


def test_probe_without_database_exits_2(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    result = s.cli("probe")
    assert result.exit_code == 2 and "does not exist" in result.stderr, str(result)


def test_hostile_names_probe_check_and_report_clean(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    schema = 'We "Sell" Ünicode'
    s = make_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        schemas=("public", schema),
        app=unique_name('App "X"'),
        readonly=unique_name("ro y"),
    )
    s.apply()
    from psycopg import sql

    with s.login(s.owner) as owner:
        owner.execute(
            sql.SQL('CREATE TABLE {} ("Id" serial, "a b" text)').format(sql.Identifier(schema, "Order Lines"))
        )
        owner.execute(
            sql.SQL("CREATE FUNCTION {}(\"x y\" integer) RETURNS integer LANGUAGE sql AS 'SELECT 1'").format(
                sql.Identifier(schema, "Fn's")
            )
        )
    code, data = probe_json(s)
    assert code == 0, json.dumps([a for a in data["attempts"] if not a["ok"]], indent=1)
    assert matrix(data) == expected_matrix(s, login=False)
    assert any(a["object"].startswith('"We ""Sell"" Ünicode"."Order Lines"') for a in data["attempts"])
    checked = s.cli("check", "--format", "json")
    assert checked.exit_code == 0 and checked.json()["findings"] == [], str(checked)
    report = s.cli("report", "--format", "html")
    assert report.exit_code == 0 and "We &quot;Sell&quot; Ünicode" in report.stdout, str(report)


# --- the table of actions, derived from the privilege profiles ----------------------------------------


def test_what_each_level_must_get_comes_from_the_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    from pgwarden.policy import build_policy
    from pgwarden.probe import actions, expected

    policy = build_policy(database="shop", owner="own", app=["app"], readonly=["ro"])
    for level, allowed in ACCESS_ALLOWED.items():
        for action in ACTIONS:
            if action != "create-temp-table":
                assert expected(policy, level, action) == (action in allowed), (level, action)
    assert all(expected(policy, "owner", a) for a in ACTIONS)
    # the profile is the one definition: give readonly INSERT and the probe expects it to insert
    readonly = {**actions.PROFILES["readonly"], "table": frozenset({"SELECT", "INSERT"})}
    profiles = {**actions.PROFILES, "readonly": readonly}
    monkeypatch.setattr(actions, "PROFILES", profiles)
    assert expected(policy, "readonly", "insert") and not expected(policy, "readonly", "update")


def test_every_action_is_tried_or_asked() -> None:
    from pgwarden.probe import TABLE

    for action in TABLE:
        if action.on == "connection":
            continue
        assert action.statement is not None or action.inquiry is not None, action.name
        assert action.inquiry is None or action.privilege is not None, action.name


def test_owner_grant_to_public_when_public_already_holds_select(split: Split) -> None:
    """The owner granted SELECT to PUBLIC itself: a second GRANT changes no ACL, yet the owner can grant."""
    with split.login(split.owner) as owner:
        owner.execute("GRANT SELECT ON items, billing.invoices TO PUBLIC")
    code, data = probe_json(split)
    grants = [a for a in data["attempts"] if a["action"] == "grant-to-public"]
    assert {(a["role"], a["outcome"]) for a in grants} == {
        (split.owner, "allowed"),
        (split.app, "denied"),
        (split.readonly, "denied"),
    }, grants
    assert code == 0, json.dumps([a for a in data["attempts"] if not a["ok"]], indent=1)
    assert all(a["sqlstate"] == "01007" for a in grants if a["outcome"] == "denied"), grants


@pytest.mark.minversion(16)
def test_createrole_admin_that_cannot_set_role_could_not_run(
    split: Split, admin_conn: Any, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """On 16+ a CREATEROLE admin holds ADMIN on the roles it created, but neither SET nor INHERIT."""
    import psycopg
    from psycopg import sql

    from helpers import role_conninfo

    admin = pg_cleanup.role(unique_name("cradmin"))
    password = "pw-" + unique_name("x")
    ident = sql.Identifier(admin)
    admin_conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(ident, sql.Literal(password)))
    for role in (split.owner, split.app, split.readonly):
        admin_conn.execute(
            sql.SQL("GRANT {} TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(sql.Identifier(role), ident)
        )
    admin_conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(split.database), ident))
    dsn = role_conninfo(split.admin_dsn, admin, password, "postgres")
    with psycopg.connect(role_conninfo(split.admin_dsn, admin, password, split.database), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied to set role"):
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(split.owner)))
    result = split.cli("probe", dsn=dsn)
    assert result.exit_code == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: cannot act as "), result.stderr
    assert "permission denied to set role" in lines[0]
    assert lines[1].startswith("hint: ") and "--login" in lines[1] and "WITH SET TRUE" in lines[1]
    assert "UNEXPECTED" not in result.stdout
    # the way out the hint gives runs, as that admin; once it ran for every role the probe runs, clean
    for _ in range(3):
        fix = lines[1].split("`")[-2]
        assert fix.startswith("GRANT ") and fix.endswith(" WITH SET TRUE;"), fix
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(fix)  # type: ignore[call-overload]
        result = split.cli("probe", dsn=dsn)
        lines = result.stderr.strip().splitlines()
        if result.exit_code != 2:
            break
    assert result.exit_code == 0, str(result)


def test_ddl_on_a_partition_is_proved_like_on_any_table(split: Split) -> None:
    # the first table of schema billing is a partition: the owner may alter, drop and truncate it, the
    # access roles may not (ADD COLUMN, refused on any partition, would not prove that)
    with split.login(split.owner) as owner:
        owner.execute("CREATE TABLE billing.events (k integer, v text) PARTITION BY RANGE (k)")
        owner.execute("CREATE TABLE billing.a_events_1 PARTITION OF billing.events FOR VALUES FROM (0) TO (10)")
    before = fingerprint(split)
    code, data = probe_json(split)
    assert code == 0, json.dumps([a for a in data["attempts"] if not a["ok"]], indent=1)
    ddl = {
        (a["role"], a["action"]): a["outcome"]
        for a in data["attempts"]
        if a["object"] == "billing.a_events_1" and a["action"] in ("alter-table", "drop-table", "truncate")
    }
    assert ddl[(split.owner, "alter-table")] == "allowed", ddl
    assert ddl[(split.app, "alter-table")] == "denied", ddl
    assert fingerprint(split) == before
