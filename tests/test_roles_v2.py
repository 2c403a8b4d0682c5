"""Policy v2's roles on real servers: groups and people, membership options (16+) or the INHERIT
attribute (14-15), connection limits, expiry, comments and settings; drift in each is found and fixed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, role_conninfo, run_cli
from pgwarden.policy import password_env_for

BERLIN = {"PGTZ": "Europe/Berlin"}  # the client's TimeZone: a date without an offset is local to it


def _names(unique_name: Callable[[str], str], pg_cleanup: Any) -> dict[str, str]:
    names = {"db": pg_cleanup.database(unique_name("rv2db"))}
    for key in ("owner", "deploy", "app", "group", "alice", "bob"):
        names[key] = pg_cleanup.role(unique_name(f"rv2{key}"))
    return names


def _policy(n: dict[str, str], options: bool) -> str:
    """options: the server has membership options (16+): alice may not SET ROLE to her group."""
    alice_of = f'[{{ role = "{n["group"]}", set = false }}]' if options else f'["{n["group"]}"]'
    return f"""
version = 2
[owner]
name = "{n["owner"]}"
login = false
deploy_logins = ["{n["deploy"]}"]

[[roles]]
name = "{n["app"]}"
password_env = "PGW_T_APP"
connection_limit = 20
comment = "the shop application"
settings = {{ statement_timeout = "5s", search_path = "app, public", log_statement = "all" }}

[[roles]]
name = "{n["group"]}"
login = false

[[roles]]
name = "{n["alice"]}"
password_env = "PGW_T_ALICE"
member_of = {alice_of}
database_settings = {{ "{n["db"]}" = {{ statement_timeout = "1min" }} }}

[[roles]]
name = "{n["bob"]}"
password_env = "PGW_T_BOB"
member_of = [{{ role = "{n["group"]}", inherit = false }}]
valid_until = "2027-01-01"

[[databases]]
name = "{n["db"]}"
schemas = ["app"]
grants = [
  {{ role = "{n["app"]}", profile = "readwrite", schemas = ["app"] }},
  {{ role = "{n["group"]}", profile = "readonly", schemas = ["app"] }},
]
"""


def _secrets(n: dict[str, str]) -> dict[str, str | None]:
    return {
        "PGW_T_APP": "app-pw",
        "PGW_T_ALICE": "alice-pw",
        "PGW_T_BOB": "bob-pw",
        password_env_for(n["deploy"]): "deploy-pw",
        **BERLIN,
    }


def _as(admin_dsn: str, role: str, password: str, db: str) -> psycopg.Connection[Any]:
    return psycopg.connect(role_conninfo(admin_dsn, role, password, db), autocommit=True)


def _denied(conn: psycopg.Connection[Any], statement: str) -> bool:
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_groups_people_attributes_and_settings_apply_and_stay_clean(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    pg_version: int,
    unique_name: Any,
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    n = _names(unique_name, pg_cleanup)
    options = pg_version >= 16
    path = tmp_path / "pgwarden.toml"
    path.write_text(_policy(n, options), encoding="utf-8")
    env = _secrets(n)
    args = ["-c", str(path), "--dsn", admin_dsn]
    res = run_cli(["apply", *args, "--yes"], env=env)
    assert res.exit_code == 0, res
    with _as(admin_dsn, n["deploy"], "deploy-pw", n["db"]) as deploy:
        deploy.execute("CREATE TABLE app.t (id int)")
        deploy.execute("INSERT INTO app.t VALUES (1)")

    # what a v2 file says about roles is what the server has
    with psycopg.connect(db_conninfo(admin_dsn, n["db"]), autocommit=True) as db:
        db.execute("SET TimeZone = 'Europe/Berlin'")
        rows = db.execute(
            "SELECT rolname, rolconnlimit, rolvaliduntil = '2027-01-01 00:00:00+01', rolinherit,"
            " shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
            ([n["app"], n["bob"]],),
        ).fetchall()
        bob_inherits = options  # 14-15: bob's one membership does not inherit, so bob is NOINHERIT
        assert sorted(rows) == sorted(
            [(n["app"], 20, None, True, "the shop application"), (n["bob"], -1, True, bob_inherits, None)]
        )
        stored = db.execute(
            "SELECT r.rolname, s.setdatabase <> 0, array(SELECT unnest(s.setconfig) ORDER BY 1)"
            " FROM pg_db_role_setting s"
            " JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = ANY(%s)",
            ([n["app"], n["alice"]],),
        ).fetchall()
        assert sorted(stored) == sorted(
            [
                (n["app"], False, ["log_statement=all", "search_path=app, public", "statement_timeout=5s"]),
                (n["alice"], True, ["statement_timeout=1min"]),
            ]
        )
    with _as(admin_dsn, n["app"], "app-pw", n["db"]) as app:
        assert app.execute("SHOW statement_timeout").fetchone() == ("5s",)
        assert app.execute("SHOW search_path").fetchone() == ("app, public",)
        app.execute("INSERT INTO t VALUES (2)")  # unqualified: app is on its search_path
    with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
        assert alice.execute("SHOW statement_timeout").fetchone() == ("1min",)
        assert alice.execute("SELECT count(*) FROM app.t").fetchone() == (2,)  # inherited from the group
        assert _denied(alice, "INSERT INTO app.t VALUES (3)")
        if options:  # set = false: she reads through the group but cannot become it
            assert _denied(alice, f'SET ROLE "{n["group"]}"')
    # inherit = false: bob does not have the group's rights until SET ROLE; he holds CONNECT himself
    # (the login check would not see the group's), and nothing else
    with _as(admin_dsn, n["bob"], "bob-pw", n["db"]) as bob:
        group = n["group"]
        row = bob.execute("SELECT pg_has_role(%s, 'USAGE'), pg_has_role(%s, 'MEMBER')", (group, group)).fetchone()
        assert row == (False, True)
        assert _denied(bob, "SELECT count(*) FROM app.t")
        bob.execute(f'SET ROLE "{group}"')
        assert bob.execute("SELECT count(*) FROM app.t").fetchone() == (2,)

    # idempotent: nothing to do, nothing to report (search_path as a list, 5s, the Berlin date)
    res = run_cli(["plan", *args, "--exit-code"], env=env)
    assert res.exit_code == 0, res
    res = run_cli(["check", *args], env=env)
    assert res.exit_code == 0, res
    # a privilege granted to a person directly is taken back by apply (she keeps what her group gives)
    with psycopg.connect(db_conninfo(admin_dsn, n["db"]), autocommit=True) as db:
        db.execute(f'GRANT SELECT, INSERT ON app.t TO "{n["alice"]}"')
        with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
            alice.execute("INSERT INTO app.t VALUES (3)")  # the grant is real
        assert run_cli(["apply", *args, "--yes"], env=env).exit_code == 0
        acl = db.execute("SELECT relacl::text FROM pg_class WHERE oid = 'app.t'::regclass").fetchone()
        assert acl is not None and n["alice"] not in acl[0], acl
        with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
            assert _denied(alice, "INSERT INTO app.t VALUES (4)")
            assert alice.execute("SELECT count(*) FROM app.t").fetchone() == (3,)
    # the same date read by a client in another TimeZone is another instant
    res = run_cli(["plan", *args, "--exit-code"], env={**env, "PGTZ": "UTC"})
    assert res.exit_code == 1 and "VALID UNTIL" in res.stdout, res


def _drift(admin_dsn: str, admin_conn: psycopg.Connection[Any], n: dict[str, str], options: bool) -> None:
    """What hand-written SQL next to pgwarden does to the roles."""
    q = {k: psycopg.sql.Identifier(v).as_string(None) for k, v in n.items()}
    with psycopg.connect(db_conninfo(admin_dsn, n["db"]), autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON app.t TO {q['alice']}")  # a person granted directly
    for statement in (
        f"GRANT pg_monitor TO {q['alice']}",  # a membership the policy does not give
        f"GRANT {q['alice']} TO {q['app']}",  # an access role in a person
        f"ALTER ROLE {q['app']} SET lock_timeout = '1s'",  # a setting the policy does not declare
        f"ALTER ROLE {q['app']} CONNECTION LIMIT 5",
        f"ALTER ROLE {q['bob']} VALID UNTIL 'infinity'",
        f"COMMENT ON ROLE {q['app']} IS 'changed'",
        f"ALTER ROLE {q['alice']} IN DATABASE {q['db']} SET statement_timeout = '0'",
    ):
        admin_conn.execute(statement)
    if options:
        # alice may SET ROLE again, through the superuser's grant and through another grantor's
        admin_conn.execute(f"GRANT {q['group']} TO {q['alice']} WITH SET TRUE")
        admin_conn.execute(f"GRANT {q['group']} TO {q['deploy']} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE")
        admin_conn.execute(f"SET ROLE {q['deploy']}")
        admin_conn.execute(f"GRANT {q['group']} TO {q['alice']} WITH SET TRUE, INHERIT FALSE")
        admin_conn.execute("RESET ROLE")


def test_drift_in_roles_is_found_and_every_fix_runs(
    admin_dsn: str,
    admin_conn: psycopg.Connection[Any],
    pg_version: int,
    unique_name: Any,
    pg_cleanup: Any,
    tmp_path: Path,
) -> None:
    n = _names(unique_name, pg_cleanup)
    options = pg_version >= 16
    path = tmp_path / "pgwarden.toml"
    path.write_text(_policy(n, options), encoding="utf-8")
    env = _secrets(n)
    args = ["-c", str(path), "--dsn", admin_dsn]
    assert run_cli(["apply", *args, "--yes"], env=env).exit_code == 0
    with _as(admin_dsn, n["deploy"], "deploy-pw", n["db"]) as deploy:
        deploy.execute("CREATE TABLE app.t (id int)")
    admin_conn.execute("SET TimeZone = 'Europe/Berlin'")
    _drift(admin_dsn, admin_conn, n, options)
    if options:  # the drift is real: alice can become the group
        with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
            alice.execute(f'SET ROLE "{n["group"]}"')

    res = run_cli(["check", *args, "--format", "json"], env=env)
    assert res.exit_code == 1, res
    findings = json.loads(res.stdout)["findings"]
    rules = {f["rule"] for f in findings}
    expected = {"drift.revoke", "drift.revoke-membership", "drift.role-setting", "drift.role-attribute"}
    expected |= {"drift.role-comment"} | ({"drift.membership-options"} if options else set())
    assert expected <= rules, findings
    by_rule = {r: [f for f in findings if f["rule"] == r] for r in rules}
    assert {f["severity"] for f in by_rule["drift.role-comment"]} == {"low"}
    assert {f["severity"] for f in by_rule["drift.role-attribute"]} == {"medium"}
    assert any(n["alice"] in f["message"] and "pg_monitor" in f["message"] for f in by_rule["drift.revoke-membership"])

    # every printed fix runs, and together they repair everything
    with psycopg.connect(db_conninfo(admin_dsn, n["db"]), autocommit=True) as conn:
        conn.execute("SET TimeZone = 'Europe/Berlin'")
        for f in findings:
            with conn.transaction():
                conn.execute(f["fix"])
    res = run_cli(["check", *args], env=env)
    assert res.exit_code == 0, res
    with psycopg.connect(db_conninfo(admin_dsn, n["db"]), autocommit=True) as conn:
        grantees = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(e.grantee) FROM pg_class c, aclexplode(c.relacl) e"
            " WHERE c.oid = 'app.t'::regclass"
        ).fetchall()
        assert (n["alice"],) not in grantees  # the direct grant to a person is gone
    if options:
        with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
            assert alice.execute("SELECT count(*) FROM app.t").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                alice.execute(f'SET ROLE "{n["group"]}"')


@pytest.mark.parametrize("member_of", ["set = false", "inherit = false"])
def test_membership_options_14_15_cannot_express_are_one_clear_error(
    admin_dsn: str, pg_version: int, unique_name: Any, pg_cleanup: Any, tmp_path: Path, member_of: str
) -> None:
    """On 14-15 `set = false`, and memberships of one person that differ in `inherit`, cannot be
    said: one error naming the role and what it needs; on 16+ the same file plans."""
    n = _names(unique_name, pg_cleanup)
    other = pg_cleanup.role(unique_name("rv2other"))
    text = _policy(n, options=False).replace(
        f'member_of = ["{n["group"]}"]',
        f'member_of = [{{ role = "{n["group"]}", {member_of} }}, "{other}"]',
    )
    text += f'\n[[roles]]\nname = "{other}"\nlogin = false\n'
    path = tmp_path / "pgwarden.toml"
    path.write_text(text, encoding="utf-8")
    res = run_cli(["plan", "-c", str(path), "--dsn", admin_dsn], env=_secrets(n))
    if pg_version >= 16:
        assert res.exit_code == 0, res
        return
    assert res.exit_code == 2, res
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and n["alice"] in lines[0] and "needs PostgreSQL 16" in lines[0], res
    assert lines[1].startswith("hint: ") and len(lines) == 2, res


@pytest.mark.minversion(16)
def test_a_createrole_admin_manages_people_and_corrects_its_own_grant_in_place(
    admin_dsn: str, admin_conn: psycopg.Connection[Any], unique_name: Any, pg_cleanup: Any, tmp_path: Path
) -> None:
    """Managed services give a CREATEROLE + CREATEDB admin, no superuser: it creates the people, grants
    their memberships (it is their grantor) and, when one drifts, GRANT ... WITH corrects its own grant."""
    n = _names(unique_name, pg_cleanup)
    admin = pg_cleanup.role(unique_name("rv2admin"))
    admin_conn.execute(
        psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD 'adm-pw'").format(
            psycopg.sql.Identifier(admin)
        )
    )
    dsn = role_conninfo(admin_dsn, admin, "adm-pw", "postgres")
    path = tmp_path / "pgwarden.toml"
    path.write_text(_policy(n, options=True).replace(', log_statement = "all"', ""), encoding="utf-8")
    env, args = _secrets(n), ["-c", str(path), "--dsn", dsn]
    res = run_cli(["apply", *args, "--yes"], env=env)
    assert res.exit_code == 0, res
    assert run_cli(["check", *args], env=env).exit_code == 0
    grant = admin_conn.execute(
        "SELECT pg_get_userbyid(grantor), inherit_option, set_option FROM pg_auth_members"
        " WHERE roleid = %s::regrole AND member = %s::regrole",
        (n["group"], n["alice"]),
    ).fetchall()
    assert grant == [(admin, True, False)]
    with psycopg.connect(dsn, autocommit=True) as conn:  # the admin itself lets alice SET ROLE
        conn.execute(f'GRANT "{n["group"]}" TO "{n["alice"]}" WITH SET TRUE')
    res = run_cli(["plan", *args, "--format", "json"], env=env)
    steps = [(s["action"], s["sql"]) for s in json.loads(res.stdout)["steps"]]
    assert steps == [("membership-options", f'GRANT "{n["group"]}" TO "{n["alice"]}" WITH INHERIT TRUE, SET FALSE')]
    assert run_cli(["apply", *args, "--yes"], env=env).exit_code == 0
    assert run_cli(["plan", *args, "--exit-code"], env=env).exit_code == 0
    with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
        assert _denied(alice, f'SET ROLE "{n["group"]}"')


def test_a_missing_admin_option_is_found_and_granted_on_every_version(
    admin_dsn: str, pg_version: int, unique_name: Any, pg_cleanup: Any, tmp_path: Path
) -> None:
    """alice is already a member of the group without ADMIN OPTION and the policy gives it: check finds
    it, apply grants it (14-15: on the existing grant, which they keep one per pair), and alice can
    then grant the group, which she could not before; the next check is clean."""
    n = _names(unique_name, pg_cleanup)
    scratch = pg_cleanup.role(unique_name("rv2scratch"))
    path = tmp_path / "pgwarden.toml"
    plain = _policy(n, options=False)
    path.write_text(plain, encoding="utf-8")
    env, args = _secrets(n), ["-c", str(path), "--dsn", admin_dsn]
    assert run_cli(["apply", *args, "--yes"], env=env).exit_code == 0
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE {}").format(psycopg.sql.Identifier(scratch)))
    grant = f'GRANT "{n["group"]}" TO "{scratch}"'
    with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
        assert _denied(alice, grant)  # a member without ADMIN OPTION cannot grant the group
    path.write_text(
        plain.replace(f'member_of = ["{n["group"]}"]', f'member_of = [{{ role = "{n["group"]}", admin = true }}]'),
        encoding="utf-8",
    )
    res = run_cli(["check", *args, "--format", "json"], env=env)
    assert res.exit_code == 1, res
    [found] = [f for f in json.loads(res.stdout)["findings"] if f["rule"] == "drift.membership-options"]
    assert "must carry ADMIN OPTION" in found["message"] and "ADMIN" in found["fix"], found
    assert run_cli(["apply", *args, "--yes"], env=env).exit_code == 0
    with _as(admin_dsn, n["alice"], "alice-pw", n["db"]) as alice:
        alice.execute(grant)  # the option is there: she can
        alice.execute(f'REVOKE "{n["group"]}" FROM "{scratch}"')
    res = run_cli(["check", *args], env=env)
    assert res.exit_code == 0, res
