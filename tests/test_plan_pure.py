"""plan() and its rendering on hand-built snapshots: no server, fast."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

import pytest

from pgwarden.caps import Capabilities
from pgwarden.plan import Phase, Plan, Step, plan
from pgwarden.policy import Policy, build_policy
from pgwarden.render import plan_sql, plan_text
from pgwarden.snapshot import (
    Database,
    DefaultAcl,
    Grant,
    ObjectGroup,
    ObjectRef,
    Role,
    Schema,
    ServerInfo,
    Snapshot,
)

POSTGRES, PDO, OWNER, APP, RO, BI = 10, 6171, 16384, 16385, 16386, 16387
PUBLIC_NS, DB_OID = 2200, 16400
NAMES = {POSTGRES: "postgres", PDO: "pg_database_owner", OWNER: "own", APP: "app", RO: "ro", BI: "bi"}


def _role(oid: int, **attrs: bool) -> Role:
    base = dict(
        superuser=False, inherit=True, createrole=False, createdb=False, login=True, replication=False, bypassrls=False
    )
    base.update(attrs)
    return Role(oid, NAMES[oid], connlimit=-1, **base)  # type: ignore[arg-type]


def acl(*entries: tuple[int, int, str] | tuple[int, int, str, bool]) -> frozenset[Grant]:
    """(grantor, grantee, privileges as words separated by spaces[, grantable])."""
    out = set()
    for entry in entries:
        grantor, grantee, privs = entry[0], entry[1], entry[2]
        grantable = bool(entry[3]) if len(entry) > 3 else False  # type: ignore[misc]
        out |= {Grant(grantor, grantee, p, grantable) for p in privs.split()}
    return frozenset(out)


def _policy(**kwargs: object) -> Policy:
    policy = build_policy(database="shop", owner="own", app=["app"], readonly=["ro"])
    return policy.model_copy(update=kwargs) if kwargs else policy


def _table_group(
    count: int, named: bool = True, acl_: frozenset[Grant] | None = None, owner: int = OWNER, version: int = 160000
) -> ObjectGroup:
    owner_privs = " ".join(Capabilities(version).table_owner_privileges)
    objects = tuple(ObjectRef(20000 + i, f"t{i}", "r", None) for i in range(count)) if named else None
    return ObjectGroup(
        schema=PUBLIC_NS,
        kind="table",
        owner=owner,
        extension=False,
        linked=False,
        count=count,
        acl=acl_
        if acl_ is not None
        else acl((owner, owner, owner_privs), (owner, APP, "SELECT INSERT UPDATE DELETE"), (owner, RO, "SELECT")),
        objects=objects,
    )


def compliant(version: int = 160000, groups: Iterable[ObjectGroup] | None = None) -> Snapshot:
    """A snapshot of a database that matches _policy() exactly, as a superuser sees it."""
    caps = Capabilities(version)
    roles = {
        POSTGRES: _role(POSTGRES, superuser=True, createrole=True, createdb=True),
        PDO: _role(PDO, login=False),
        OWNER: _role(OWNER, createdb=True),
        APP: _role(APP),
        RO: _role(RO),
        BI: _role(BI),
    }
    public_owner = PDO if version >= 150000 else OWNER
    return Snapshot(
        server=ServerInfo(version, f"{version // 10000}.0", "shop", POSTGRES, "postgres", True, True, True, True),
        caps=caps,
        target="shop",
        roles=roles,
        memberships=(),
        passwords={},
        database=Database(
            DB_OID,
            "shop",
            OWNER,
            acl((OWNER, OWNER, "CREATE TEMPORARY CONNECT"), (OWNER, APP, "CONNECT"), (OWNER, RO, "CONNECT")),
        ),
        schemas=(
            Schema(
                PUBLIC_NS,
                "public",
                public_owner,
                acl(
                    (public_owner, public_owner, "USAGE CREATE"),
                    (public_owner, 0, "USAGE"),
                    (public_owner, APP, "USAGE"),
                    (public_owner, RO, "USAGE"),
                ),
                False,
            ),
        ),
        objects=tuple(groups if groups is not None else [_table_group(3, version=version)]),
        default_acls=(
            DefaultAcl(OWNER, PUBLIC_NS, "r", acl((OWNER, APP, "SELECT INSERT UPDATE DELETE"), (OWNER, RO, "SELECT"))),
            DefaultAcl(OWNER, PUBLIC_NS, "S", acl((OWNER, APP, "USAGE SELECT"), (OWNER, RO, "SELECT"))),
            DefaultAcl(OWNER, PUBLIC_NS, "f", acl((OWNER, APP, "EXECUTE"), (OWNER, RO, "EXECUTE"))),
            DefaultAcl(OWNER, 0, "f", acl((OWNER, OWNER, "EXECUTE"))),
        ),
        role_settings=(),
    )


def _sqls(p: Plan) -> list[str]:
    return [s.render() for s in p.steps]


@pytest.mark.parametrize("version", [140000, 150000, 160000, 170000, 180000])
def test_compliant_snapshot_plans_nothing(version: int) -> None:
    assert _sqls(plan(_policy(), compliant(version))) == []


def test_empty_cluster_plans_roles_database_and_grants_in_phase_order() -> None:
    snap = compliant()
    snap = dataclasses.replace(
        snap,
        roles={k: v for k, v in snap.roles.items() if k in (POSTGRES, PDO)},
        database=None,
        objects=(),
        default_acls=(),
        server=dataclasses.replace(snap.server, database="template1"),
    )
    p = plan(_policy(), snap, {"PGWARDEN_PASSWORD_APP": "s3cret"})
    actions = [(s.phase, s.action) for s in p.steps]
    assert actions[:3] == [(Phase.ROLES, "create-role")] * 3
    assert (Phase.CREATE_DATABASE, "create-database") in actions
    assert [s.phase for s in p.steps] == sorted(s.phase for s in p.steps)
    assert any("does not exist yet" in n for n in p.notes)
    assert any("PGWARDEN_PASSWORD_OWN is not set" in n for n in p.notes)
    app = next(s for s in p.steps if s.object == "role app")
    assert "s3cret" not in app.render() and ":'PGWARDEN_PASSWORD_APP'" in app.render()
    assert "SCRAM-SHA-256$4096:" in app.sql.as_string(None)
    assert "s3cret" not in json.dumps(p.to_dict())


def test_plan_json_shape() -> None:
    snap = compliant(groups=[_table_group(2, acl_=acl((OWNER, OWNER, "SELECT"), (OWNER, APP, "SELECT TRUNCATE")))])
    data = plan(_policy(), snap).to_dict()
    assert set(data) == {"database", "server_version", "changes", "destructive", "unprivileged", "steps", "notes"}
    assert data["changes"] == len(data["steps"]) > 0  # type: ignore[arg-type]
    for step in data["steps"]:  # type: ignore[attr-defined]
        assert set(step) == {
            "phase",
            "action",
            "object",
            "role",
            "reason",
            "sql",
            "destructive",
            "needs",
            "allowed",
            "count",
        }
    json.dumps(data)


def test_small_groups_are_named_and_big_ones_use_all_in_schema() -> None:
    none = acl((OWNER, OWNER, " ".join(Capabilities(160000).table_owner_privileges)))
    small = plan(_policy(), compliant(groups=[_table_group(3, acl_=none)]))
    grants = [s for s in small.steps if s.action == "grant"]
    assert grants and all('TABLE "public"."t0", "public"."t1", "public"."t2"' in s.render() for s in grants)
    big = plan(_policy(), compliant(groups=[_table_group(300, named=False, acl_=none)]))
    grants = [s for s in big.steps if s.action == "grant"]
    assert [s.render() for s in grants] == [
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "app"',
        'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "ro"',
    ]
    assert {s.count for s in grants} == {300}


def test_grant_option_is_revoked_but_the_privilege_kept() -> None:
    owner_privs = " ".join(Capabilities(160000).table_owner_privileges)
    group = _table_group(
        1,
        acl_=acl(
            (OWNER, OWNER, owner_privs),
            (OWNER, APP, "INSERT UPDATE DELETE"),
            (OWNER, APP, "SELECT", True),
            (OWNER, RO, "SELECT"),
        ),
    )
    steps = plan(_policy(), compliant(groups=[group])).steps
    assert [s.render() for s in steps] == ['REVOKE GRANT OPTION FOR SELECT ON TABLE "public"."t0" FROM "app" CASCADE']
    assert steps[0].destructive


def test_ignored_roles_are_left_alone_and_others_lose_their_grants() -> None:
    owner_privs = " ".join(Capabilities(160000).table_owner_privileges)
    group = _table_group(
        1,
        acl_=acl(
            (OWNER, OWNER, owner_privs),
            (OWNER, APP, "SELECT INSERT UPDATE DELETE"),
            (OWNER, RO, "SELECT"),
            (OWNER, BI, "SELECT"),
        ),
    )
    revoke = plan(_policy(), compliant(groups=[group])).steps
    assert [s.render() for s in revoke] == ['REVOKE ALL ON TABLE "public"."t0" FROM "bi" CASCADE']
    policy = _policy(ignore=_policy().ignore.model_copy(update={"roles": ("bi",)}))
    assert plan(policy, compliant(groups=[group])).steps == ()


def test_extension_members_are_never_touched() -> None:
    group = dataclasses.replace(
        _table_group(2, acl_=acl((POSTGRES, POSTGRES, "SELECT"), (POSTGRES, 0, "SELECT")), owner=POSTGRES),
        extension=True,
    )
    assert plan(_policy(), compliant(groups=[_table_group(1), group])).steps == ()


def test_public_owned_by_pg_database_owner_is_the_owners() -> None:
    snap = compliant(150000)
    assert snap.schemas[0].owner == PDO
    assert plan(_policy(), snap).steps == ()


def test_public_create_for_public_is_revoked_on_14() -> None:
    snap = compliant(140000)
    public = snap.schemas[0]
    snap = dataclasses.replace(snap, schemas=(dataclasses.replace(public, acl=public.acl | acl((OWNER, 0, "CREATE"))),))
    assert _sqls(plan(_policy(), snap)) == ['REVOKE CREATE ON SCHEMA "public" FROM PUBLIC CASCADE']


def test_non_superuser_admin_steps_say_what_they_need() -> None:
    snap = compliant(140000)
    public = dataclasses.replace(
        snap.schemas[0], owner=POSTGRES, acl=acl((POSTGRES, POSTGRES, "USAGE CREATE"), (POSTGRES, 0, "USAGE CREATE"))
    )
    me = dataclasses.replace(
        snap.server, current_role_oid=BI, current_role="bi", is_superuser=False, can_read_authid=False
    )
    snap = dataclasses.replace(snap, server=me, schemas=(public,), passwords=None)
    p = plan(_policy(), snap)
    blocked = [s for s in p.steps if not s.allowed]
    assert blocked and all(s.needs for s in blocked)
    assert all("owner of schema public" in (s.needs or "") for s in blocked if s.object == "schema public")


def _step(**kw: object) -> Step:
    from psycopg import sql

    base: dict[str, object] = dict(
        phase=Phase.DATABASE,
        action="grant",
        object='table "public"."t"',
        reason="app must read",
        sql=sql.SQL("GRANT SELECT ON t TO app"),
    )
    base.update(kw)
    return Step(**base)  # type: ignore[arg-type]


def test_sql_script_uses_the_policys_lock_timeout() -> None:
    p = Plan("shop", (_step(),), lock_timeout="750ms")
    script = plan_sql(p)
    assert "SET LOCAL lock_timeout = '750ms';" in script
    assert script.index("BEGIN;") < script.index("GRANT SELECT") < script.index("COMMIT;")
    assert (
        plan(_policy(apply=_policy().apply.model_copy(update={"lock_timeout": "2s"})), compliant()).lock_timeout == "2s"
    )


def test_text_list_for_pipes() -> None:
    text = plan_text([_step(), _step(action="revoke", destructive=True, allowed=False, needs="superuser")])
    lines = text.splitlines()
    assert lines[0] == '1. table "public"."t" — app must read'
    assert lines[1] == "     GRANT SELECT ON t TO app"
    assert lines[2].startswith("2. ") and lines[2].endswith("[destructive; needs superuser]")


def test_a_big_group_among_many_is_named_and_changed_by_lists() -> None:
    """Many schemas: a bulk statement scans all of pg_class, so a group that is a small part of the
    relations is fetched by name (groups_to_name) and granted as lists of at most 1000 tables."""
    from pgwarden.plan import BULK_FACTOR, OBJECTS_PER_STATEMENT, groups_to_name

    none = acl((OWNER, OWNER, " ".join(Capabilities(160000).table_owner_privileges)))
    policy = _policy()
    target = _table_group(1500, named=False, acl_=none)
    # the rest of the database: compliant relations, many times more than the group
    others = [_table_group(1500 * BULK_FACTOR, named=False)]
    snap = compliant(groups=[target, *others])
    # before the names are fetched: the plan can only use bulk, and asks for the names
    assert groups_to_name(policy, snap) == [target]
    named = dataclasses.replace(
        target, objects=tuple(ObjectRef(20000 + i, f"t{i:05d}", "r", None) for i in range(1500))
    )
    listed = plan(policy, compliant(groups=[named, *others]))
    grants = [s for s in listed.steps if s.action == "grant"]
    assert all("ALL TABLES" not in s.render() for s in grants)
    assert sorted(s.count for s in grants) == sorted([OBJECTS_PER_STATEMENT, 1500 - OBJECTS_PER_STATEMENT] * 2)
    # a group that is most of the relations stays one bulk statement per grantee, and is not named
    alone = compliant(groups=[target])
    assert groups_to_name(policy, alone) == []
    assert all("ALL TABLES IN SCHEMA" in s.render() for s in plan(policy, alone).steps if s.action == "grant")
