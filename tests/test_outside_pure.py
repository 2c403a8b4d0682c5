"""plan/outside.py and the outside rules on hand-built snapshots: no server, fast."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from pgwarden.hazards import HazardData
from pgwarden.plan import plan
from pgwarden.plan.outside import role_oids
from pgwarden.rules import run_rules
from pgwarden.rules.settings import parse_search_path
from pgwarden.snapshot import DefaultAcl, Membership, OutsideGrant, Role, RoleSetting, Schema, Snapshot
from test_plan_pure import APP, BI, DB_OID, OWNER, PDO, POSTGRES, RO, _policy, acl, compliant

BI_GRANTOR, PRSF, OTHER_NS = 16390, 4569, 16900


def _outside(
    kind: str, ident: str, grantee: int, privilege: str, *, grantor: int = POSTGRES, subkind: str = ""
) -> OutsideGrant:
    return OutsideGrant(kind, subkind, 1, POSTGRES, ident, grantor, grantee, privilege, False)


def _with(version: int = 160000, **changes: object) -> Snapshot:
    snap = compliant(version)
    roles = {
        **snap.roles,
        PRSF: Role(PRSF, "pg_read_server_files", False, True, False, False, False, False, False, -1),
        BI_GRANTOR: Role(BI_GRANTOR, "eve", False, True, False, False, True, False, False, -1),
    }
    return dataclasses.replace(snap, roles=roles, **changes)  # type: ignore[arg-type]


def _steps(snap: Snapshot) -> list[str]:
    return [s.render() for s in plan(_policy(), snap).steps]


def test_access_roles_lose_every_grant_outside_in_one_revoke_per_object() -> None:
    snap = _with(
        outside=(
            _outside("tablespace", "fast", APP, "CREATE"),
            _outside("language", "plpgsql", RO, "USAGE"),
            _outside("routine", "pg_catalog.pg_read_file(text)", RO, "EXECUTE", subkind="f"),
            _outside("type", "other.mood", APP, "USAGE", subkind="e"),
            _outside("parameter", "session_replication_role", APP, "SET"),
            _outside("parameter", "session_replication_role", APP, "ALTER SYSTEM"),
            _outside("database", "other", APP, "CREATE"),
            _outside("database", "other", APP, "TEMPORARY"),
            _outside("large_object", "16412", APP, "UPDATE"),
            _outside("table", "pg_catalog.pg_authid", RO, "SELECT", subkind="r"),
            _outside("sequence", "other.counter", APP, "USAGE", subkind="S"),
        )
    )
    assert _steps(snap) == [
        'REVOKE CREATE ON TABLESPACE fast FROM "app" CASCADE',
        'REVOKE USAGE ON LANGUAGE plpgsql FROM "ro" CASCADE',
        'REVOKE EXECUTE ON ROUTINE pg_catalog.pg_read_file(text) FROM "ro" CASCADE',
        'REVOKE USAGE ON TYPE other.mood FROM "app" CASCADE',
        'REVOKE SET, ALTER SYSTEM ON PARAMETER session_replication_role FROM "app" CASCADE',
        'REVOKE CREATE, TEMPORARY ON DATABASE other FROM "app" CASCADE',
        'REVOKE UPDATE ON LARGE OBJECT 16412 FROM "app" CASCADE',
        'REVOKE SELECT ON TABLE pg_catalog.pg_authid FROM "ro" CASCADE',
        'REVOKE USAGE ON SEQUENCE other.counter FROM "app" CASCADE',
    ]
    assert run_rules(_policy(), snap, HazardData()) == []  # repaired: drift only, no second finding


def test_what_is_not_the_policys_is_reported_once_with_a_fix_and_not_planned() -> None:
    snap = _with(
        outside=(
            _outside("routine", "pg_catalog.pg_ls_dir(text)", 0, "EXECUTE", subkind="f"),
            _outside("foreign_server", "remote", OWNER, "USAGE"),  # what a migration may need: not reported
            _outside("routine", "pg_catalog.lo_import(text)", OWNER, "EXECUTE", subkind="f"),
            _outside("database", "other", APP, "CONNECT"),
            _outside("language", "plpgsql", APP, "USAGE", grantor=BI_GRANTOR),
            _outside("schema", "ext", APP, "USAGE"),
            # PUBLIC in a schema the policy does not manage: that schema's owner's business
            dataclasses.replace(_outside("routine", "other.f()", 0, "EXECUTE", subkind="f"), system=False),
        )
    )
    assert _steps(snap) == []
    found = {(f.object, f.role): f for f in run_rules(_policy(), snap, HazardData()) if f.rule == "outside.grant"}
    assert {k: (f.severity, f.fix) for k, f in found.items()} == {
        ("function pg_catalog.pg_ls_dir(text)", "PUBLIC"): (
            "high",
            "REVOKE EXECUTE ON ROUTINE pg_catalog.pg_ls_dir(text) FROM PUBLIC CASCADE",
        ),
        ("function pg_catalog.lo_import(text)", "own"): (
            "high",
            'REVOKE EXECUTE ON ROUTINE pg_catalog.lo_import(text) FROM "own" CASCADE',
        ),
        ("language plpgsql", "app"): ("high", 'REVOKE GRANT OPTION FOR USAGE ON LANGUAGE plpgsql FROM "eve" CASCADE'),
    }
    assert all("detect-only" in f.message for f in found.values())


def test_owner_memberships_in_server_roles_direct_planned_indirect_reported() -> None:
    direct = Membership(PRSF, OWNER, POSTGRES, False, True, True)
    for version, statement in (
        (160000, 'REVOKE "pg_read_server_files" FROM "own"'),
        (140000, 'REVOKE "pg_read_server_files" FROM "own"'),
        (160000, 'REVOKE "pg_read_server_files" FROM "own" GRANTED BY "eve"'),  # eve's grant is eve's on 16+
        (140000, 'REVOKE "pg_read_server_files" FROM "own"'),
    ):
        grantor = BI_GRANTOR if "eve" in statement or version == 140000 else POSTGRES
        snap = _with(version, memberships=(dataclasses.replace(direct, grantor=grantor),))
        assert _steps(snap) == [statement]
        hz = HazardData.build(owner_reach=[{"member": OWNER, "role": PRSF, "direct": True}])
        (f,) = [f for f in run_rules(_policy(), snap, hz) if f.rule == "owner.member-of-privileged"]
        # the same subject as the step that revokes it: check reports them as one finding
        assert f.fix == statement and f.subject == plan(_policy(), snap).steps[0].subject
    # through a group: not planned (the group may be wanted), reported with the first hop to cut
    grp = 16700
    snap = _with(
        memberships=(
            Membership(grp, OWNER, POSTGRES, False, True, True),
            Membership(PRSF, grp, POSTGRES, False, True, True),
        )
    )
    snap = dataclasses.replace(
        snap, roles={**snap.roles, grp: Role(grp, "grp", False, True, False, False, False, False, False, -1)}
    )
    assert _steps(snap) == []
    hz = HazardData.build(
        owner_reach=[{"member": OWNER, "role": PRSF, "direct": False}, {"member": OWNER, "role": grp, "direct": True}]
    )
    (f,) = [f for f in run_rules(_policy(), snap, hz) if f.rule == "owner.member-of-privileged"]
    assert "through grp" in f.message and f.fix == 'REVOKE "grp" FROM "own"'
    assert f.subject == ("membership", "grp", "own")  # no step has it: the finding stands alone


def test_settings_that_change_what_a_role_can_do_are_reset() -> None:
    snap = _with(
        superuser_settings=frozenset({"session_replication_role", "lo_compat_privileges"}),
        role_settings=(
            RoleSetting(APP, DB_OID, ("session_replication_role=replica", "work_mem=64MB")),
            RoleSetting(RO, 0, ("role=own",)),
            RoleSetting(0, DB_OID, ("lo_compat_privileges=on",)),
            RoleSetting(POSTGRES, 0, ("session_replication_role=replica",)),  # not a policy role
        ),
    )
    assert _steps(snap) == [
        'ALTER ROLE "app" IN DATABASE "shop" RESET "session_replication_role"',
        'ALTER ROLE "ro" RESET "role"',
        'ALTER DATABASE "shop" RESET "lo_compat_privileges"',
    ]


def test_owner_default_privileges_on_schemas_types_large_objects() -> None:
    base = compliant(180000)
    snap = dataclasses.replace(
        base,
        default_acls=base.default_acls
        + (
            DefaultAcl(OWNER, 0, "n", acl((OWNER, APP, "USAGE CREATE"), (OWNER, RO, "USAGE", True))),
            DefaultAcl(OWNER, 0, "T", acl((OWNER, OWNER, "USAGE"), (OWNER, RO, "USAGE"))),
            DefaultAcl(OWNER, 0, "L", acl((OWNER, APP, "SELECT UPDATE"))),
            DefaultAcl(OWNER, OTHER_NS, "T", acl((OWNER, APP, "USAGE"))),
            DefaultAcl(OWNER, OTHER_NS, "r", acl((OWNER, RO, "SELECT"))),  # a schema the policy does not manage
        ),
        schemas=base.schemas + (Schema(OTHER_NS, "other", OWNER, acl((OWNER, OWNER, "USAGE CREATE")), False),),
    )
    assert _steps(snap) == [
        # the owner's global types entry is planned with its tables' (plan/defaults.py: no profile gives "ro" types)
        'ALTER DEFAULT PRIVILEGES FOR ROLE "own" REVOKE ALL ON TYPES FROM "ro" CASCADE',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "own" REVOKE CREATE ON SCHEMAS FROM "app" CASCADE',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "own" REVOKE GRANT OPTION FOR USAGE ON SCHEMAS FROM "ro" CASCADE',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "own" REVOKE SELECT, UPDATE ON LARGE OBJECTS FROM "app" CASCADE',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "own" IN SCHEMA "other" REVOKE USAGE ON TYPES FROM "app" CASCADE',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "own" IN SCHEMA "other" REVOKE SELECT ON TABLES FROM "ro" CASCADE',
    ]


def test_search_path_parsing_and_hijack_by_another_role() -> None:
    assert parse_search_path('"$user", public, "My S",x', "own") == ["own", "public", "My S", "x"]
    assert parse_search_path("$user,PUBLIC", "own") == ["own", "public"]
    eve = BI_GRANTOR
    snap = _with(role_settings=(RoleSetting(OWNER, DB_OID, ("search_path=tools, public",)),))
    row = {
        "oid": 16800,
        "name": "tools",
        "owner": POSTGRES,
        "grantees": [eve],
        "creators": [],
        "default_path": '"$user", public',
    }
    found = [
        f for f in run_rules(_policy(), snap, HazardData.build(schema_create=[row])) if f.rule.startswith("settings.")
    ]
    assert [(f.object, f.role, f.fix) for f in found] == [
        ("schema tools", "own", 'REVOKE CREATE ON SCHEMA "tools" FROM "eve"')
    ]
    assert "role in database setting" in found[0].message and "eve" in found[0].message
    # a schema owned by another role: its owner keeps CREATE, so the fix takes it off the path
    owned = dict(row, owner=eve, grantees=[])
    (f,) = [
        f for f in run_rules(_policy(), snap, HazardData.build(schema_create=[owned])) if f.rule.startswith("settings.")
    ]
    assert f.fix == 'ALTER ROLE "own" IN DATABASE "shop" SET search_path = "public"'
    # pg_database_owner is the database's owner: the policy's owner here (trusted), else whoever it is
    pdo = dict(row, owner=PDO, grantees=[])
    assert not [
        f for f in run_rules(_policy(), snap, HazardData.build(schema_create=[pdo])) if f.rule.startswith("settings.")
    ]
    app_db = dataclasses.replace(snap, database=dataclasses.replace(snap.database, owner=APP))
    (f,) = [
        f for f in run_rules(_policy(), app_db, HazardData.build(schema_create=[pdo])) if f.rule.startswith("settings.")
    ]
    assert "app can create" in f.message
    # the managed schema public is the plan's (create.schema), and a schema only the owner creates in is fine
    public = dict(row, name="public", grantees=[0])
    trusted = dict(row, grantees=[OWNER])
    assert not [
        f
        for f in run_rules(_policy(), snap, HazardData.build(schema_create=[public, trusted]))
        if f.rule.startswith("settings.")
    ]


def test_user_mappings_are_judged_by_whom_they_log_in_as() -> None:
    snap = _with()
    rows = [
        {"role": APP, "server": "remote", "remote_user": "own"},  # borrows the owner's login
        {"role": 0, "server": "remote", "remote_user": "postgres"},  # everybody as a superuser
        {"role": RO, "server": "remote", "remote_user": "ro_remote"},  # its own login: configuration
        {"role": APP, "server": "hidden", "remote_user": None},  # options not readable
    ]
    found = [
        f for f in run_rules(_policy(), snap, HazardData.build(user_mappings=rows)) if f.rule == "outside.user-mapping"
    ]
    assert [(f.role, f.fix) for f in found] == [
        ("app", 'DROP USER MAPPING FOR "app" SERVER "remote"'),
        ("PUBLIC", 'DROP USER MAPPING FOR PUBLIC SERVER "remote"'),
    ]


def test_a_deploy_login_in_a_server_role_loses_it_too() -> None:
    base = _policy()
    policy = base.model_copy(update={"owner": base.owner.model_copy(update={"deploy_logins": ("bi",)})})
    snap = _with(memberships=(Membership(PRSF, BI, POSTGRES, False, True, True),))
    revokes = [s.render() for s in plan(policy, snap).steps if s.action == "revoke-membership"]
    assert revokes == ['REVOKE "pg_read_server_files" FROM "bi"']
    hz = HazardData.build(owner_reach=[{"member": BI, "role": PRSF, "direct": True}])
    (f,) = [f for f in run_rules(policy, snap, hz) if f.rule == "owner.member-of-privileged"]
    assert f.role == "bi" and f.message.startswith("deploy login bi is a member of pg_read_server_files")
    # through the owner: one problem, the owner's membership, one finding
    snap = _with(
        memberships=(
            Membership(OWNER, BI, POSTGRES, False, True, True),
            Membership(PRSF, OWNER, POSTGRES, False, True, True),
        )
    )
    hz = HazardData.build(
        owner_reach=[
            {"member": BI, "role": OWNER, "direct": True},
            {"member": BI, "role": PRSF, "direct": False},
            {"member": OWNER, "role": PRSF, "direct": True},
        ]
    )
    found = [f for f in run_rules(policy, snap, hz) if f.rule == "owner.member-of-privileged"]
    assert [f.role for f in found] == ["own"]


def test_what_a_non_superuser_admin_needs_for_the_outside_steps() -> None:
    """An admin that acts as the owner (a member of it) revokes on the owner's objects; what postgres
    owns, a membership in a server role and a superuser-only setting need a superuser."""
    snap = _with(
        outside=(
            _outside("routine", "pg_catalog.pg_read_file(text)", RO, "EXECUTE", subkind="f"),
            dataclasses.replace(_outside("type", "other.mood", APP, "USAGE", grantor=OWNER), owner=OWNER),
        ),
        memberships=(
            Membership(OWNER, BI, POSTGRES, False, True, True),
            Membership(PRSF, OWNER, POSTGRES, False, True, True),
        ),
        superuser_settings=frozenset({"session_replication_role"}),
        role_settings=(RoleSetting(APP, DB_OID, ("session_replication_role=replica",)),),
    )
    snap = dataclasses.replace(
        snap, server=dataclasses.replace(snap.server, current_role_oid=BI, current_role="bi", is_superuser=False)
    )
    steps = {s.object: s for s in plan(_policy(), snap).steps}
    assert steps["type other.mood"].allowed
    denied = {o: str(s.needs) for o, s in steps.items() if not s.allowed}
    assert denied == {
        "function pg_catalog.pg_read_file(text)": "superuser or the privileges of postgres (the object's owner)",
        "role own": "superuser or ADMIN OPTION on pg_read_server_files",
        "setting session_replication_role of role app in database shop": "superuser",
    }


def test_a_deploy_logins_own_search_path_is_judged_too() -> None:
    """Migrations run as the owner through a deploy login keep the login's own settings: a writable
    schema on its search_path hijacks them as it would the owner's."""
    deploy = 16900
    policy = _policy()
    policy = policy.model_copy(update={"owner": policy.owner.model_copy(update={"deploy_logins": ("deployer",)})})
    snap = _with(role_settings=(RoleSetting(deploy, DB_OID, ("role=own", "search_path=tools, public")),))
    snap = dataclasses.replace(
        snap, roles={**snap.roles, deploy: Role(deploy, "deployer", False, True, False, False, True, False, False, -1)}
    )
    row = {
        "oid": 16800,
        "name": "tools",
        "owner": POSTGRES,
        "grantees": [BI_GRANTOR],
        "creators": [],
        "default_path": "public",
    }
    found = [
        f for f in run_rules(policy, snap, HazardData.build(schema_create=[row])) if f.rule.startswith("settings.")
    ]
    assert [(f.object, f.role) for f in found] == [("schema tools", "deployer")], found


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.integers(1, 40), st.sampled_from(["app", "ro", "7", "12", "007", "owner", "x"]), max_size=6),
    st.frozensets(st.sampled_from(["app", "ro", "7", "12", "007", "0", "²", "-3", "owner", "nobody"]), max_size=5),
)
def test_role_oids_are_the_oids_role_name_names(names_by_oid: dict[int, str], names: frozenset[str]) -> None:
    # the outside planners and outside.grant test a grantee's oid against one set instead of naming
    # it (a fleet's databases each read thousands of rows): the same answer as role_name for every
    # oid, PUBLIC (0) and the unknown ones a row may name (role_name gives their number)
    base = compliant()
    roles = {
        oid: Role(oid, name, False, True, False, False, True, False, False, -1) for oid, name in names_by_oid.items()
    }
    snap = dataclasses.replace(base, roles=roles)
    oids = role_oids(snap, names)
    for oid in range(0, 45):
        assert (oid in oids) == (snap.role_name(oid) in names), oid
