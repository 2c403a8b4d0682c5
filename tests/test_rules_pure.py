"""Hazard rules, findings rendering, probe expectations and report renderers: pure, no server."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from pgwarden.check import drift_finding, findings_for
from pgwarden.findings import Finding, display_name, summary, to_json
from pgwarden.hazards import HazardData
from pgwarden.plan import plan
from pgwarden.probe import ACTIONS, Attempt, ProbeResult, expected
from pgwarden.render import findings_text as render_text
from pgwarden.render import probe_junit as render_junit
from pgwarden.render import probe_text, render_report, to_sarif
from pgwarden.report import Cell, Report
from pgwarden.rules import CATALOG, RULES, run_rules
from pgwarden.snapshot import DefaultAcl, Membership, ObjectRef, Role
from test_plan_pure import APP, OWNER, POSTGRES, RO, _policy, _role, _table_group, acl, compliant

VENDOR = Path(__file__).parent / "vendor"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


@pytest.mark.parametrize("version", [140000, 150000, 160000, 170000, 180000])
def test_compliant_snapshot_has_no_hazard(version: int) -> None:
    snap = compliant(version)
    assert run_rules(_policy(), snap, HazardData()) == []
    assert findings_for(_policy(), snap, HazardData(), plan(_policy(), snap)) == []


def test_membership_of_owner_and_predefined_roles() -> None:
    pwad = 4000
    snap = compliant()
    roles = {**snap.roles, pwad: Role(pwad, "pg_write_all_data", False, True, False, False, False, False, False, -1)}
    snap = dataclasses.replace(snap, roles=roles, memberships=(Membership(OWNER, APP, POSTGRES, False, True, True),))
    hz = HazardData.build(
        memberships=[{"member": APP, "role": OWNER, "direct": True}, {"member": RO, "role": pwad, "direct": False}]
    )
    found = run_rules(_policy(), snap, hz)
    owner = [f for f in found if f.rule == "access.member-of-owner"]
    assert len(owner) == 1 and owner[0].role == "app" and owner[0].fix == 'REVOKE "own" FROM "app"'
    priv = [f for f in found if f.rule == "access.member-of-privileged"]
    assert len(priv) == 1 and "indirectly" in priv[0].message and priv[0].object == "role pg_write_all_data"


def test_attributes_superuser_is_critical_others_high() -> None:
    snap = compliant()
    roles = {**snap.roles, APP: _role(APP, superuser=True), RO: _role(RO, createdb=True, replication=True)}
    found = [
        f
        for f in run_rules(_policy(), dataclasses.replace(snap, roles=roles), HazardData())
        if f.rule == "access.attribute"
    ]
    assert {(f.role, f.severity, f.fix) for f in found} == {
        ("app", "critical", 'ALTER ROLE "app" NOSUPERUSER'),
        ("ro", "high", 'ALTER ROLE "ro" NOCREATEDB'),
        ("ro", "high", 'ALTER ROLE "ro" NOREPLICATION'),
    }


def test_owner_createrole_only_before_16() -> None:
    for version, found in ((150000, True), (160000, False)):
        snap = compliant(version)
        snap = dataclasses.replace(snap, roles={**snap.roles, OWNER: _role(OWNER, createrole=True)})
        assert ("owner.createrole" in rules_of(run_rules(_policy(), snap, HazardData()))) is found


def test_ownership_not_owner_and_escaped_owner() -> None:
    policy = _policy()
    policy = policy.model_copy(update={"owner": policy.owner.model_copy(update={"deploy_logins": ("bi",)})})
    stray = dataclasses.replace(_table_group(1), owner=POSTGRES, objects=(ObjectRef(1, "Stray Table", "r", None),))
    escaped = dataclasses.replace(_table_group(1), owner=16387, objects=(ObjectRef(2, "escaped", "r", None),))
    snap = compliant(groups=[_table_group(2), stray, escaped])
    found = run_rules(policy, snap, HazardData())
    objects = {(f.rule, f.object) for f in found}
    assert ("ownership.not-owner", 'table public."Stray Table"') in objects
    assert ("ownership.escaped-owner", "table public.escaped") in objects


def test_default_privileges_for_another_role() -> None:
    snap = compliant()
    # a global entry holds the role's own privileges too (PostgreSQL materialises the default)
    own = " ".join(snap.caps.table_owner_privileges)
    entry = DefaultAcl(APP, 0, "r", acl((APP, APP, own), (APP, RO, "SELECT")))
    snap = dataclasses.replace(snap, default_acls=snap.default_acls + (entry,))
    found = [f for f in run_rules(_policy(), snap, HazardData()) if f.rule == "defaults.wrong-role"]
    assert len(found) == 1 and found[0].fix == 'ALTER DEFAULT PRIVILEGES FOR ROLE "app" REVOKE ALL ON TABLES FROM "ro"'


def test_public_create_and_temp() -> None:
    snap = compliant()
    schema = dataclasses.replace(snap.schemas[0], acl=snap.schemas[0].acl | acl((OWNER, 0, "CREATE")))
    db = dataclasses.replace(snap.database, acl=snap.database.acl | acl((OWNER, 0, "TEMPORARY CREATE")))  # type: ignore[arg-type]  # noqa: E501
    snap = dataclasses.replace(snap, schemas=(schema,), database=db)
    found = rules_of(run_rules(_policy(), snap, HazardData()))
    assert {"create.schema", "create.database", "temp.public"} <= found
    relaxed = _policy(hardening=_policy().hardening.model_copy(update={"revoke_public_connect": False}))
    assert "temp.public" not in rules_of(run_rules(relaxed, snap, HazardData()))


def test_hazard_rows_security_definer_rls_and_passwords() -> None:
    snap = dataclasses.replace(compliant(), passwords={OWNER: "SCRAM-SHA-256$4096:x", APP: "md5abc", RO: None})
    hz = HazardData.build(
        functions=[
            {
                "schema": "public",
                "name": "f",
                "args": "integer",
                "owner": OWNER,
                "kind": "f",
                "public_execute": False,
                "fixed_search_path": False,
                "executable_by": [APP],
            }
        ],
        rls=[
            {
                "kind": "table",
                "schema": "public",
                "name": "t",
                "owner": OWNER,
                "forced": False,
                "base_schema": None,
                "base_name": None,
            },
            {
                "kind": "view",
                "schema": "public",
                "name": "v",
                "owner": OWNER,
                "forced": None,
                "base_schema": "public",
                "base_name": "t",
            },
        ],
        memberships=[{"member": APP, "role": OWNER, "direct": True}],
    )
    found = run_rules(_policy(), snap, hz)
    by_rule = {f.rule: f for f in found}
    assert (
        by_rule["function.security-definer"].fix
        == 'ALTER FUNCTION "public"."f"(integer) SET search_path = pg_catalog, pg_temp'
    )
    assert by_rule["rls.not-forced"].role == "app"
    assert by_rule["rls.view-bypass"].object == "view public.v"
    assert by_rule["login.md5-password"].role == "app" and by_rule["login.no-password"].role == "ro"
    v14 = dataclasses.replace(snap, caps=dataclasses.replace(snap.caps, version_num=140000))
    assert "rls.view-bypass" not in rules_of(run_rules(_policy(), v14, hz))


def test_drift_findings_carry_the_step_sql_and_severity() -> None:
    snap = compliant(
        groups=[
            _table_group(
                2,
                acl_=acl(
                    (OWNER, OWNER, "SELECT INSERT UPDATE DELETE TRUNCATE REFERENCES TRIGGER"),
                    (OWNER, APP, "SELECT INSERT UPDATE DELETE TRUNCATE"),
                    (OWNER, RO, "SELECT"),
                ),
            )
        ]
    )
    steps = plan(_policy(), snap).steps
    assert steps
    found = [drift_finding(s) for s in steps]
    assert all(f.rule.startswith("drift.") and f.rule in RULES and f.fix for f in found)
    assert any(f.rule == "drift.revoke" and f.severity == "high" and "TRUNCATE" in (f.fix or "") for f in found)


def _sample() -> list[Finding]:
    return [
        Finding(
            "access.member-of-owner", "critical", "role own", "app", "app is a member of own", 'REVOKE "own" FROM "app"'
        ),
        Finding(
            "drift.grant", "medium", 'table public."T"', "ro", "missing SELECT", 'GRANT SELECT ON "public"."T" TO "ro"'
        ),
        Finding("temp.public", "medium", "database shop", "PUBLIC", "PUBLIC may create temporary tables", None),
    ]


def test_summary_fail_on_and_text() -> None:
    found = _sample()
    assert summary(found, "critical")["failed"] is True
    assert summary(found[1:], "high")["failed"] is False
    assert summary(found[1:], "medium")["by_severity"] == {"critical": 0, "high": 0, "medium": 2, "low": 0}
    text = render_text(found)
    assert "CRITICAL access.member-of-owner  role own (role app)" in text and "fix: REVOKE" in text
    assert "no findings" in render_text([])


def test_json_validates_against_the_shipped_schema() -> None:
    from importlib import resources

    schema = json.loads(resources.files("pgwarden.schemas").joinpath("check.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(to_json(_sample(), "low", database="shop", server_version="16.1"))
    bad = to_json(_sample(), "low", database="shop", server_version="16.1")
    bad["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(bad)


def test_sarif_validates_against_the_vendored_schema() -> None:
    schema = json.loads((VENDOR / "sarif-2.1.0.json").read_text("utf-8"))
    doc = to_sarif(_sample(), RULES.values(), version="0.1.0", target="shop")
    jsonschema.Draft4Validator(schema).validate(doc)
    results = doc["runs"][0]["results"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["ruleId"] for r in results] == [f.rule for f in _sample()]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    assert results[0]["level"] == "error" and results[2]["level"] == "warning"


def test_every_rule_is_documented() -> None:
    page = (DOCS / "rules.md").read_text("utf-8")
    for rule in CATALOG:
        assert f"`{rule.id}`" in page, rule.id
    assert "drift." in page


def test_display_name_quotes_only_when_needed() -> None:
    assert display_name("public", "items") == "public.items"
    assert display_name("Sales", 'we"ird') == '"Sales"."we""ird"'


def test_probe_expectations_follow_the_policy() -> None:
    policy = _policy()
    assert all(expected(policy, "owner", a) for a in ACTIONS)
    assert expected(policy, "readwrite", "insert") and not expected(policy, "readwrite", "truncate")
    assert not expected(policy, "readwrite", "create-temp-table")
    relaxed = _policy(hardening=policy.hardening.model_copy(update={"revoke_public_connect": False}))
    assert expected(relaxed, "readonly", "create-temp-table")
    assert expected(policy, "readonly", "select") and not expected(policy, "readonly", "sequence-usage")


def test_probe_matrix_text_and_junit() -> None:
    attempts = (
        Attempt("app", "readwrite", "select", "public.t", True, "allowed"),
        Attempt("app", "readwrite", "truncate", "public.t", False, "allowed"),
        Attempt("ro", "readonly", "insert", "public.t", False, "error", sqlstate="55000", message="cannot insert"),
    )
    result = ProbeResult("shop", "16.1", "set-role", attempts)
    assert not result.ok and len(result.failures) == 2
    text = probe_text(result)
    assert "allowed! (expected denied)" in text and "UNEXPECTED ro insert public.t: error" in text
    root = ET.fromstring(render_junit(result))
    assert root.get("failures") == "2" and len(root.findall(".//testcase")) == 3


def _report() -> Report:
    cells = (
        Cell("app", "readwrite", "public", "table", "SELECT", 3, 3, 3),
        Cell("app", "readwrite", "public", "table", "TRUNCATE", 1, 3, 0),
        Cell("PUBLIC", "public", "public", "routine", "EXECUTE", 0, 1, 0),
    )
    return Report(
        "shop",
        "16.1",
        (("app", "readwrite"), ("PUBLIC", "public")),
        ("public",),
        cells,
        ({"schema": "public", "kind": "table", "owner": "own", "count": 3},),
        ({"for_role": "own", "schema": "public", "objects": "tables", "grants": {"app": ["SELECT"]}},),
        ({"member": "app", "role": "own", "admin": False, "inherit": True, "set": True, "direct": True},),
        tuple(_sample()),
    )


def test_report_renderers() -> None:
    report = _report()
    assert len(report.deviations) == 1
    page = render_report(report, "html")
    assert page.count('<td class="deviation"') == 1 and '<table id="matrix">' in page and "http" not in page
    md = render_report(report, "markdown")
    assert "**1/3 (want 0)**" in md
    assert "TRUNCATE 1/3 (want 0)" in render_report(report, "text")
    assert json.loads(render_report(report, "json"))["deviations"] == 1


def test_adopt_fixes_are_shell_commands_that_name_the_role_exactly() -> None:
    import shlex

    from pgwarden.rules.common import adopt_fix

    for name in ("postgres", 'We"ird role', "it's", "$(rm -rf ~)", "a;b"):
        assert shlex.split(adopt_fix(name)) == ["pgwarden", "adopt", "--from", name, "--yes"], name
