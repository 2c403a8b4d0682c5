"""Hazard rules: pure functions over (policy, snapshot, hazard data) -> findings; each module registers its own."""

from __future__ import annotations

import importlib
import pkgutil

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.rules.catalog import DRIFT_CATALOG, DRIFT_SEVERITY, Registered, Rule, registered
from pgwarden.rules.common import Check
from pgwarden.snapshot import Snapshot

__all__ = ["CATALOG", "CHECKS", "DRIFT_CATALOG", "DRIFT_SEVERITY", "REGISTERED", "RULES", "Rule", "run_rules"]


def _discover() -> tuple[Registered, ...]:
    """Imports every module of the package, sorted by name (each registers its checks with
    `catalog.reports`, as commands/ are found by cli.py): a new rule is one module, or one check in one."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__))
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    # a module that another imports registers first: the order is the modules' names', then each one's own
    position = {f"{__name__}.{name}": i for i, name in enumerate(names)}
    return tuple(sorted(registered(), key=lambda r: position[r.check.__module__]))


#: every check with the rules it reports, in module order, then in each module's order
REGISTERED: tuple[Registered, ...] = _discover()
CHECKS: tuple[Check, ...] = tuple(r.check for r in REGISTERED)
#: the hazard rules, in the order of REGISTERED (docs/rules.md lists them so)
CATALOG: tuple[Rule, ...] = tuple(rule for r in REGISTERED for rule in r.rules)
RULES: dict[str, Rule] = {r.id: r for r in CATALOG + DRIFT_CATALOG}


def run_rules(policy: Policy, snap: Snapshot, hz: HazardData) -> list[Finding]:
    """Every hazard rule over the snapshot; pure."""
    return [f for check in CHECKS for f in check(policy, snap, hz)]
