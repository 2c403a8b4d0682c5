"""Roles outside the policy that can act as its roles, without a server: which memberships count, who
is trusted, what plan revokes and what check reports once (tests/test_outside_logins.py proves them)."""

from __future__ import annotations

import dataclasses

import pytest

from pgwarden.check import findings_for
from pgwarden.hazards import HazardData
from pgwarden.plan import plan
from pgwarden.plan.outsiders import entries
from pgwarden.snapshot import Membership, Role, Snapshot
from test_plan_pure import APP, BI, OWNER, POSTGRES, _policy, _role, compliant

HELPERS = 16390


def _with(snap: Snapshot, *memberships: Membership, **roles: Role) -> Snapshot:
    extra = {r.oid: r for r in roles.values()}
    return dataclasses.replace(snap, memberships=memberships, roles={**snap.roles, **extra})


def _m(role: int, member: int, *, inherit: bool = True, set_: bool = True, admin: bool = False) -> Membership:
    return Membership(role, member, POSTGRES, admin, inherit, set_)


def _rules(snap: Snapshot, **policy: object) -> list[tuple[str, str | None]]:
    p = _policy(**policy)
    return [
        (f.rule, f.role) for f in findings_for(p, snap, HazardData(), plan(p, snap)) if f.rule.startswith("outside.")
    ]


def test_a_member_of_the_owner_is_revoked_and_reported_once() -> None:
    snap = _with(compliant(), _m(OWNER, BI))
    steps = [s.render() for s in plan(_policy(), snap).steps]
    assert steps == ['REVOKE "own" FROM "bi"']
    assert _rules(snap) == [("outside.member-of-owner", "bi")]


@pytest.mark.parametrize(
    ("inherit", "set_", "admin", "found"),
    [(False, False, False, False), (True, False, False, True), (False, True, False, True), (False, False, True, True)],
)
def test_on_16_a_membership_counts_when_it_is_usable(inherit: bool, set_: bool, admin: bool, found: bool) -> None:
    snap = _with(compliant(160000), _m(OWNER, BI, inherit=inherit, set_=set_, admin=admin))
    assert bool(entries(_policy(), snap)) is found


def test_trusted_roles_are_not_findings() -> None:
    snap = _with(compliant(), _m(OWNER, BI))
    ignored = _policy().ignore.model_copy(update={"roles": ("bi",)})
    assert _rules(snap, ignore=ignored) == []
    superuser = dataclasses.replace(snap, roles={**snap.roles, BI: _role(BI, superuser=True)})
    assert entries(_policy(), superuser) == []
    admin = dataclasses.replace(snap, server=dataclasses.replace(snap.server, current_role="bi"))
    assert entries(_policy(), admin) == []


def test_a_chain_is_one_finding_at_its_entry_naming_the_logins() -> None:
    helpers = Role(HELPERS, "helpers", False, True, False, False, False, False, False, -1)
    snap = _with(compliant(), _m(OWNER, HELPERS), _m(HELPERS, BI), helpers=helpers)
    (entry,) = entries(_policy(), snap)
    assert (entry.member, entry.role, entry.logins) == ("helpers", "own", ("bi",))
    assert entry.paths == (("bi", "helpers"),)
    assert _rules(snap) == [("outside.member-of-owner", "helpers")]


def test_an_access_role_entry_and_an_administrator_are_reported_not_revoked() -> None:
    snap = _with(compliant(), _m(APP, BI))
    assert plan(_policy(), snap).steps == ()
    assert _rules(snap) == [("outside.member-of-access", "bi")]
    admin = _with(compliant(), _m(OWNER, BI, admin=True), bi=_role(BI, createrole=True))
    assert plan(_policy(), admin).steps == ()
    assert _rules(admin) == [("outside.member-of-owner", "bi")]
