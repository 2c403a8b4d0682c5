"""The Ansible collection on three real clusters: check mode and diff, convergence, idempotence, checked, no leaks."""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from conftest import PG_VERSIONS, binaries_for
from pgwarden.apply import apply
from pgwarden.policy import parse_policy
from pgwarden.server import LocalServer
from pgwarden.session import Session

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "ansible"
MODULES = ROOT / "ansible_collections" / "pgwarden" / "postgresql" / "plugins" / "modules"
BIN = Path(sys.executable).parent

POLICY = """\
[database]
name = "shop"

[owner]
name = "shop_owner"
password_env = "PGWARDEN_PASSWORD_SHOP_OWNER"

[[access]]
name = "shop_app"
level = "readwrite"
password_env = "PGWARDEN_PASSWORD_SHOP_APP"
"""

# the example playbooks' variables for a policy like POLICY; host variables, because they must win
# over the example's own group_vars/ (which is next to the playbooks)
HOST_VARS = {
    "pg_host": "127.0.0.1",
    "pg_admin_user": "postgres",
    "pgwarden_owner": "shop_owner",
    # the template's [[databases]] entry: a glob, so every cluster's existing shop* databases
    "pgwarden_databases": "shop*",
    "pgwarden_app_roles": ["shop_app"],
    "pgwarden_readonly_roles": [],
}

_RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@dataclass
class Cluster:
    name: str
    server: LocalServer
    passwords: dict[str, str]

    def connect(self, dbname: str = "postgres", **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.conninfo(dbname, **kw), autocommit=True)

    @property
    def secrets(self) -> dict[str, str]:
        return {f"PGWARDEN_PASSWORD_{role.upper()}": pw for role, pw in self.passwords.items()}


def _two_versions() -> tuple[int, int]:
    versions = sorted(set(PG_VERSIONS))
    return versions[0], versions[-1]


@pytest.fixture(scope="module")
def fleet() -> Iterator[list[Cluster]]:
    """Three clusters on three ports, the oldest and newest configured versions among them."""
    low, high = _two_versions()
    clusters: list[Cluster] = []
    try:
        for name, version in (("c1", low), ("c2", high), ("c3", low)):
            server = LocalServer(binaries_for(version))
            clusters.append(Cluster(name, server, {r: secrets.token_urlsafe(18) for r in ("shop_owner", "shop_app")}))
            server.start()
        yield clusters
    finally:
        for c in clusters:
            c.server.cleanup()


def _converge_with_library(c: Cluster) -> None:
    with Session.open(c.server.conninfo("postgres"), parse_policy(POLICY)) as session:
        apply(session, c.secrets)


def _write_inventory(tmp: Path, fleet: list[Cluster]) -> Path:
    hosts = {
        c.name: HOST_VARS
        | {
            "pg_port": c.server.port,
            "pg_admin_password": c.server.password,
            "pgwarden_passwords": c.passwords,
        }
        for c in fleet
    }
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump({"postgres_clusters": {"hosts": hosts}}))
    return path


def _playbook(tmp: Path, inventory: Path, name: str, *args: str) -> tuple[int, str, dict[str, tuple[int, int]]]:
    """Run an example playbook; (exit code, output, host -> (changed, failed) from the recap)."""
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp),
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORKS": "3",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(EXAMPLES / name), *args],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    runs = len(list(tmp.glob("run-*.log")))
    (tmp / f"run-{runs + 1}-{name}.log").write_text(output)  # for a person debugging a failure
    recap = {m[1]: (int(m[3]), int(m[5])) for m in _RECAP.finditer(output)}
    return run.returncode, output, recap


def test_fleet_check_diff_converge_idempotent_checked(tmp_path: Path, fleet: list[Cluster]) -> None:
    c1, c2, c3 = fleet
    # c1 matches the policy; c2 has a database and a table owned by postgres; c3 matched it, then
    # someone revoked the app's SELECT behind pgwarden's back
    for c in (c1, c3):
        _converge_with_library(c)
        with c.connect("shop") as conn:
            conn.execute("SET ROLE shop_owner")
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    with c2.connect() as conn:
        conn.execute("CREATE DATABASE shop")
    with c2.connect("shop") as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    with c3.connect("shop") as conn:
        conn.execute("REVOKE SELECT ON orders FROM shop_app")
    inventory = _write_inventory(tmp_path, fleet)
    secret_values = [c.server.password for c in fleet] + [pw for c in fleet for pw in c.passwords.values()]

    code, out, recap = _playbook(tmp_path, inventory, "converge.yml", "--check", "--diff")
    assert code == 0, out
    assert recap == {"c1": (0, 0), "c2": (1, 0), "c3": (1, 0)}, out
    assert 'ALTER TABLE "public"."orders" OWNER TO "shop_owner";' in out, out  # c2's plan, in the diff
    assert 'GRANT SELECT ON TABLE "public"."orders" TO "shop_app";' in out, out  # c3's
    assert ":'PGWARDEN_PASSWORD_SHOP_APP'" in out  # a psql variable stands for the password
    with c2.connect() as conn:  # check mode changed nothing
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'shop%'").fetchone() == (0,)

    code, out, recap = _playbook(tmp_path, inventory, "converge.yml", "--diff", "-vvv")
    assert code == 0, out
    assert recap == {"c1": (0, 0), "c2": (1, 0), "c3": (1, 0)}, out
    leaked = [i for i, s in enumerate(secret_values) if s in out]
    assert not leaked and "SCRAM-SHA-256$" not in out, f"secrets {leaked} appear in the -vvv output"
    for c in (c2, c3):  # converged: the app logs in with its password and reads the table
        with c.connect("shop", user="shop_app", password=c.passwords["shop_app"]) as conn:
            assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE TABLE public.nope (id int)")

    code, out, recap = _playbook(tmp_path, inventory, "converge.yml", "--check")
    assert code == 0 and recap == {"c1": (0, 0), "c2": (0, 0), "c3": (0, 0)}, out
    code, out, recap = _playbook(tmp_path, inventory, "converge.yml")
    assert code == 0 and recap == {"c1": (0, 0), "c2": (0, 0), "c3": (0, 0)}, out

    # the app becomes a member of the owner on c2: it can now change the schema
    with c2.connect("shop") as conn:
        conn.execute("GRANT shop_owner TO shop_app")
    with c2.connect("shop", user="shop_app", password=c2.passwords["shop_app"]) as conn:
        conn.execute("SET ROLE shop_owner")
        conn.execute("DROP TABLE orders")
    summary = tmp_path / "fleet.json"
    code, out, recap = _playbook(
        tmp_path, inventory, "check.yml", "-e", "pgwarden_fail_on=high", "-e", f"pgwarden_summary={summary}"
    )
    assert code == 2, out
    assert recap["c1"] == (0, 0) and recap["c2"] == (0, 1) and recap["c3"] == (0, 0), out
    assert "findings in 1 database(s): shop:" in out, out
    fleet_json = json.loads(summary.read_text())
    assert [h for h, r in fleet_json.items() if r["failed"]] == ["c2"]
    c2_rules = {f["rule"] for f in fleet_json["c2"]["databases"][0]["findings"]}
    # the tampered membership is one finding, the hazard with the revoke as its fix
    assert "access.member-of-owner" in c2_rules and "drift.revoke-membership" not in c2_rules, c2_rules
    assert fleet_json["c1"]["databases"][0]["findings"] == []
    _report_and_mapping(tmp_path, c1)


def _run_module(name: str, args: dict[str, Any], tmp: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a module file as Ansible runs it on a host (arguments in a JSON file), without a play."""
    path = tmp / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"_ansible_remote_tmp": str(tmp), **args}}))
    run = subprocess.run(
        [sys.executable, str(MODULES / f"{name}.py"), str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in run.stdout + run.stderr, run
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def test_module_failures_are_one_message(tmp_path: Path) -> None:
    # caught before any connection, or by the connection itself: no server needed
    password = secrets.token_urlsafe(12)
    login = {"login_host": "127.0.0.1", "login_port": 1, "login_user": "postgres", "login_password": password}

    bad_policy = _run_module("policy", {"policy": POLICY + "\n[owner2]\nx = 1\n", **login}, tmp_path)
    assert bad_policy["failed"] and "owner2: unknown key" in bad_policy["msg"]

    unknown = _run_module("policy", {"policy": POLICY, "passwords": {"nobody": "pw-x1"}, **login}, tmp_path)
    assert unknown["failed"] and "'nobody' is neither a login role" in unknown["msg"]

    refused = _run_module("policy", {"policy": POLICY, **login}, tmp_path)
    assert refused["failed"] and "cannot open the admin connection" in refused["msg"] and "hint:" in refused["msg"]
    assert password not in json.dumps(refused)

    lock = _run_module("policy", {"policy": POLICY, "lock_timeout": "soon", **login}, tmp_path)
    assert lock["failed"] and lock["msg"].startswith("lock_timeout:")


def test_collection_builds_and_installs_from_its_tarball(tmp_path: Path) -> None:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "c")}

    def run(*args: str) -> str:
        done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done
        return done.stdout

    run(str(BIN / "ansible-galaxy"), "collection", "build", str(MODULES.parent.parent))
    (tarball,) = tmp_path.glob("pgwarden-postgresql-*.tar.gz")
    run(str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(tmp_path / "c"), str(tarball))
    installed = tmp_path / "c" / "ansible_collections" / "pgwarden" / "postgresql"
    assert (installed / "plugins" / "module_utils" / "engine.py").exists()
    assert not list(installed.rglob("__pycache__"))
    # every module's documentation parses (with the shared fragment) and lists exactly the options it takes
    names = sorted(p.stem for p in MODULES.glob("*.py"))
    assert names == ["expire", "policy", "report"]
    docs = json.loads(run(str(BIN / "ansible-doc"), "--json", *(f"pgwarden.postgresql.{n}" for n in names)))
    for name in names:
        options = docs[f"pgwarden.postgresql.{name}"]["doc"]["options"]
        assert set(options) == _argument_spec(name), name
        assert options["login_password"]["type"] == "str" and options["policy"]["required"], name
    assert {"state", "fail_on", "passwords"} <= set(docs["pgwarden.postgresql.policy"]["doc"]["options"])


def _argument_spec(module: str) -> set[str]:
    """The option names a module's AnsibleModule takes: the shared CONNECTION_ARGS plus its own keywords."""
    tree = ast.parse((MODULES / f"{module}.py").read_text(encoding="utf-8"))
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "AnsibleModule"]
    (spec,) = [k.value for k in call.keywords if k.arg == "argument_spec"]
    assert isinstance(spec, ast.Call) and [getattr(a, "id", "") for a in spec.args] == ["CONNECTION_ARGS"]
    common = ast.parse((MODULES.parent / "module_utils" / "common.py").read_text(encoding="utf-8"))
    (shared,) = [
        n.value
        for n in ast.walk(common)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONNECTION_ARGS"
    ]
    assert isinstance(shared, ast.Call)
    return {k.arg for k in shared.keywords if k.arg} | {k.arg for k in spec.keywords if k.arg}


def _report_and_mapping(tmp_path: Path, c1: Cluster) -> None:
    """On a converged cluster: the policy as a YAML mapping plans nothing; report returns data."""
    mapping = {
        "database": {"name": "shop"},
        "owner": {"name": "shop_owner", "password_env": "PGWARDEN_PASSWORD_SHOP_OWNER"},
        "access": [{"name": "shop_app", "level": "readwrite", "password_env": "PGWARDEN_PASSWORD_SHOP_APP"}],
    }
    dsn = c1.server.conninfo("postgres")
    # the same policy as a YAML mapping: nothing to change on a converged cluster
    planned = _run_module("policy", {"policy": mapping, "dsn": dsn, "_ansible_check_mode": True}, tmp_path)
    assert planned["changed"] is False and planned["summary"]["databases"] == 1, planned

    # a password the module is not given comes from the variable the policy names
    owner_only = {"policy": POLICY, "dsn": dsn, "_ansible_check_mode": True}
    owner_only["passwords"] = {"shop_owner": c1.passwords["shop_owner"]}
    same = _run_module("policy", owner_only, tmp_path, {"PGWARDEN_PASSWORD_SHOP_APP": c1.passwords["shop_app"]})
    assert same["changed"] is False, same
    new_password = secrets.token_urlsafe(12)
    other = _run_module("policy", owner_only, tmp_path, {"PGWARDEN_PASSWORD_SHOP_APP": new_password})
    (step,) = other["databases"][0]["steps"]
    assert other["changed"] and step["role"] == "shop_app" and ":'PGWARDEN_PASSWORD_SHOP_APP'" in step["sql"], step
    assert new_password not in json.dumps(other)

    with c1.connect("shop") as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier("shop_app")))
    report = _run_module("report", {"policy": POLICY, "dsn": dsn}, tmp_path)
    assert report["changed"] is False, report
    (only,) = report["reports"]
    assert only["database"] == "shop"
    # one finding: the hazard, with the revoke apply would run as its fix
    assert any(
        f["rule"] == "create.schema" and f["role"] == "shop_app" and f["fix"].startswith("REVOKE")
        for f in only["findings"]
    ), only["findings"]
    with c1.connect("shop") as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM shop_app")
    _one_database_fails(tmp_path, c1)


def _one_database_fails(tmp_path: Path, c1: Cluster) -> None:
    """Two databases match; the second cannot take a lock: the message names it and what changed before."""
    with c1.connect() as conn:
        conn.execute("CREATE DATABASE shop_locked")
    with c1.connect("shop_locked") as conn:
        conn.execute("CREATE TABLE busy (id int)")  # owned by postgres: apply must ALTER its owner
    with c1.connect("shop") as conn:
        conn.execute("REVOKE SELECT ON orders FROM shop_app")
    args = {"policy": POLICY, "dsn": c1.server.conninfo("postgres"), "database": "shop*", "lock_timeout": "200ms"}
    args["passwords"] = c1.passwords
    with c1.connect("shop_locked") as reader, reader.transaction():
        reader.execute("SELECT count(*) FROM busy")  # live traffic: ACCESS SHARE until the transaction ends
        result = _run_module("policy", args, tmp_path)
    assert result["failed"] and result["changed"] is True, result
    assert result["msg"].startswith("database shop_locked: a lock could not be taken within lock_timeout"), result
    assert "; nothing was changed; applied before this failure, and kept: shop; hint: " in result["msg"], result
    assert [d["database"] for d in result["databases"]] == ["shop"]
    with c1.connect("shop_locked") as conn:
        assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'busy'").fetchone() == ("postgres",)
