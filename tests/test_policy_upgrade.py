"""`pgwarden policy upgrade` and `validate`: every version 1 example the repo has becomes a version 2
file whose plan against a real server is the version 1 plan, step for step, before and after drift."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from helpers import db_conninfo, run_cli
from pgwarden.policy import build_policy, parse_policies, upgrade

ROOT = Path(__file__).resolve().parent.parent


def _docs_example() -> str:
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    return next(b for b in re.findall(r"```toml\n(.*?)```", text, re.DOTALL) if "version = 1" in b)


def _kubernetes() -> str:
    text = (ROOT / "examples" / "kubernetes" / "policy-configmap.yaml").read_text(encoding="utf-8")
    return textwrap.dedent(text.split("policy.toml: |\n", 1)[1])


def _ansible(databases: str) -> str:
    """The example playbooks' Jinja template (version 2) rendered for a cluster with two schemas, an app
    role and a readonly role (what Ansible's template module makes of it; the suite has no Jinja)."""
    text = (ROOT / "examples" / "ansible" / "templates" / "policy.toml.j2").read_text(encoding="utf-8")
    values = {"pgwarden_app_roles": ["shop_app"], "pgwarden_readonly_roles": ["shop_ro"]}

    def loop(m: re.Match[str]) -> str:
        body = m.group(2)
        return "".join(
            body.replace("{{ role | upper }}", r.upper()).replace("{{ role }}", r) for r in values[m.group(1)]
        )

    text = re.sub(r"{% for role in (\w+) \| default\(\[\]\) %}\n(.*?){% endfor %}\n", loop, text, flags=re.DOTALL)
    text = text.replace("{{ pgwarden_schemas | default(['public']) | to_json }}", '["public", "sales"]')
    text = text.replace("{{ pgwarden_owner | upper }}", "SHOP_OWNER").replace("{{ pgwarden_owner }}", "shop_owner")
    text = text.replace("{{ pgwarden_databases }}", databases)
    assert "{{" not in text and "{%" not in text, text
    return text


#: What the Ansible example's template said as version 1 (used with `database: shop_*`, -d 'shop_*').
ANSIBLE_V1 = """\
[database]
name = "shop_template"
schemas = ["public", "sales"]

[owner]
name = "shop_owner"
password_env = "PGWARDEN_PASSWORD_SHOP_OWNER"

[[access]]
name = "shop_app"
level = "readwrite"
password_env = "PGWARDEN_PASSWORD_SHOP_APP"

[[access]]
name = "shop_ro"
level = "readonly"
login = false
"""


def test_ansible_template_is_the_upgraded_version_1_policy_over_a_pattern(tmp_path: Path) -> None:
    src = tmp_path / "v1.toml"
    src.write_text(ANSIBLE_V1)
    result = run_cli(["policy", "upgrade", str(src), "--databases", "shop_*", "-o", "-"])
    assert result.exit_code == 0, result
    assert parse_policies(_ansible("shop_*")) == parse_policies(result.stdout)
    (one,) = parse_policies(_ansible("shop"))  # a single database is the same file with its name
    assert one.database.name == "shop" and one.grants() == parse_policies(ANSIBLE_V1)[0].grants()


def _bench_fleet() -> str:
    """The policy examples/ansible/bench_fleet.py writes (a literal in its source)."""
    tree = ast.parse((ROOT / "examples" / "ansible" / "bench_fleet.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "[owner]" in node.value:
            return node.value
    raise AssertionError("bench_fleet.py no longer writes a policy")


def _test_policy_good() -> str:
    from test_policy import GOOD

    return GOOD


#: Every key of version 1 that changes what is planned (the guard is left out: it plans the same
#: event trigger either way and would refuse this test's drift).
EVERY_KEY = """\
version = 1
mode = "additive"

[database]
name = "erp"
schemas = ["core", "hist"]

[owner]
name = "erp_owner"
login = false
createdb = false
deploy_logins = ["erp_deploy"]

# the application
[[access]]
name = "erp_app"
level = "readwrite"
password_env = "PGWARDEN_PASSWORD_ERP_APP"

[[access]]
name = "erp_read"
level = "readonly"
login = false

[hardening]
revoke_public_connect = false
revoke_public_execute = false

[ignore]
roles = ["erp_monitor"]

[apply]
lock_timeout = "2s"
"""


def _built(**kwargs: Any) -> str:
    return build_policy(version=1, **kwargs).to_toml()


EXAMPLES = {
    "docs-policy": _docs_example,
    "kubernetes": _kubernetes,
    "ansible-v1": lambda: ANSIBLE_V1,
    "bench-fleet": _bench_fleet,
    "test-policy": _test_policy_good,
    "every-key": lambda: EVERY_KEY,
    "helpers-app": lambda: _built(database="app", owner="app_owner", app=["app_rw"]),
    "helpers-schemas": lambda: _built(
        database="app", owner="app_owner", app=["app_rw", "worker"], readonly=["bi"], schemas=["public", "s1", "s2"]
    ),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_upgrade_writes_a_version_2_file_with_the_same_meaning(name: str, tmp_path: Path) -> None:
    text = EXAMPLES[name]()
    (v1,) = parse_policies(text)
    assert v1.version == 1
    src = tmp_path / "p.toml"
    src.write_text(text)
    out = tmp_path / "v2.toml"
    result = run_cli(["policy", "upgrade", str(src), "-o", str(out)])
    assert result.exit_code == 0, result
    assert src.read_text() == text  # -o leaves the file alone
    (v2,) = parse_policies(out.read_text())
    assert v2.version == 2 and v2 == upgrade(v1)
    assert v2.grants() == v1.grants()
    assert [(a.name, a.login, a.password_env) for a in v2.access] == [
        (a.name, a.login, a.password_env) for a in v1.access
    ]
    assert (v2.mode, v2.owner, v2.hardening, v2.ignore, v2.apply) == (
        v1.mode,
        v1.owner,
        v1.hardening,
        v1.ignore,
        v1.apply,
    )


def test_upgrade_in_place_keeps_a_backup_and_refuses_version_2(tmp_path: Path) -> None:
    src = tmp_path / "pgwarden.toml"
    src.write_text(EVERY_KEY)
    done = run_cli(["policy", "upgrade", str(src)])
    assert done.exit_code == 0, done
    backup = tmp_path / "pgwarden.toml.v1.bak"
    assert backup.read_text() == EVERY_KEY
    assert f"kept as {backup}" in done.stderr
    upgraded = src.read_text()
    assert "version = 2" in upgraded and '# the application\n[[roles]]\nname = "erp_app"' in upgraded
    assert upgraded.startswith("# Upgraded from version 1 (pgwarden.toml.v1.bak)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pgwarden.toml", "pgwarden.toml.v1.bak"]

    again = run_cli(["policy", "upgrade", str(src)])
    assert again.exit_code == 0 and "already version 2: nothing to do" in again.stderr, again
    assert src.read_text() == upgraded

    # a backup of another file is never replaced
    other = tmp_path / "other.toml"
    other.write_text(EVERY_KEY)
    (tmp_path / "other.toml.v1.bak").write_text("# something else\n")
    refused = run_cli(["policy", "upgrade", str(other)])
    assert refused.exit_code == 2, refused
    assert refused.stderr.splitlines()[0].endswith(
        "other.toml.v1.bak exists: nothing was written (a backup is never overwritten)"
    )
    assert refused.stderr.splitlines()[1].startswith("hint: move ")
    assert other.read_text() == EVERY_KEY

    stdout = run_cli(["policy", "upgrade", str(other), "-o", "-"])
    assert stdout.exit_code == 0 and parse_policies(stdout.stdout)[0] == upgrade(parse_policies(EVERY_KEY)[0])


def test_validate_summarises_each_database_or_fails_with_file_and_line(tmp_path: Path) -> None:
    team = run_cli(["policy", "validate", str(ROOT / "docs" / "examples" / "team.toml")])
    assert team.exit_code == 0, team
    assert team.stdout == (
        "shop: schemas app, reporting, audit; roles shop_owner (owner), shop_deploy, shop_app, analysts, etl, "
        "alice, bob; 6 grant(s)\n"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(EVERY_KEY.replace('level = "readonly"', 'level = "readmost"'))
    failed = run_cli(["policy", "validate", str(bad)])
    assert failed.exit_code == 2 and failed.stdout == ""
    assert failed.stderr.startswith(f"error: {bad}:22: access[1].level: "), failed
    for command in ("validate", "upgrade"):
        missing = run_cli(["policy", command, str(tmp_path / "none.toml")])
        assert missing.exit_code == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


# --- the same plan on a real server ---------------------------------------------------------------


def _renamed(text: str, prefix: str) -> tuple[str, list[str], list[str]]:
    """The example with its database and roles renamed (roles are the cluster's: tests share it)."""
    (policy,) = parse_policies(text)
    roles = [policy.owner.name, *policy.owner.deploy_logins, *(a.name for a in policy.access), *policy.ignore.roles]
    for name in [policy.database.name, *roles]:
        text = text.replace(f'"{name}"', f'"{prefix}{name}"')
    return text, [prefix + policy.database.name], [prefix + r for r in roles]


def _plan(cfg: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    result = run_cli(["plan", "-c", str(cfg), "--format", "json"], env)
    assert result.exit_code == 0, result
    steps: list[dict[str, Any]] = result.json()["steps"]
    return steps


def _drift(admin_dsn: str, db: str, owner: str, schemas: tuple[str, ...], access: list[str]) -> None:
    """Tables the owner creates, one the superuser creates (wrong owner), a grant taken away and one too many."""
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
            conn.execute(sql.SQL("CREATE TABLE {}.t (id serial PRIMARY KEY, v text)").format(sql.Identifier(schema)))
            conn.execute("RESET ROLE")
        first = sql.Identifier(schemas[0])
        conn.execute(sql.SQL("CREATE TABLE {}.by_admin (id int)").format(first))
        if access:
            conn.execute(sql.SQL("REVOKE ALL ON {}.t FROM {}").format(first, sql.Identifier(access[0])))
            conn.execute(sql.SQL("GRANT TRUNCATE ON {}.t TO {}").format(first, sql.Identifier(access[-1])))


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_upgraded_file_plans_the_same_steps(
    name: str, tmp_path: Path, admin_dsn: str, unique_name: Any, pg_cleanup: Any
) -> None:
    text, dbs, roles = _renamed(EXAMPLES[name](), unique_name("") + "_")
    for db in dbs:
        pg_cleanup.database(db)
    for role in roles:
        pg_cleanup.role(role)
    v1 = tmp_path / "v1.toml"
    v1.write_text(text)
    v2 = tmp_path / "v2.toml"
    assert run_cli(["policy", "upgrade", str(v1), "-o", str(v2)]).exit_code == 0
    env = {"PGWARDEN_DSN": admin_dsn}

    before = _plan(v1, env)
    assert before and _plan(v2, env) == before  # same steps, same SQL, same order, same reasons

    applied = run_cli(["apply", "-c", str(v1), "--yes"], env)
    assert applied.exit_code == 0, applied
    (policy,) = parse_policies(text)
    _drift(admin_dsn, dbs[0], policy.owner.name, policy.database.schemas, [a.name for a in policy.access])
    after = _plan(v1, env)
    assert any(s["action"] == "alter-owner" for s in after) == (policy.mode == "authoritative")
    assert after and _plan(v2, env) == after
