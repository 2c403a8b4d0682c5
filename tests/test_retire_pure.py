"""Retiring roles, planned without a server: the steps, their order, the blockers, the refusals, the output."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from pgwarden.errors import PolicyError
from pgwarden.plan import Phase, Plan
from pgwarden.plan.retire import DatabaseAccess, Holding, Retirement, Survey, describe, plan_retirements
from pgwarden.policy import Policy, RetiredSpec
from pgwarden.render import plan_sql
from pgwarden.snapshot import Membership, Role, Snapshot
from test_plan_pure import APP, POSTGRES, _policy, compliant

OLD, GROUP, PERSON = 16390, 16391, 16392


def _with_roles(snap: Snapshot, *roles: Role, memberships: tuple[Membership, ...] = ()) -> Snapshot:
    return dataclasses.replace(snap, roles={**snap.roles, **{r.oid: r for r in roles}}, memberships=memberships)


def _role(oid: int, name: str, **attrs: Any) -> Role:
    base: dict[str, Any] = dict(
        superuser=False, inherit=True, createrole=False, createdb=False, login=True, replication=False, bypassrls=False
    )
    base.update(attrs)
    return Role(oid, name, connlimit=-1, **base)


def _retiring(*specs: RetiredSpec, **kwargs: Any) -> Policy:
    return _policy(retired=specs, **kwargs)


def _survey(**databases: tuple[Holding, ...]) -> Survey:
    """Holdings of role `old` per database ("shared" for the cluster-wide ones)."""
    held = {("" if db == "shared" else db): h for db, h in databases.items()}
    access = {db: DatabaseAccess(db, True, True) for db in held if db}
    return Survey({OLD: held}, access, admin_database="postgres", session_user="postgres")


OWNS_TABLES = (Holding("pg_class", "o", 2), Holding("pg_default_acl", "o", 1))
GRANTED = (Holding("pg_class", "a", 1),)


def test_reassign_in_every_database_then_drop_owned_then_drop_role_last() -> None:
    snap = _with_roles(compliant(), _role(OLD, "old"))
    (r,) = plan_retirements(_retiring(RetiredSpec(name="old")), snap, _survey(shop=OWNS_TABLES, other=GRANTED))
    assert not r.blocked and [d.database for d in r.databases] == ["other", "shop"]
    sqls = [(d.database, s.render()) for d in r.databases for s in d.steps]
    assert sqls == [
        ("other", 'REASSIGN OWNED BY "old" TO "own"'),
        ("other", 'DROP OWNED BY "old"'),
        ("shop", 'REASSIGN OWNED BY "old" TO "own"'),
        ("shop", 'DROP OWNED BY "old"'),
    ]
    assert r.steps[-1].render() == 'DROP ROLE "old"' and r.after == (r.steps[-1],)
    assert all(s.phase == Phase.RETIRE for s in r.steps) and len({s.key for s in r.steps}) == len(r.steps)
    assert r.summary() == (
        "other: holds privileges on 1 relation; shop: owns 2 relations, 1 default privileges entry of its own"
    )


def test_drop_mode_drops_in_databases_and_reassigns_the_databases_it_owns_from_one_of_them() -> None:
    snap = _with_roles(compliant(), _role(OLD, "old"))
    spec = RetiredSpec(name="old", objects="drop")
    shared = (Holding("pg_database", "o", 1),)
    (r,) = plan_retirements(_retiring(spec), snap, _survey(shop=OWNS_TABLES, postgres=GRANTED, shared=shared))
    assert [d.database for d in r.databases] == ["postgres", "shop"]  # the shared part first: its commit clears it
    assert [s.render() for s in r.databases[0].steps] == ['DROP OWNED BY "old"', 'REASSIGN OWNED BY "old" TO "own"']
    assert [s.render() for s in r.databases[1].steps] == ['DROP OWNED BY "old"']
    (only_shared,) = plan_retirements(_retiring(spec), snap, _survey(shared=shared))
    assert [d.database for d in only_shared.databases] == ["postgres"]  # from the admin's database


def test_terminate_refuses_logins_and_ends_sessions_first() -> None:
    snap = _with_roles(compliant(), _role(OLD, "old"))
    (r,) = plan_retirements(_retiring(RetiredSpec(name="old", terminate=True)), snap, _survey(shop=OWNS_TABLES))
    assert [s.change for s in r.before] == ["nologin", "terminate"]
    assert r.before[0].render() == 'ALTER ROLE "old" NOLOGIN'
    assert "pg_terminate_backend" in r.before[1].render() and "usename = 'old'" in r.before[1].render()


def test_blockers_name_the_database_and_why() -> None:
    snap = _with_roles(compliant(), _role(OLD, "old"))
    survey = dataclasses.replace(
        _survey(shop=OWNS_TABLES, closed=OWNS_TABLES, noconnect=GRANTED, refused=GRANTED),
        databases={
            "shop": DatabaseAccess("shop", True, True),
            "closed": DatabaseAccess("closed", False, True),
            "noconnect": DatabaseAccess("noconnect", True, False),
            "refused": DatabaseAccess("refused", True, True, "cannot open database refused: no pg_hba.conf entry"),
        },
        session_user="old",
    )
    (r,) = plan_retirements(_retiring(RetiredSpec(name="old")), snap, survey)
    assert r.blockers == (
        "database closed does not allow connections (datallowconn is false): its objects cannot be moved",
        "the admin has no CONNECT on database noconnect",
        "cannot connect to database refused: cannot open database refused: no pg_hba.conf entry",
        "the admin connection logged in as old (its session user): a role cannot drop itself",
    )
    assert "  blocked: the admin has no CONNECT on database noconnect" in describe([r])
    script = plan_sql(Plan("shop", (), retirements=(r,)))
    assert '-- DROP ROLE "old";' in script and '\nDROP ROLE "old";' not in script  # blocked: commented out


def test_a_non_superuser_admin_is_told_what_it_lacks() -> None:
    base = compliant()
    me = _role(APP, "app", createrole=True)
    snap = dataclasses.replace(
        _with_roles(base, _role(OLD, "old"), me),
        server=dataclasses.replace(base.server, current_role_oid=APP, current_role="app", is_superuser=False),
    )
    (r,) = plan_retirements(_retiring(RetiredSpec(name="old")), snap, _survey(shop=OWNS_TABLES))
    assert r.blockers == (
        "the admin needs the privileges of old to reassign or drop what it owns",
        "the admin needs the privileges of the owner own to reassign objects to it",
        "dropping role old needs superuser or CREATEROLE and ADMIN OPTION on it",
    )
    on_15 = dataclasses.replace(snap, caps=compliant(150000).caps)
    (r15,) = plan_retirements(_retiring(RetiredSpec(name="old")), on_15, _survey(shop=OWNS_TABLES))
    # on 14-15 CREATEROLE may take the role's privileges (and drop it): only the owner's are missing
    assert r15.blockers == ("the admin needs the privileges of the owner own to reassign objects to it",)
    assert [s.render() for s in r15.before] == ['GRANT "old" TO "app"']
    (gains,) = plan_retirements(
        _retiring(RetiredSpec(name="old")), on_15, _survey(shop=OWNS_TABLES), admin_gains_owner=True
    )
    assert not gains.blocked


def test_memberships_it_granted_are_granted_again_first_on_16() -> None:
    members = (Membership(GROUP, PERSON, OLD, False, False, True),)
    roles = (_role(OLD, "old"), _role(GROUP, "team", login=False), _role(PERSON, "person"))
    snap = _with_roles(compliant(), *roles, memberships=members)
    (r,) = plan_retirements(_retiring(RetiredSpec(name="old")), snap, _survey())
    assert r.memberships == ("person in team",)
    assert [s.render() for s in r.before] == ['GRANT "team" TO "person" WITH ADMIN FALSE, INHERIT FALSE, SET TRUE']
    old_server = _with_roles(compliant(150000), *roles, memberships=members)
    assert plan_retirements(_retiring(RetiredSpec(name="old")), old_server, _survey())[0].before == ()


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("postgres", {}, "is the bootstrap superuser"),
        ("boss", {"superuser": True}, "is a superuser"),
        ("sysrole", {}, "a role PostgreSQL itself defines"),  # an oid below 16384
    ],
)
def test_forbidden_roles_are_plan_time_errors(name: str, extra: dict[str, Any], message: str) -> None:
    oid = {"postgres": POSTGRES, "sysrole": 4200}.get(name, OLD)
    snap = _with_roles(compliant(), _role(oid, name, **extra))
    with pytest.raises(PolicyError, match=message) as info:
        plan_retirements(_retiring(RetiredSpec(name=name)), snap, _survey())
    assert info.value.hint


def test_the_admin_an_ignored_role_or_a_name_twice_are_refused() -> None:
    snap = _with_roles(compliant(), _role(OLD, "old"))
    admin = dataclasses.replace(snap, server=dataclasses.replace(snap.server, current_role="old"))
    with pytest.raises(PolicyError, match="the admin pgwarden is connected as"):
        plan_retirements(_retiring(RetiredSpec(name="old")), admin, _survey())
    ignored = _retiring(RetiredSpec(name="old"), ignore=_policy().ignore.model_copy(update={"roles": ("old",)}))
    with pytest.raises(PolicyError, match="listed under"):
        plan_retirements(ignored, snap, _survey())
    with pytest.raises(PolicyError, match="twice"):
        plan_retirements(_retiring(RetiredSpec(name="old"), RetiredSpec(name="old")), snap, _survey())
    assert plan_retirements(_retiring(RetiredSpec(name="gone")), snap, _survey()) == ()  # already dropped


def test_the_plan_json_with_retirements_validates_and_counts_as_pending() -> None:
    snap = _with_roles(compliant(), _role(OLD, "old"))
    found: tuple[Retirement, ...] = plan_retirements(
        _retiring(RetiredSpec(name="old")), snap, _survey(shop=OWNS_TABLES, shared=(Holding("pg_database", "a", 1),))
    )
    plan = Plan("shop", (), retirements=found)
    assert not plan.empty
    schema = json.loads(resources.files("pgwarden.schemas").joinpath("plan.json").read_text("utf-8"))
    doc = {"schema_version": 1, **plan.to_dict()}
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["retired"][0]["shared"] == [{"kind": "database", "dependency": "privileges", "count": 1}]
    assert "retired" not in Plan("shop", ()).to_dict()  # the shape without retired roles is unchanged
