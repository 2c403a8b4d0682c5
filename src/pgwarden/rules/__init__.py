"""Hazard rules: pure functions over (policy, snapshot, hazard data) -> findings; the rule catalog."""

from __future__ import annotations

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.rules.bookkeeping import check_bookkeeping
from pgwarden.rules.catalog import CATALOG, DRIFT_CATALOG, DRIFT_SEVERITY, RULES, Rule
from pgwarden.rules.cluster import check_outside_grants, check_user_mappings
from pgwarden.rules.common import Check
from pgwarden.rules.exceptions import check_exception_paths
from pgwarden.rules.leases import check_leases
from pgwarden.rules.managed import (
    check_admin_option,
    check_iam_lockout,
    check_provider_default_acls,
    check_provider_roles_reached,
)
from pgwarden.rules.memberships import check_owner_memberships
from pgwarden.rules.objects import check_access_owns, check_default_acls, check_ownership
from pgwarden.rules.outsiders import check_outsiders
from pgwarden.rules.pooler import check_pooler
from pgwarden.rules.privileges import (
    check_create,
    check_definer_readonly,
    check_grant_options,
    check_rls,
    check_security_definer,
    check_temp,
)
from pgwarden.rules.refresh import check_refresh
from pgwarden.rules.roles import check_attributes, check_memberships, check_owner, check_passwords
from pgwarden.rules.settings import check_search_path
from pgwarden.snapshot import Snapshot

__all__ = ["CATALOG", "CHECKS", "DRIFT_CATALOG", "DRIFT_SEVERITY", "RULES", "Rule", "run_rules"]

CHECKS: tuple[Check, ...] = (
    check_memberships,
    check_attributes,
    check_access_owns,
    check_ownership,
    check_default_acls,
    check_create,
    check_temp,
    check_grant_options,
    check_owner,
    check_security_definer,
    check_definer_readonly,
    check_grant_options,
    check_rls,
    check_passwords,
    check_owner_memberships,
    check_outside_grants,
    check_user_mappings,
    check_search_path,
    check_outsiders,
    check_exception_paths,
    check_bookkeeping,
    check_leases,
    check_pooler,
    check_refresh,
    check_iam_lockout,
    check_provider_roles_reached,
    check_provider_default_acls,
    check_admin_option,
)


def run_rules(policy: Policy, snap: Snapshot, hz: HazardData) -> list[Finding]:
    """Every hazard rule over the snapshot; pure."""
    return [f for check in CHECKS for f in check(policy, snap, hz)]
