"""The server-side comparison (plan/expect.py, queries/objects_expected.sql) is an optimisation only: on
generated databases the snapshot, the plan and check's findings are the same with it and without it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg import sql

from conftest import PgCleanup
from pgwarden.check import run_check
from pgwarden.plan.expect import expectations
from pgwarden.policy import Policy, parse_policy
from pgwarden.scopes import Scopes
from pgwarden.session import Session

#: Examples per PostgreSQL version in the suite: a few seconds each.
EXAMPLES = 20

TABLE_PRIVS = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SEQUENCE_PRIVS = ("USAGE", "SELECT", "UPDATE")


@dataclass
class World:
    """One database and four roles for every example: the owner, two access roles, a stranger."""

    admin_dsn: str
    database: str
    owner: str
    r1: str
    r2: str
    other: str

    def dsn(self) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_dsn, dbname=self.database)


@pytest.fixture
def world(admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Iterator[World]:
    w = World(
        admin_dsn,
        pg_cleanup.database(unique_name("cmp")),
        *(pg_cleanup.role(unique_name(n)) for n in ("own", "r1", "r2", "oth")),
    )
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for role in (w.owner, w.r1, w.r2, w.other):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(w.database), sql.Identifier(w.owner)))
    yield w


@dataclass
class Example:
    """Schemas and objects, the compliant grants, then what differs from them (SQL run as the admin)."""

    schemas: list[str]
    detailed: str | None  # a schema the policy treats object by object (an except_tables)
    statements: list[str] = field(default_factory=list)

    def script(self) -> str:
        return ";\n".join(self.statements) + ";"


def _policy(w: World, ex: Example) -> Policy:
    r2_grant = f'{{role = "{w.r2}", profile = "readonly", schemas = {ex.schemas!r}'
    if ex.detailed is not None:
        r2_grant += f', except_tables = ["{ex.detailed}.t1"]'
    text = f"""
version = 2
owner = {{name = "{w.owner}", login = false}}
roles = [{{name = "{w.r1}", login = false}}, {{name = "{w.r2}", login = false}}]
[[databases]]
name = "{w.database}"
schemas = {ex.schemas!r}
grants = [{{role = "{w.r1}", profile = "readwrite", schemas = {ex.schemas!r}}}, {r2_grant}}}]
""".replace("'", '"')
    return parse_policy(text)


@st.composite
def examples(draw: st.DrawFn, w: World) -> Example:
    schemas = [f"s{i}" for i in range(1, draw(st.integers(1, 3)) + 1)]
    if draw(st.integers(0, 3)) == 0:  # Sqitch's registry: every table and sequence of it is bookkeeping
        schemas[-1] = "sqitch"
    detailed = draw(st.sampled_from([None, *schemas]))
    ex = Example(schemas, detailed)
    s = ex.statements
    own, r1, r2, other = (sql.Identifier(n).as_string(None) for n in (w.owner, w.r1, w.r2, w.other))
    tables: list[str] = []
    sequences: list[str] = []
    for schema in schemas:
        s.append(f"CREATE SCHEMA {schema} AUTHORIZATION {own}")
        for i in range(1, draw(st.integers(1 if schema == detailed else 0, 4)) + 1):
            view = draw(st.integers(0, 4)) == 0
            s.append(
                f"CREATE VIEW {schema}.t{i} AS SELECT 1 AS a"
                if view
                else f"CREATE TABLE {schema}.t{i} (id serial, a int)"
            )
            s.append(f"ALTER TABLE {schema}.t{i} OWNER TO {own}")
            tables.append(f"{schema}.t{i}")
            if not view:
                sequences.append(f"{schema}.t{i}_id_seq")
        if draw(st.booleans()):
            s.append(f"CREATE FUNCTION {schema}.f1(x int) RETURNS int LANGUAGE sql AS 'SELECT x'")
            s.append(f"ALTER FUNCTION {schema}.f1(int) OWNER TO {own}")
        if draw(st.integers(0, 3)) == 0:  # a migration tool's bookkeeping table
            serial = "id serial, " if draw(st.booleans()) else ""  # its sequence is bookkeeping too
            s.append(f"CREATE TABLE {schema}.schema_migrations ({serial}version text)")
            s.append(f"ALTER TABLE {schema}.schema_migrations OWNER TO {own}")
        # what apply grants (r1 before r2: the order apply makes them in, by name)
        s.append(f"REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} FROM PUBLIC")
        s.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {r1}")
        s.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {r2}")
        s.append(f"GRANT SELECT, USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {r1}")
        s.append(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {r2}")
        s.append(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {r1}, {r2}")
        if draw(st.booleans()):  # created after the grants: a NULL ACL, or the default privileges'
            if draw(st.booleans()):
                s.append(f"ALTER DEFAULT PRIVILEGES FOR ROLE {own} IN SCHEMA {schema} GRANT SELECT ON TABLES TO {r2}")
            s.append(f"CREATE TABLE {schema}.late (a int)")
            s.append(f"ALTER TABLE {schema}.late OWNER TO {own}")
            tables.append(f"{schema}.late")
    for _ in range(draw(st.integers(0, 4))):  # then what differs
        s.append(draw(_difference(tables, sequences, own, r1, r2, other)))
    return ex


def _difference(
    tables: list[str], sequences: list[str], own: str, r1: str, r2: str, other: str
) -> st.SearchStrategy[str]:
    """One statement that makes an object differ (or, reordering an ACL, only look different)."""
    if not tables:
        return st.just("SELECT 1")
    table = st.sampled_from(tables)
    grantee = st.sampled_from([r1, r2, other, "PUBLIC"])
    privs = st.lists(st.sampled_from(TABLE_PRIVS), min_size=1, max_size=3, unique=True).map(", ".join)
    choices = [
        st.builds(lambda t, p, g: f"GRANT {p} ON {t} TO {g}", table, privs, grantee),
        st.builds(lambda t, p, g: f"REVOKE {p} ON {t} FROM {g}", table, privs, grantee),
        st.builds(lambda t, g: f"GRANT SELECT ON {t} TO {g} WITH GRANT OPTION", table, st.sampled_from([r1, r2])),
        st.builds(lambda t, g: f"GRANT UPDATE (a) ON {t} TO {g}", table, grantee),  # a column grant
        st.builds(lambda t, r: f"ALTER TABLE {t} OWNER TO {r}", table, st.sampled_from([other, r2])),
        st.builds(lambda t: f"REVOKE ALL ON {t} FROM {own}", table),
        # the same entries in another order: r2 before r1
        st.builds(
            lambda t: (
                f"REVOKE ALL ON {t} FROM {r1}, {r2}; GRANT SELECT ON {t} TO {r2}; "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {r1}"
            ),
            table,
        ),
    ]
    if sequences:
        choices.append(
            st.builds(lambda q, g: f"GRANT USAGE ON SEQUENCE {q} TO {g}", st.sampled_from(sequences), grantee)
        )
    return st.one_of(choices)


def _reset(w: World, ex: Example) -> None:
    with psycopg.connect(w.dsn(), autocommit=True) as conn:
        for schema in ("s1", "s2", "s3", "sqitch"):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE ALL ON TABLES FROM {}").format(
                sql.Identifier(w.owner), sql.Identifier(w.r2)
            )
        )
        for statement in ex.statements:
            conn.execute(statement)


def both_ways(w: World, policy: Policy) -> tuple[Any, Any]:
    """(snapshot, plan, check result) with the comparison on the server, and with the full fetch."""
    out = []
    for on_server in (True, False):
        with Session.open(w.admin_dsn, policy) as session:
            session.compare_on_server = on_server
            snap = session.snapshot()
            the_plan = session.plan(snap)
            result = run_check(session)
        out.append((snap, the_plan, result))
    return out[0], out[1]


def assert_same(w: World, policy: Policy, script: str) -> None:
    (snap_on, plan_on, check_on), (snap_off, plan_off, check_off) = both_ways(w, policy)
    whole = [s for s in policy.database.schemas if not Scopes.of(policy).detailed(s)]
    assert bool(expectations(policy, snap_on)) == bool(whole), "a schema taken as a whole: its ACLs are sent"
    only_on = [g for g in snap_on.objects if g not in snap_off.objects]
    only_off = [g for g in snap_off.objects if g not in snap_on.objects]
    assert snap_on.objects == snap_off.objects, f"{script}\nonly with: {only_on}\nonly without: {only_off}"
    assert snap_on == snap_off, script
    assert [s.render() for s in plan_on.steps] == [s.render() for s in plan_off.steps], script
    assert check_on.findings == check_off.findings, script


def test_the_comparison_on_the_server_changes_nothing(world: World, pg_version: int) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same databases on every run
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(examples(world))
    def check(ex: Example) -> None:
        _reset(world, ex)
        assert_same(world, _policy(world, ex), ex.script())

    check()


# --- the cases where the server must send everything ---------------------------------------------------------


def _one_schema(w: World, *extra: str) -> tuple[Policy, str]:
    own, r1, r2 = (sql.Identifier(n).as_string(None) for n in (w.owner, w.r1, w.r2))
    ex = Example(["s1"], None)
    ex.statements += [
        f"CREATE SCHEMA s1 AUTHORIZATION {own}",
        *(f"CREATE TABLE s1.t{i} (id serial, a int)" for i in range(1, 6)),
        *(f"ALTER TABLE s1.t{i} OWNER TO {own}" for i in range(1, 6)),
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA s1 TO {r1}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA s1 TO {r2}",
        f"GRANT SELECT, USAGE ON ALL SEQUENCES IN SCHEMA s1 TO {r1}",
        f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA s1 TO {r2}",
        *(e.format(own=own, r1=r1, r2=r2) for e in extra),
    ]
    _reset(w, ex)
    return _policy(w, ex), ex.script()


@pytest.mark.parametrize(
    ("case", "extra", "differing"),
    [
        ("mixed ACLs", ["GRANT TRUNCATE ON s1.t2 TO {r1}", "REVOKE SELECT ON s1.t3 FROM {r2}"], ["t2", "t3"]),
        ("a column grant", ["GRANT UPDATE (a) ON s1.t2 TO {r2}"], ["t2"]),  # the table's own ACL is compliant
        (
            "a NULL ACL (never granted)",
            ["CREATE TABLE s1.fresh (a int)", "ALTER TABLE s1.fresh OWNER TO {own}"],
            ["fresh"],
        ),
        (
            "an explicit ACL from default privileges",
            [
                "ALTER DEFAULT PRIVILEGES FOR ROLE {own} IN SCHEMA s1 GRANT SELECT ON TABLES TO {r2}",
                "SET ROLE {own}",
                "CREATE TABLE s1.fresh (a int)",
                "RESET ROLE",
            ],
            ["fresh"],
        ),
        ("an owner that differs", ["ALTER TABLE s1.t4 OWNER TO {r2}"], ["t4"]),
        (
            # its ACL is what any sequence of the schema should hold, but it writes the migration history
            "a bookkeeping table's sequence",
            [
                "CREATE TABLE s1.django_migrations (id serial, app text)",
                "ALTER TABLE s1.django_migrations OWNER TO {own}",
                "GRANT SELECT ON s1.django_migrations TO {r1}, {r2}",
                "GRANT SELECT, USAGE ON s1.django_migrations_id_seq TO {r1}",
                "GRANT SELECT ON s1.django_migrations_id_seq TO {r2}",
            ],
            ["django_migrations_id_seq"],
        ),
        (
            "the same entries in another order",
            ["REVOKE ALL ON s1.t5 FROM {r1}", "GRANT SELECT, INSERT, UPDATE, DELETE ON s1.t5 TO {r1}"],
            [],
        ),
    ],
)
def test_what_differs_comes_back_as_the_full_fetch_has_it(
    world: World, case: str, extra: list[str], differing: list[str]
) -> None:
    policy, script = _one_schema(world, *extra)
    (snap_on, plan_on, check_on), (snap_off, plan_off, check_off) = both_ways(world, policy)
    assert snap_on == snap_off, f"{case}\n{script}"
    assert [s.render() for s in plan_on.steps] == [s.render() for s in plan_off.steps]
    assert check_on.findings == check_off.findings
    rendered = "\n".join(s.render() for s in plan_on.steps)
    for name in differing:  # what differs is planned for, object by object
        assert f'"s1"."{name}"' in rendered, (case, rendered)
    if not differing:
        assert '"s1"."t' not in rendered, (case, rendered)


def test_an_extensions_members_are_never_counted_as_matching(world: World) -> None:
    """pg_trgm created by the owner (a trusted extension): its functions hold exactly the expected ACL,
    yet are extension members, which objects.sql keeps apart (bulk statements would reach them)."""
    with psycopg.connect(world.dsn()) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone() is None:
            pytest.skip("pg_trgm is not in these binaries")
    policy, script = _one_schema(
        world,
        "SET ROLE {own}",
        "CREATE EXTENSION pg_trgm SCHEMA s1",
        "RESET ROLE",
        # a trusted extension's members belong to the bootstrap superuser: give them to the owner
        "DO $$ DECLARE f regprocedure; BEGIN FOR f IN SELECT oid FROM pg_proc WHERE pronamespace = 's1'::regnamespace "
        "LOOP EXECUTE 'ALTER ROUTINE ' || f::text || ' OWNER TO {own}'; END LOOP; END $$",
        "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA s1 FROM PUBLIC",
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA s1 TO {r1}, {r2}",
    )
    (snap_on, plan_on, check_on), (snap_off, plan_off, check_off) = both_ways(world, policy)
    members = [g for g in snap_on.objects if g.extension and g.kind == "routine"]
    assert members and snap_on.role_name(members[0].owner) == world.owner, snap_on.objects
    acl = {(snap_on.role_name(g.grantee), g.privilege) for g in members[0].acl}
    assert acl == {(world.owner, "EXECUTE"), (world.r1, "EXECUTE"), (world.r2, "EXECUTE")}  # as expected
    assert snap_on == snap_off, script
    assert [s.render() for s in plan_on.steps] == [s.render() for s in plan_off.steps]
    assert check_on.findings == check_off.findings


def test_a_compliant_schema_matches_the_expectation_as_the_server_stores_it(world: World) -> None:
    """The expectation is worth sending only if it is what apply leaves: after pgwarden's own apply, every
    table, sequence and routine's stored ACL is the expected array, text for text."""
    from pgwarden.apply import apply

    own = sql.Identifier(world.owner).as_string(None)
    ex = Example(["s1"], None)
    ex.statements += [
        f"CREATE SCHEMA s1 AUTHORIZATION {own}",
        "CREATE TABLE s1.t1 (id serial, a int)",
        "CREATE VIEW s1.v1 AS SELECT 1 AS a",
        "CREATE FUNCTION s1.f1(x int) RETURNS int LANGUAGE sql AS 'SELECT x'",
        f"ALTER TABLE s1.t1 OWNER TO {own}",
        f"ALTER VIEW s1.v1 OWNER TO {own}",
        f"ALTER FUNCTION s1.f1(int) OWNER TO {own}",
    ]
    _reset(world, ex)
    policy = _policy(world, ex)
    with Session.open(world.admin_dsn, policy) as session:
        apply(session, {})
    with Session.open(world.admin_dsn, policy) as session:
        snap = session.snapshot()
        expected = expectations(policy, snap)
    assert len(expected) == 1
    with psycopg.connect(world.dsn()) as conn:
        stored = dict(
            conn.execute(
                "SELECT CASE relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, relacl::text FROM pg_class "
                "WHERE relnamespace = 's1'::regnamespace UNION "
                "SELECT 'routine', proacl::text FROM pg_proc WHERE pronamespace = 's1'::regnamespace"
            ).fetchall()
        )
        for kind in ("table", "sequence", "routine"):
            as_sent = conn.execute("SELECT %s::text[]::aclitem[]::text", (expected[0][kind],)).fetchone()
            assert as_sent is not None and as_sent[0] == stored[kind], kind
