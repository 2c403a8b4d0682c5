"""Time the example playbooks over 20 databases on 3 local clusters, forks 1 vs 4, against `pgwarden -d -j`.

    python examples/ansible/bench_fleet.py [--runs 3] [--tables 20] [--versions 14,17]

Starts three throwaway clusters, creates tenant_01..tenant_20 (7, 7 and 6 per cluster) with a few
tables each, converges them once, then times, on the converged fleet (the run you repeat):
  - the playbooks with one inventory host per cluster (`database: tenant_*`, the module handles a
    cluster's databases one after the other) and with one host per database, forks 1 and 4;
  - `pgwarden check -d 'tenant_*' -j N` on each cluster in turn, the CLI's own parallelism.
Prints medians (and min-max) as a Markdown table for docs/fleet.md. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

from pgwarden.server import LocalServer, download_binaries

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
DATABASES = 20
PER_CLUSTER = (7, 7, 6)


def _create(server: LocalServer, names: list[str], tables: int) -> None:
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    for name in names:
        with psycopg.connect(server.conninfo(name), autocommit=True) as conn:
            for i in range(tables):
                conn.execute(
                    sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v text)").format(sql.Identifier(f"t{i}"))
                )


def _inventory(tmp: Path, servers: list[LocalServer], dbs: list[list[str]], per_database: bool) -> Path:
    passwords = {"tenant_owner": secrets.token_urlsafe(16), "tenant_app": secrets.token_urlsafe(16)}
    hosts: dict[str, dict[str, object]] = {}
    for n, (server, names) in enumerate(zip(servers, dbs, strict=True), 1):
        common = {"pg_host": server.host, "pg_port": server.port, "pg_admin_password": server.password}
        common["pgwarden_passwords"] = passwords
        if per_database:
            for db in names:
                hosts[f"c{n}-{db}"] = common | {"pgwarden_databases": db}
        else:
            hosts[f"c{n}"] = common | {"pgwarden_databases": "tenant_*"}
    path = tmp / ("per-database.yml" if per_database else "per-cluster.yml")
    path.write_text(yaml.safe_dump({"postgres_clusters": {"hosts": hosts}}))
    return path


def _env(tmp: Path, forks: int) -> dict[str, str]:
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp),
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_NOCOLOR": "1",
    }


def _time(argv: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    run = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - start
    if run.returncode not in ok:
        sys.exit(f"{' '.join(argv)} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return took


def _fmt(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} s ({min(samples):.1f}-{max(samples):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tables", type=int, default=20, help="tables per database")
    ap.add_argument("--versions", default="14,17", help="PostgreSQL majors for the three clusters, cycled")
    args = ap.parse_args()
    versions = [int(v) for v in args.versions.split(",")]
    names = [f"tenant_{i:02d}" for i in range(1, DATABASES + 1)]
    dbs = [names[:7], names[7:14], names[14:]]
    servers = [LocalServer(download_binaries(versions[i % len(versions)])) for i in range(3)]
    rows: list[tuple[str, str]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            for server, these in zip(servers, dbs, strict=True):
                server.start()
                _create(server, these, args.tables)
            inventories = {False: _inventory(tmp, servers, dbs, False), True: _inventory(tmp, servers, dbs, True)}
            playbook = [str(BIN / "ansible-playbook"), "-i"]
            # converge once; what follows is the steady state a scheduled run sees
            first = _time([*playbook, str(inventories[False]), str(HERE / "converge.yml")], _env(tmp, 4), tmp)
            rows.append(
                (
                    "ansible, a host per cluster (3), first converge of the 20 databases, forks 4 (one run)",
                    f"{first:.1f} s",
                )
            )
            for per_database in (False, True):
                layout = "a host per database (20)" if per_database else "a host per cluster (3)"
                for book, label in (("check.yml", "state: checked"), ("converge.yml", "state: present")):
                    for forks in (1, 4):
                        argv = [*playbook, str(inventories[per_database]), str(HERE / book)]
                        argv += ["-e", f"pgwarden_summary={tmp / 'fleet.json'}"]
                        samples = [_time(argv, _env(tmp, forks), tmp) for _ in range(args.runs)]
                        rows.append((f"ansible, {layout}, {label}, forks {forks}", _fmt(samples)))
            policy = tmp / "policy.toml"
            policy.write_text(
                '[database]\nname = "tenant_01"\n[owner]\nname = "tenant_owner"\n'
                'password_env = "PGWARDEN_PASSWORD_TENANT_OWNER"\n'
                '[[access]]\nname = "tenant_app"\nlevel = "readwrite"\npassword_env = "PGWARDEN_PASSWORD_TENANT_APP"\n'
                '[[access]]\nname = "tenant_ro"\nlevel = "readonly"\nlogin = false\n'
            )
            for jobs in (1, 4):
                samples = []
                for _ in range(args.runs):
                    took = 0.0
                    for server in servers:
                        env = _env(tmp, 1) | {"PGWARDEN_DSN": server.conninfo("postgres")}
                        argv = [
                            str(BIN / "pgwarden"),
                            "-q",
                            "check",
                            "-c",
                            str(policy),
                            "-d",
                            "tenant_*",
                            "-j",
                            str(jobs),
                        ]
                        took += _time(argv, env, tmp, ok=(0, 1))
                    samples.append(took)
                rows.append(
                    (f"pgwarden check -d 'tenant_*' -j {jobs}, the 3 clusters one after the other", _fmt(samples))
                )
        finally:
            for server in servers:
                server.cleanup()
    print(
        f"20 databases ({args.tables} tables each) on 3 clusters (PostgreSQL {args.versions}), "
        f"{os.cpu_count()} CPUs (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after), "
        f"median of {args.runs} runs (min-max)\n"
    )
    print("| run | time |\n|---|---|")
    for label, figure in rows:
        print(f"| {label} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
