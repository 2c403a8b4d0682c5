"""Run the manifests' pgwarden commands, with the Secret's keys as environment, on a throwaway local server.

What this checks without a Kubernetes cluster or a container engine: the containers' exact argument
lists, the policy in the ConfigMap and the Secret's variable names, end to end against a real
PostgreSQL: check (SARIF, exit 1 on a fresh server), the apply Job's plan and apply, check again (exit 0).

    python examples/kubernetes/run_locally.py [major version, default 17]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pgwarden.server import LocalServer, download_binaries

HERE = Path(__file__).resolve().parent
POLICY_PATH = "/etc/pgwarden/policy.toml"


def _manifests() -> dict[str, dict[str, Any]]:
    docs = [doc for path in sorted(HERE.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    return {doc["metadata"]["name"]: doc for doc in docs if "metadata" in doc}


def main() -> int:
    version = int(sys.argv[1]) if len(sys.argv) > 1 else 17
    docs = _manifests()
    pgwarden = shutil.which("pgwarden") or sys.exit("pgwarden is not on PATH")
    cron = docs["pgwarden-check"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    job = docs["pgwarden-apply"]["spec"]["template"]["spec"]
    steps = [
        ("check", cron, 1),
        ("plan", job["initContainers"][0]["args"], 0),
        ("apply", job["containers"][0]["args"], 0),
        ("check", cron, 0),
    ]
    with tempfile.TemporaryDirectory() as tmp, LocalServer(download_binaries(version)) as server:
        policy = Path(tmp) / "policy.toml"
        policy.write_text(docs["pgwarden-policy"]["data"]["policy.toml"])
        env = dict(docs["pgwarden-credentials"]["stringData"])
        env.update(PGHOST=server.host, PGPORT=str(server.port), PGUSER=server.superuser, PGPASSWORD=server.password)
        env.update(PGSSLMODE="disable", HOME="/nonexistent", NO_COLOR="1", PATH="/usr/bin:/bin")
        for name, args, expected in steps:
            argv = [str(policy) if a == POLICY_PATH else a for a in args]
            run = subprocess.run([pgwarden, *argv], env=env, capture_output=True, text=True, timeout=300)
            extra = ""
            if "sarif" in argv:
                extra = f", {len(json.loads(run.stdout)['runs'][0]['results'])} SARIF results"
            print(f"{name}: exit {run.returncode} (expected {expected}){extra}")
            if run.returncode != expected:
                print(run.stdout[-2000:], run.stderr[-2000:], sep="\n")
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
