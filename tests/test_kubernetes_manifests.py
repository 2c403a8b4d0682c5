"""The Kubernetes recipe on paper: every manifest parses, runs real pgwarden arguments, fits the Secret and image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pgwarden.cli import cli
from pgwarden.policy import parse_policy

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "examples" / "kubernetes"
MANIFESTS = sorted(K8S.glob("*.yaml"))


def _docs() -> dict[str, dict[str, Any]]:
    """kind -> the one document of that kind."""
    out: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            # the expire CronJob (issue 24) is the one second document of a kind, under its own key
            key = "CronJob/expire" if doc.get("metadata", {}).get("name") == "pgwarden-expire" else doc["kind"]
            assert key not in out, f"{path.name}: a second {doc['kind']}"
            out[key] = doc
    return out


def _pod_specs(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        "CronJob": docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Job": docs["Job"]["spec"]["template"]["spec"],
    }


def _parse(args: list[str]) -> click.Context:
    """Parse a container's arguments with pgwarden's own CLI (no command runs): unknown options,
    bad choices and missing values fail here as they would in the pod."""
    # pgwarden's global options are flags without values: the command is the first other word
    at = next(i for i, a in enumerate(args) if not a.startswith("-"))
    ctx = cli.make_context("pgwarden", list(args[: at + 1]))
    command = cli.get_command(ctx, args[at])
    assert command is not None, args
    return command.make_context(args[at], list(args[at + 1 :]), parent=ctx)


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_manifest_is_yaml_with_a_kind(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert docs and all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs)


def test_the_cronjob_checks_with_sarif_and_the_job_applies_only_when_resumed() -> None:
    docs = _docs()
    assert {"Secret", "ConfigMap", "CronJob", "Job", "Kustomization"} <= set(docs)
    assert docs["CronJob"]["apiVersion"] == "batch/v1" and docs["Job"]["apiVersion"] == "batch/v1"
    cron = docs["CronJob"]
    assert len(cron["spec"]["schedule"].split()) == 5 and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0  # exit 1 = findings, not a flake
    (check,) = _pod_specs(docs)["CronJob"]["containers"]
    ctx = _parse(check["args"])
    assert ctx.command.name == "check" and ctx.params["fmt"] == "sarif" and ctx.params["fail_on"] == "high"

    job = docs["Job"]["spec"]
    assert job["suspend"] is True, "the apply Job must wait for a person to resume it"
    assert job["backoffLimit"] == 0
    (plan,) = job["template"]["spec"]["initContainers"]
    (apply,) = job["template"]["spec"]["containers"]
    assert _parse(plan["args"]).command.name == "plan"
    applied = _parse(apply["args"])
    assert applied.command.name == "apply" and applied.params["yes"] and applied.params["lock_timeout"] == "5s"


def test_pods_read_the_policy_from_the_configmap_and_credentials_from_the_secret() -> None:
    docs = _docs()
    secret = docs["Secret"]
    keys = set(secret["stringData"])
    policy = parse_policy(docs["ConfigMap"]["data"]["policy.toml"], "policy-configmap.yaml")
    password_envs = {env for _, env in policy.login_roles() if env}
    assert password_envs and password_envs <= keys, "every password_env of the policy must be a key of the Secret"
    assert {"PGHOST", "PGUSER", "PGPASSWORD"} <= keys
    for kind, spec in _pod_specs(docs).items():
        assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"{kind}/{container['name']}"
            assert [e["secretRef"]["name"] for e in container["envFrom"]] == [secret["metadata"]["name"]], where
            assert not container.get("env"), f"{where}: credentials come from the Secret only"
            (mount,) = container["volumeMounts"]
            assert volumes[mount["name"]]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"], where
            config = _parse(container["args"]).params["config"]
            assert config == f"{mount['mountPath']}/policy.toml", where
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


def test_the_image_runs_pgwarden_as_the_user_the_pods_require() -> None:
    text = (ROOT / "Containerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["pgwarden"]' in text
    uid = re.search(r"^USER (\d+)$", text, re.MULTILINE)
    assert uid is not None, "the image must name a numeric non-root USER (runAsNonRoot checks it)"
    # only pgwarden and what it depends on: no extras, nothing else installed by pip or apt
    assert re.findall(r"pip install[^\n]*", text) == [
        "pip install --no-cache-dir --no-index --find-links /wheels pgwarden \\"
    ]
    assert "apt-get" not in text
    for spec in _pod_specs(_docs()).values():
        assert spec["securityContext"]["runAsUser"] == int(uid[1])
    copied = re.findall(r"^COPY (?!--)(.+) \S+$", text, re.MULTILINE)
    for line in copied:
        for name in line.split():
            assert (ROOT / name).exists(), f"Containerfile copies {name}, which is not in the repository"
