"""`pgwarden check` on real servers: clean after apply, tampering and every hazard found, JSON/SARIF valid."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from test_core import Split, applied_split, make_split

VENDOR = Path(__file__).parent / "vendor"


def check_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("pgwarden.schemas").joinpath("check.json").read_text("utf-8"))
    return data


def validate_sarif(doc: dict[str, Any]) -> None:
    schema = json.loads((VENDOR / "sarif-2.1.0.json").read_text("utf-8"))
    jsonschema.Draft4Validator(schema).validate(doc)


def check_json(split: Split, *extra: str) -> tuple[int, dict[str, Any]]:
    result = split.cli("check", "--format", "json", *extra)
    assert result.exit_code in (0, 1), str(result)
    data: dict[str, Any] = result.json()
    jsonschema.Draft202012Validator(check_schema()).validate(data)
    return result.exit_code, data


def has(findings: list[dict[str, Any]], rule: str, obj: str, role: str | None = "") -> bool:
    return any(f["rule"] == rule and obj in f["object"] and (role == "" or f["role"] == role) for f in findings)


def ident(*names: str) -> str:
    return sql.Identifier(*names).as_string(None)


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return applied_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        "CREATE TABLE items (id serial PRIMARY KEY, name text)",
    )


def test_applied_database_checks_clean_in_every_format(split: Split) -> None:
    code, data = check_json(split)
    assert code == 0 and data["findings"] == [], json.dumps(data, indent=1)
    assert data["summary"]["total"] == 0 and data["summary"]["failed"] is False
    text = split.cli("check")
    assert text.exit_code == 0 and "no findings" in text.stdout, str(text)
    sarif = split.cli("check", "--format", "sarif")
    assert sarif.exit_code == 0, str(sarif)
    validate_sarif(sarif.json())
    assert sarif.json()["runs"][0]["results"] == []


def test_tampering_fails_check_naming_the_object_and_apply_fixes_it(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    outsider = pg_cleanup.role(unique_name("other"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
    t, app, owner = ident("public", "items"), ident(split.app), ident(split.owner)
    tampers = [
        ("extra privilege", [f"GRANT TRUNCATE ON {t} TO {app}"], "items"),
        ("missing privilege", [f"REVOKE UPDATE ON {t} FROM {app}"], "items"),
        ("grant option", [f"GRANT SELECT ON {t} TO {app} WITH GRANT OPTION"], "items"),
        ("PUBLIC grant", [f"GRANT SELECT ON {t} TO PUBLIC"], "items"),
        (
            "table owned by someone else",
            ["CREATE TABLE public.stray (id int)", f"ALTER TABLE public.stray OWNER TO {ident(outsider)}"],
            "stray",
        ),
        (
            "default privilege removed",
            [f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public REVOKE INSERT ON TABLES FROM {app}"],
            "default privileges",
        ),
        ("CREATE on public for PUBLIC", ["GRANT CREATE ON SCHEMA public TO PUBLIC"], "schema public"),
        ("app member of the owner", [f"GRANT {owner} TO {app}"], split.owner),
        (
            "PUBLIC may connect again",
            [f"GRANT CONNECT, TEMPORARY ON DATABASE {ident(split.database)} TO PUBLIC"],
            f"database {split.database}",
        ),
    ]
    with split.admin_db() as db:
        for what, statements, mention in tampers:
            for statement in statements:
                db.execute(statement)  # type: ignore[call-overload]
            code, data = check_json(split)
            assert code == 1, f"{what}: {data}"
            assert any(mention in f["object"] for f in data["findings"]), f"{what}: {json.dumps(data, indent=1)}"
            sarif = split.cli("check", "--format", "sarif")
            assert sarif.exit_code == 1
            validate_sarif(sarif.json())
            split.apply()
            code, data = check_json(split)
            assert code == 0 and data["findings"] == [], f"{what}: {json.dumps(data, indent=1)}"


def test_fail_on_threshold_and_text_output(split: Split) -> None:
    with split.admin_db() as db:
        db.execute(sql.SQL("ALTER ROLE {} SET work_mem = '64MB'").format(sql.Identifier(split.app)))
    code, data = check_json(split)
    assert code in (0, 1)
    if data["findings"]:  # whatever the drift severity, --fail-on critical ignores lesser findings
        worst = min(("critical", "high", "medium", "low").index(f["severity"]) for f in data["findings"])
        result = split.cli("check", "--fail-on", "critical")
        assert result.exit_code == (1 if worst == 0 else 0), str(result)
    with split.admin_db() as db:
        db.execute(f"GRANT CREATE ON SCHEMA public TO {ident(split.app)}")
    text = split.cli("check")
    assert text.exit_code == 1 and "create.schema" in text.stdout and "fix: REVOKE CREATE" in text.stdout, str(text)


def test_every_hazard_is_found(
    tmp_path: Path,
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    unique_name: Callable[[str], str],
    pg_cleanup: PgCleanup,
    pg_version: int,
) -> None:
    s = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    deploy = pg_cleanup.role(unique_name("deploy"))
    policy_text = s.path.read_text("utf-8")
    from pgwarden.policy import load_policy

    policy = load_policy(s.path)
    policy = policy.model_copy(update={"owner": policy.owner.model_copy(update={"deploy_logins": (deploy,)})})
    s.path.write_text(policy.to_toml(), "utf-8")
    assert policy_text != s.path.read_text("utf-8")
    s.apply()
    outsider = pg_cleanup.role(unique_name("other"))
    middle = pg_cleanup.role(unique_name("middle"))
    app, ro, owner, db_name = ident(s.app), ident(s.readonly), ident(s.owner), ident(s.database)
    for role in (outsider, middle):
        admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    with s.login(s.owner) as conn:
        conn.execute("CREATE TABLE items (id int)")
        conn.execute("CREATE TABLE secrets (id int, who text)")
        conn.execute("ALTER TABLE secrets ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE VIEW all_secrets AS SELECT * FROM secrets")
        conn.execute(
            "CREATE FUNCTION peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.secrets'"  # noqa: E501
        )
        conn.execute(f"GRANT EXECUTE ON FUNCTION peek() TO {app}")
    dangerous = ["pg_write_all_data", "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program"]
    if pg_version >= 17:
        dangerous.append("pg_maintain")
    statements = [
        f"GRANT {owner} TO {app}",  # access role member of the owner
        *(f"GRANT {r} TO {ro}" for r in dangerous),
        f"GRANT pg_signal_backend TO {ident(middle)}",  # indirect: ro -> middle -> pg_signal_backend
        f"GRANT {ident(middle)} TO {ro}",
        f"ALTER ROLE {ro} CREATEDB CREATEROLE REPLICATION BYPASSRLS",
        "CREATE TABLE public.app_table (id int)",
        f"ALTER TABLE public.app_table OWNER TO {app}",
        "CREATE TABLE public.stray (id int)",
        f"ALTER TABLE public.stray OWNER TO {ident(outsider)}",
        "CREATE TABLE public.escaped (id int)",
        f"ALTER TABLE public.escaped OWNER TO {ident(deploy)}",
        f"CREATE SCHEMA deploy_made AUTHORIZATION {ident(deploy)}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {app} GRANT SELECT ON TABLES TO {ro}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(deploy)} GRANT SELECT ON TABLES TO {app}",
        f"GRANT CREATE ON SCHEMA public TO {app}",
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        f"GRANT CREATE ON DATABASE {db_name} TO PUBLIC",
        f"GRANT TEMPORARY ON DATABASE {db_name} TO PUBLIC",
        f"ALTER ROLE {owner} CREATEROLE",
        f"ALTER ROLE {ro} PASSWORD NULL",
        "SET password_encryption = 'md5'",
        f"ALTER ROLE {app} PASSWORD 'md5-is-weak'",
        "RESET password_encryption",
    ]
    with s.admin_db() as db:
        for statement in statements:
            db.execute(statement)  # type: ignore[call-overload]
    code, data = check_json(s)
    assert code == 1
    f = data["findings"]
    dump = json.dumps(f, indent=1)
    expected = [
        ("access.member-of-owner", f"role {s.owner}", s.app),
        *(("access.member-of-privileged", f"role {r}", s.readonly) for r in [*dangerous, "pg_signal_backend"]),
        *(("access.attribute", f"role {s.readonly}", s.readonly) for _ in range(1)),
        ("access.owns-objects", "app_table", s.app),
        ("ownership.not-owner", "stray", outsider),
        ("ownership.escaped-owner", "table public.escaped", deploy),
        ("ownership.escaped-owner", "schema deploy_made", deploy),
        ("defaults.wrong-role", f"role {s.app}", s.app),
        ("defaults.wrong-role", f"role {deploy}", deploy),
        ("create.schema", "schema public", s.app),
        ("create.schema", "schema public", "PUBLIC"),
        ("create.database", f"database {s.database}", "PUBLIC"),
        ("temp.public", f"database {s.database}", "PUBLIC"),
        ("function.security-definer", "public.peek()", ""),
        ("rls.not-forced", "secrets", s.app),
        ("login.no-password", f"role {s.readonly}", s.readonly),
        ("login.md5-password", f"role {s.app}", s.app),
    ]
    if pg_version >= 15:
        expected.append(("rls.view-bypass", "all_secrets", None))
    if pg_version <= 15:
        expected.append(("owner.createrole", f"role {s.owner}", s.owner))
    else:
        assert not has(f, "owner.createrole", s.owner), dump
    for rule, obj, role in expected:
        assert has(f, rule, obj, role), f"{rule} {obj} {role}: {dump}"
    escaped = [x for x in f if x["rule"] == "ownership.escaped-owner" and "escaped" in x["object"]]
    assert len(escaped) == 1, dump  # the snapshot and pg_shdepend see it; reported once
    attrs = {x["message"].rsplit(" ", 1)[1] for x in f if x["rule"] == "access.attribute"}
    assert attrs == {"CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS"}, dump
    for x in f:  # every hazard carries the SQL (or the step) that fixes it
        assert x["fix"], x
    validate_sarif(json.loads(s.cli("check", "--format", "sarif").stdout))


def test_superuser_owner_and_access_role_are_found(split: Split) -> None:
    with split.admin_db() as db:
        db.execute(f"ALTER ROLE {ident(split.owner)} SUPERUSER")
        db.execute(f"ALTER ROLE {ident(split.app)} SUPERUSER")
    code, data = check_json(split, "--fail-on", "critical")
    assert code == 1
    f = data["findings"]
    assert has(f, "owner.superuser", f"role {split.owner}", split.owner), f
    assert any(
        x["rule"] == "access.attribute" and x["severity"] == "critical" and "SUPERUSER" in x["message"] for x in f
    ), f


def test_check_cannot_run_exits_2(tmp_path: Path, admin_dsn: str) -> None:
    from helpers import run_cli

    result = run_cli(["check", "-c", str(tmp_path / "missing.toml"), "--dsn", admin_dsn])
    assert result.exit_code == 2 and "error:" in result.stderr and "Traceback" not in result.stderr, str(result)
    (tmp_path / "p.toml").write_text('[database]\nname = "x"\n[owner]\nname = "o"\n', "utf-8")
    bad = run_cli(["check", "-c", str(tmp_path / "p.toml"), "--dsn", "host=127.0.0.1 port=1 connect_timeout=2"])
    assert bad.exit_code == 2 and "error:" in bad.stderr, str(bad)


def test_readonly_writes_through_a_security_definer_routine_until_it_is_made_invoker(split: Split) -> None:
    """readonly roles get EXECUTE on routines; through a SECURITY DEFINER one they write with the
    owner's rights. check says so, its fix runs, and afterwards the write is denied."""
    with split.login(split.owner) as owner:
        owner.execute(
            "CREATE FUNCTION public.add_item(n text) RETURNS void LANGUAGE sql SECURITY DEFINER "
            "SET search_path = pg_catalog, pg_temp AS $$ INSERT INTO public.items (name) VALUES (n) $$"
        )
    split.apply()  # grants EXECUTE to the access roles, as the policy says
    with split.login(split.readonly) as ro:
        ro.execute("SELECT public.add_item('written by readonly')")  # the hazard is real
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("INSERT INTO public.items (name) VALUES ('direct')")
    code, data = check_json(split)
    found = [f for f in data["findings"] if f["rule"] == "function.definer-readonly"]
    assert code == 1 and len(found) == 1, json.dumps(data, indent=1)
    assert found[0]["role"] == split.readonly and "add_item(n text)" in found[0]["object"]
    with split.login(split.owner) as owner:
        owner.execute(found[0]["fix"])
    with split.login(split.readonly) as ro, pytest.raises(psycopg.errors.InsufficientPrivilege):
        ro.execute("SELECT public.add_item('again')")
    code, data = check_json(split)
    assert code == 0, json.dumps(data, indent=1)
