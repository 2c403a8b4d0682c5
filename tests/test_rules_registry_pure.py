"""The rule registry: each module registers its checks with the rules they report; no server."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.caps import Capabilities
from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.rules import CATALOG, CHECKS, REGISTERED, RULES, run_rules
from pgwarden.rules.catalog import Rule, reports
from test_plan_pure import APP, OWNER, RO, _policy, _table_group, acl, compliant

RULES_DIR = Path(__file__).resolve().parent.parent / "src" / "pgwarden" / "rules"


def test_each_check_runs_once_and_each_rule_has_one_check() -> None:
    assert len(CHECKS) == len(set(CHECKS)) == len(REGISTERED)
    owners = Counter(rule.id for entry in REGISTERED for rule in entry.rules)
    assert owners and all(n == 1 for n in owners.values()), owners
    assert [r.id for r in CATALOG] == list(owners)


def test_every_rule_id_a_module_reports_is_registered() -> None:
    """finding("x.y", ...) with an id no check registers would fail at run time (its severity is the catalog's)."""
    used = set()
    for path in RULES_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "finding" and node.args:
                # the id, or the ids of `"a" if x else "b"` (not a prefix: "create." + kind)
                ids = (n.value for n in ast.walk(node.args[0]) if isinstance(n, ast.Constant))
                used |= {i for i in ids if isinstance(i, str) and re.fullmatch(r"[a-z-]+\.[a-z0-9-]+", i)}
    assert len(used) > 30
    assert used <= set(RULES), used - set(RULES)
    assert {r.id for r in CATALOG} == used  # and no registered rule that nothing reports


def test_a_grant_option_the_policy_keeps_is_one_finding() -> None:
    """check_grant_options was listed twice in the hand-written CHECKS: every grant option came out twice from
    run_rules (check's output hid it: it drops equal findings)."""
    policy = _policy()
    grants = tuple(
        g.model_copy(update={"grant_option": ("SELECT",)}) if g.role == "app" else g for g in policy.database.grants
    )
    policy = policy.model_copy(update={"database": policy.database.model_copy(update={"grants": grants})})
    owner_privs = " ".join(Capabilities(160000).table_owner_privileges)
    group = _table_group(
        1,
        acl_=acl((OWNER, OWNER, owner_privs), (OWNER, APP, "INSERT UPDATE DELETE"), (OWNER, APP, "SELECT", True)),
    )
    group = dataclasses.replace(group, acl=group.acl | acl((OWNER, RO, "SELECT")))
    found = run_rules(policy, compliant(groups=[group]), HazardData())
    found = [f for f in found if f.rule == "privilege.grant-option"]
    assert len(found) == 1, found
    assert found[0].role == "app" and "SELECT" in found[0].message


def test_a_rule_registered_by_two_checks_is_refused() -> None:
    taken = CATALOG[0]

    def check_again() -> Iterator[Finding]:
        yield from ()

    with pytest.raises(ValueError, match=f"rule '{taken.id}' is registered by"):
        reports(Rule(taken.id, "low", "t", "w", "h"))(check_again)
    assert RULES[taken.id] is taken
