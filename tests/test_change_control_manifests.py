"""The Kubernetes recipe gains `expire`: a CronJob whose arguments pgwarden's own CLI parses, like the check's."""

from __future__ import annotations

from test_kubernetes_manifests import _docs, _parse


def test_the_expire_cronjob_runs_expire_with_the_checks_inputs() -> None:
    docs = _docs()
    cron = docs["CronJob/expire"]
    assert cron["apiVersion"] == "batch/v1" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    minutes = cron["spec"]["schedule"].split()
    assert len(minutes) == 5 and minutes[0] == "*/5"
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    check = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == check["securityContext"] and spec["volumes"] == check["volumes"]
    (container,) = spec["containers"]
    (checker,) = check["containers"]
    ctx = _parse(container["args"])
    assert ctx.command.name == "expire" and ctx.params["fmt"] == "json"
    assert ctx.params["config"] == _parse(checker["args"]).params["config"]
    for key in ("envFrom", "volumeMounts", "securityContext", "image"):
        assert container[key] == checker[key], key
    assert "cronjob-expire.yaml" in docs["Kustomization"]["resources"]
