"""Planning policy v2's roles on hand-built snapshots: members and their membership options, limits,
expiry, comments and settings. No server."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pgwarden.errors import PolicyError
from pgwarden.plan import Action, Plan, plan
from pgwarden.plan.settings import split_names
from pgwarden.policy import MembershipSpec, MemberSpec, Policy
from pgwarden.rules import DRIFT_SEVERITY
from pgwarden.snapshot import Membership, Role, RoleSetting, Snapshot
from test_plan_pure import APP, DB_OID, OWNER, POSTGRES, RO, _policy, compliant

ALICE, ADMIN = 16390, 16391


def _people(*members: MemberSpec, **access: Any) -> Policy:
    """_policy() (owner own, app readwrite, ro readonly) with members and attributes on app."""
    policy = _policy(members=members)
    if access:
        app = policy.access[0].model_copy(update=access)
        policy = policy.model_copy(update={"access": (app, *policy.access[1:])})
    return policy


def _alice(*groups: MembershipSpec, **attrs: Any) -> MemberSpec:
    return MemberSpec(name="alice", member_of=groups or (MembershipSpec(role="ro"),), **attrs)


def _with_alice(snap: Snapshot, *memberships: Membership, **attrs: Any) -> Snapshot:
    base = dict(
        superuser=False, inherit=True, createrole=False, createdb=False, login=True, replication=False, bypassrls=False
    )
    alice = Role(ALICE, "alice", connlimit=-1, **{**base, **attrs})  # type: ignore[arg-type]
    admin = Role(ADMIN, "admin", connlimit=-1, **{**base, "createrole": True})  # type: ignore[arg-type]
    return dataclasses.replace(
        snap, roles={**snap.roles, ALICE: alice, ADMIN: admin}, memberships=(*snap.memberships, *memberships)
    )


def _sql(p: Plan, action: Action | None = None) -> list[str]:
    return [s.render() for s in p.steps if action is None or s.action == action]


def test_every_action_has_a_drift_severity() -> None:
    assert set(DRIFT_SEVERITY) == {a.value for a in Action}
    assert DRIFT_SEVERITY["membership-options"] == "high"
    assert DRIFT_SEVERITY["role-attribute"] == "medium"
    assert DRIFT_SEVERITY["role-comment"] == "low"


def test_a_new_member_is_created_like_an_access_role_and_granted_its_group_with_options() -> None:
    policy = _people(_alice(MembershipSpec(role="ro", set=False), MembershipSpec(role="app")))
    p = plan(policy, compliant(160000))
    assert _sql(p, Action.CREATE_ROLE) == [
        'CREATE ROLE "alice" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'
    ]
    assert _sql(p, Action.GRANT_MEMBERSHIP) == [
        'GRANT "ro" TO "alice" WITH INHERIT TRUE, SET FALSE',
        'GRANT "app" TO "alice" WITH INHERIT TRUE, SET TRUE',
    ]
    assert len({s.key for s in p.steps}) == len(p.steps)
    # and once it is all there, nothing
    done = _with_alice(
        compliant(160000),
        Membership(RO, ALICE, POSTGRES, False, True, False),
        Membership(APP, ALICE, POSTGRES, False, True, True),
    )
    assert _sql(plan(policy, done)) == []


def test_membership_options_are_corrected_in_place_or_by_revoking_another_grantors_grant() -> None:
    policy = _people(_alice(MembershipSpec(role="ro", set=False)))
    # the superusers' grant (grantor: the bootstrap superuser) is updated by a GRANT: set goes off
    snap = _with_alice(compliant(170000), Membership(RO, ALICE, POSTGRES, False, True, True))
    p = plan(policy, snap)
    [step] = p.steps
    assert (step.action, step.render(), step.destructive) == (
        Action.MEMBERSHIP_OPTIONS,
        'GRANT "ro" TO "alice" WITH INHERIT TRUE, SET FALSE',
        True,
    )
    assert step.subject == ("membership", "ro", "alice")
    additive = plan(policy, snap, mode="additive")
    assert additive.steps == () and [s.render() for s in additive.withheld] == [step.render()]
    # another grantor's grant cannot be changed by the admin: revoked, and the admin grants its own
    snap = _with_alice(compliant(170000), Membership(RO, ALICE, ADMIN, True, True, True))
    assert _sql(plan(policy, snap)) == [
        'REVOKE "ro" FROM "alice" GRANTED BY "admin"',
        'GRANT "ro" TO "alice" WITH INHERIT TRUE, SET FALSE',
    ]
    # the admin's own grant with ADMIN OPTION: options right, ADMIN OPTION taken away
    snap = _with_alice(compliant(170000), Membership(RO, ALICE, POSTGRES, True, True, False))
    assert _sql(plan(policy, snap)) == ['REVOKE ADMIN OPTION FOR "ro" FROM "alice"']


def test_memberships_the_policy_does_not_give_are_revoked_and_withheld_in_additive_mode() -> None:
    policy = _people(_alice())
    snap = _with_alice(
        compliant(160000),
        Membership(RO, ALICE, POSTGRES, False, True, True),
        Membership(OWNER, ALICE, POSTGRES, False, True, True),
        Membership(ALICE, RO, POSTGRES, False, True, True),  # a group in a person
    )
    p = plan(policy, snap)
    assert _sql(p, Action.REVOKE_MEMBERSHIP) == [
        'REVOKE "alice" FROM "ro" GRANTED BY "postgres"',
        'REVOKE "own" FROM "alice"',
    ]
    assert {s.subject for s in p.steps} == {("membership", "alice", "ro"), ("membership", "own", "alice")}
    assert all(s.destructive for s in p.steps)
    assert plan(policy, snap, mode="additive").steps == ()


def test_on_14_and_15_inheritance_is_the_members_attribute() -> None:
    policy = _people(_alice(MembershipSpec(role="ro", inherit=False), MembershipSpec(role="app", inherit=False)))
    p = plan(policy, compliant(150000))
    assert _sql(p, Action.CREATE_ROLE) == [
        'CREATE ROLE "alice" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT'
    ]
    assert _sql(p, Action.GRANT_MEMBERSHIP) == ['GRANT "ro" TO "alice"', 'GRANT "app" TO "alice"']
    snap = _with_alice(compliant(140000), Membership(RO, ALICE, POSTGRES, False, None, None))
    assert _sql(plan(_people(_alice()), snap)) == []
    # inherit = false on an existing INHERIT member: the attribute changes, and she gets CONNECT of
    # her own (the login check sees no privilege of a group she does not inherit)
    assert _sql(plan(_people(_alice(MembershipSpec(role="ro", inherit=False))), snap)) == [
        'ALTER ROLE "alice" WITH NOINHERIT',
        'GRANT CONNECT ON DATABASE "shop" TO "alice"',
    ]


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ((MembershipSpec(role="ro", set=False),), "set = false on its membership in ro needs PostgreSQL 16"),
        (
            (MembershipSpec(role="ro"), MembershipSpec(role="app", inherit=False)),
            "some of its memberships inherit and some do not, which needs PostgreSQL 16",
        ),
    ],
)
def test_what_14_and_15_cannot_say_is_a_policy_error(groups: tuple[MembershipSpec, ...], words: str) -> None:
    with pytest.raises(PolicyError) as raised:
        plan(_people(_alice(*groups)), compliant(140000))
    assert str(raised.value) == f"role alice: {words} (membership options); the server is PostgreSQL 14"
    assert "alice" in (raised.value.hint or "")
    assert plan(_people(_alice(*groups)), compliant(160000)).steps  # 16+ can


def test_limits_expiry_and_comment_are_planned_and_compliant_roles_plan_nothing() -> None:
    policy = _people(connection_limit=20, valid_until="2027-01-01", comment="the app")
    snap = compliant()
    assert _sql(plan(policy, snap)) == [
        """ALTER ROLE "app" WITH CONNECTION LIMIT 20 VALID UNTIL '2027-01-01'""",
        """COMMENT ON ROLE "app" IS 'the app'""",
    ]
    five = dataclasses.replace(snap.roles[APP], connlimit=5, comment="old")
    reasons = [s.reason for s in plan(policy, dataclasses.replace(snap, roles={**snap.roles, APP: five})).steps]
    assert reasons == [
        "the policy says role app has CONNECTION LIMIT 20 (it has 5), VALID UNTIL 2027-01-01 (it never expires)",
        "the policy gives role app the comment 'the app' (it has 'old')",
    ]
    kinds = {s.action for s in plan(policy, snap).steps}
    assert kinds == {Action.ROLE_ATTRIBUTE, Action.ROLE_COMMENT}
    app = dataclasses.replace(
        snap.roles[APP], connlimit=20, valid_until="2027-01-01T00:00:00.000000", comment="the app"
    )
    assert _sql(plan(policy, dataclasses.replace(snap, roles={**snap.roles, APP: app}))) == []
    # "" is no comment; NULL and 'infinity' both never expire; a left-out key is left alone
    never = _people(valid_until="infinity", comment="")
    assert _sql(plan(never, snap)) == []
    inf = dataclasses.replace(snap.roles[APP], valid_until="infinity", comment="old")
    assert _sql(plan(never, dataclasses.replace(snap, roles={**snap.roles, APP: inf}))) == [
        'COMMENT ON ROLE "app" IS NULL'
    ]
    assert _sql(plan(_people(), dataclasses.replace(snap, roles={**snap.roles, APP: inf}))) == []


def test_valid_until_with_an_offset_is_an_instant_without_one_local_time() -> None:
    snap = compliant()
    # 2027-01-01 00:00 in Berlin (+01) is 2026-12-31 23:00 UTC
    app = dataclasses.replace(snap.roles[APP], valid_until="2027-01-01T00:00:00.000000", valid_until_epoch=1798758000.0)
    snap = dataclasses.replace(snap, roles={**snap.roles, APP: app})
    assert _sql(plan(_people(valid_until="2027-01-01"), snap)) == []
    assert _sql(plan(_people(valid_until="2027-01-01T00:00:00+01:00"), snap)) == []
    assert _sql(plan(_people(valid_until="2026-12-31T23:00:00+00:00"), snap)) == []
    assert _sql(plan(_people(valid_until="2027-01-01T00:00:00+00:00"), snap)) == [
        """ALTER ROLE "app" WITH VALID UNTIL '2027-01-01T00:00:00+00:00'"""
    ]


def _settings(snap: Snapshot, role: int, database: int, *settings: str) -> Snapshot:
    return dataclasses.replace(snap, role_settings=(*snap.role_settings, RoleSetting(role, database, settings)))


def test_declared_settings_set_what_differs_and_reset_the_rest() -> None:
    policy = _people(settings={"statement_timeout": "5s", "search_path": "app, public", "jit": False})
    p = plan(policy, compliant())
    assert _sql(p) == [
        """ALTER ROLE "app" SET "jit" = 'off'""",
        'ALTER ROLE "app" SET "search_path" = "app", "public"',
        """ALTER ROLE "app" SET "statement_timeout" = '5s'""",
    ]
    assert {s.action for s in p.steps} == {Action.ROLE_SETTING}
    # what the server stores for those (names canonical, list items quoted one by one)
    snap = _settings(compliant(), APP, 0, "statement_timeout=5s", "search_path=app, public", "jit=off")
    assert _sql(plan(policy, snap)) == []
    snap = _settings(
        compliant(), APP, 0, "statement_timeout=1s", 'search_path="app, public"', "jit=off", "work_mem=1GB"
    )
    p = plan(policy, snap)
    assert _sql(p) == [
        'ALTER ROLE "app" SET "search_path" = "app", "public"',
        """ALTER ROLE "app" SET "statement_timeout" = '5s'""",
        'ALTER ROLE "app" RESET "work_mem"',
    ]
    assert [s.destructive for s in p.steps] == [False, False, True]
    assert [s.render() for s in plan(policy, snap, mode="additive").withheld] == ['ALTER ROLE "app" RESET "work_mem"']
    # without `settings`, a role's settings are left alone
    assert _sql(plan(_people(), snap)) == []


def test_database_settings_apply_to_this_database_only() -> None:
    policy = _people(database_settings={"shop": {"lock_timeout": 1000}, "other": {"lock_timeout": "9s"}})
    snap = _settings(compliant(), APP, DB_OID, "work_mem=1GB")
    snap = _settings(snap, APP, 0, "work_mem=2GB")  # every database: not what database_settings says
    assert _sql(plan(policy, snap)) == [
        """ALTER ROLE "app" IN DATABASE "shop" SET "lock_timeout" = '1000'""",
        'ALTER ROLE "app" IN DATABASE "shop" RESET "work_mem"',
    ]


def test_superuser_only_settings_need_a_superuser_and_are_planned_once() -> None:
    policy = _people(settings={"log_statement": "all"})
    snap = compliant()
    snap = dataclasses.replace(
        snap,
        superuser_settings=frozenset({"session_replication_role"}),
        server=dataclasses.replace(snap.server, is_superuser=False, can_createrole=True),
    )
    [step] = [s for s in plan(policy, snap).steps if s.action == Action.ROLE_SETTING]
    assert (step.render(), step.allowed, str(step.needs)) == (
        """ALTER ROLE "app" SET "log_statement" = 'all'""",
        False,
        "superuser",
    )
    # a superuser-only setting the policy does not declare: plan/outside.py resets it, once
    snap = _settings(snap, APP, 0, "log_statement=all", "session_replication_role=replica")
    resets = [s for s in plan(_people(settings={}), snap).steps if "session_replication_role" in s.render()]
    assert [s.render() for s in resets] == ['ALTER ROLE "app" RESET "session_replication_role"']
    # one the policy declares is the policy's: not reset behind it
    declared = _people(settings={"session_replication_role": "replica", "log_statement": "all"})
    assert _sql(plan(declared, snap), Action.ROLE_SETTING) == []


def test_list_values_are_read_as_the_server_reads_them() -> None:
    assert split_names('"$user", App, "My ""x"" schema" ,public') == ["$user", "app", 'My "x" schema', "public"]
    assert split_names("") == []


def test_a_member_with_a_powerful_attribute_is_one_finding_with_the_plans_fix() -> None:
    from pgwarden.check import findings_for
    from pgwarden.hazards import HazardData

    policy = _people(_alice())
    snap = _with_alice(compliant(160000), Membership(RO, ALICE, POSTGRES, False, True, True), bypassrls=True)
    p = plan(policy, snap)
    found = [f for f in findings_for(policy, snap, HazardData(), p) if f.role == "alice"]
    assert [(f.rule, f.severity, f.message, f.fix) for f in found] == [
        ("access.attribute", "critical", "member alice has BYPASSRLS", 'ALTER ROLE "alice" WITH NOBYPASSRLS')
    ]


def test_a_non_superuser_admin_cannot_take_back_a_superusers_grant_on_16() -> None:
    policy = _people(_alice())
    snap = _with_alice(compliant(160000), Membership(OWNER, ALICE, POSTGRES, False, True, True))
    admin = dataclasses.replace(snap.server, current_role_oid=ADMIN, current_role="admin", is_superuser=False)
    snap = dataclasses.replace(
        snap,
        server=admin,
        memberships=(*snap.memberships, Membership(RO, ADMIN, ADMIN, True, False, False)),
    )
    steps = {s.render(): s for s in plan(policy, snap).steps if s.role == "alice"}
    assert {r: (s.allowed, str(s.needs)) for r, s in steps.items()} == {
        'GRANT "ro" TO "alice" WITH INHERIT TRUE, SET TRUE': (True, "None"),
        'REVOKE "own" FROM "alice"': (False, "superuser"),
    }


def test_on_14_and_15_a_missing_admin_option_is_added_to_the_existing_grant() -> None:
    """14-15 keep one grant per pair: a member without the ADMIN OPTION the policy gives gets it by
    GRANT ... WITH ADMIN OPTION (which updates the grant in place there), not by a new grant."""
    policy = _people(_alice(MembershipSpec(role="ro", admin=True)))
    for version in (140000, 150000):
        snap = _with_alice(compliant(version), Membership(RO, ALICE, POSTGRES, False, None, None))
        p = plan(policy, snap)
        [step] = p.steps
        assert (step.action, step.render(), step.destructive) == (
            Action.MEMBERSHIP_OPTIONS,
            'GRANT "ro" TO "alice" WITH ADMIN OPTION',
            False,
        )
        assert step.subject == ("membership", "ro", "alice")
        # with the option there, nothing; and additive mode applies it too (it takes nothing away)
        done = _with_alice(compliant(version), Membership(RO, ALICE, POSTGRES, True, None, None))
        assert _sql(plan(policy, done)) == []
        assert [s.render() for s in plan(policy, snap, mode="additive").steps] == [step.render()]
