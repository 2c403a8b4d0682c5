"""Never wider, never narrower: on random databases, init --from-database and the documented adoption path
change no non-superuser role's effective privileges beyond what the split itself takes and gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

import exactness
from pgwarden.server import LocalServer

#: Examples per PostgreSQL version in the suite; bench/exactness.py runs the long version.
EXAMPLES = 30


@pytest.fixture
def exact_versions(pg_version: int) -> int:
    if pg_version not in (14, 17):
        pytest.skip("the exactness property runs on 14 and 17 in the suite; bench/exactness.py runs 14-18")
    return pg_version


def test_generated_policy_and_adoption_path_widen_and_narrow_nothing(
    pg_server: LocalServer, exact_versions: int, tmp_path: Path
) -> None:
    admin = pg_server.conninfo("postgres")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same databases on every run: CI is deterministic
        database=None,
        phases=[Phase.explicit, Phase.generate],  # shrinking on a real server is for bench/exactness.py
        suppress_health_check=list(HealthCheck),
    )
    @given(exactness.examples(exact_versions))
    def check(ex: exactness.Example) -> None:
        outcome = exactness.check_example(admin, ex, tmp_path)
        assert outcome.ok, (
            f"{outcome.describe()}\n-- the database:\n{ex.script()}\n-- the path:\n{outcome.run.transcript()}"
        )

    check()


#: E3 of the exactness notes: a role holding privileges WITH GRANT OPTION (the database, a schema, a table,
#: a sequence, a routine); the policy says them (`grant_option`).
GRANT_OPTION_DATABASE = [
    "CREATE DATABASE xq_db",
    "\\c xq_db",
    "CREATE ROLE xq_own NOLOGIN",
    "CREATE ROLE xq_r1 NOLOGIN",
    "CREATE SCHEMA s1 AUTHORIZATION xq_own",
    "CREATE TABLE s1.t1 (id serial, a int, b text)",
    "ALTER TABLE s1.t1 OWNER TO xq_own",
    "GRANT CONNECT ON DATABASE xq_db TO xq_r1 WITH GRANT OPTION",
    "GRANT SELECT ON s1.t1 TO xq_r1 WITH GRANT OPTION",
    "GRANT USAGE ON SCHEMA s1 TO xq_r1 WITH GRANT OPTION",
    "GRANT UPDATE ON SEQUENCE s1.t1_id_seq TO xq_r1 WITH GRANT OPTION",
    "CREATE FUNCTION s1.f1(x int) RETURNS int LANGUAGE sql AS 'SELECT x'",
    "ALTER FUNCTION s1.f1(int) OWNER TO xq_own",
    "GRANT EXECUTE ON FUNCTION s1.f1(int) TO xq_r1 WITH GRANT OPTION",
]


def test_grant_options_are_kept(pg_server: LocalServer, exact_versions: int, tmp_path: Path) -> None:
    ex = exactness.Example(exact_versions, "xq_", "xq_own", True, ["xq_r1"], list(GRANT_OPTION_DATABASE))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()


#: E9 of the exactness notes: the owner's default privileges ON TYPES for a role, in one schema and in every one.
TYPE_DEFAULTS_DATABASE = [
    "CREATE DATABASE xq_db",
    "\\c xq_db",
    "CREATE ROLE xq_own NOLOGIN",
    "CREATE ROLE xq_r1 NOLOGIN",
    "CREATE SCHEMA s1 AUTHORIZATION xq_own",
    "CREATE TABLE s1.t1 (id int)",
    "ALTER TABLE s1.t1 OWNER TO xq_own",
    "ALTER DEFAULT PRIVILEGES FOR ROLE xq_own IN SCHEMA s1 GRANT USAGE ON TYPES TO xq_r1",
    "CREATE ROLE xq_r2 LOGIN",
    "ALTER DEFAULT PRIVILEGES FOR ROLE xq_own GRANT USAGE ON TYPES TO xq_r2",
]


def test_type_default_privileges_are_kept(pg_server: LocalServer, exact_versions: int, tmp_path: Path) -> None:
    ex = exactness.Example(exact_versions, "xq_", "xq_own", True, ["xq_r1", "xq_r2"], list(TYPE_DEFAULTS_DATABASE))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()


#: E10 of the exactness notes: a member of a previous owner (xq_r2) that is also a member of a role holding
#: nothing in the database (xq_r3, itself a member of xq_r1): it keeps that membership.
def _member_elsewhere(version: int) -> list[str]:
    options = " WITH INHERIT TRUE, SET FALSE" if version >= 16 else ""
    return [
        "CREATE DATABASE xq_db",
        "\\c xq_db",
        "CREATE ROLE xq_r1 LOGIN",
        "CREATE ROLE xq_r2 NOLOGIN",
        "CREATE ROLE xq_r3 NOLOGIN",
        "CREATE ROLE xq_r4 LOGIN",
        "GRANT xq_r1 TO xq_r3",
        f"GRANT xq_r2 TO xq_r4{options}",
        "GRANT xq_r3 TO xq_r4",
        "CREATE SCHEMA s1 AUTHORIZATION xq_r2",
        "CREATE TABLE s1.t1 (id serial, a int, b text)",
        "ALTER TABLE s1.t1 OWNER TO xq_r2",
    ]


def test_a_member_of_a_previous_owner_keeps_its_other_memberships(
    pg_server: LocalServer, exact_versions: int, tmp_path: Path
) -> None:
    roles = ["xq_r1", "xq_r2", "xq_r3", "xq_r4"]
    ex = exactness.Example(exact_versions, "xq_", "xq_own", False, roles, _member_elsewhere(exact_versions))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()


#: E11 of the exactness notes: three previous owners in a chain of memberships (xq_r3 in xq_r2 in xq_r1); the
#: LOGIN role in the middle holds nothing once ownership moves, yet it is a group of xq_r3, not a person.
def _owners_in_a_chain(version: int) -> list[str]:
    options = " WITH SET FALSE, ADMIN FALSE" if version >= 16 else ""
    return [
        "CREATE DATABASE xq_db",
        "\\c xq_db",
        "CREATE ROLE xq_r1 NOLOGIN",
        "CREATE ROLE xq_r2 LOGIN",
        "CREATE ROLE xq_r3 NOLOGIN",
        f"GRANT xq_r1 TO xq_r2{options}",
        "GRANT xq_r2 TO xq_r3",
        "ALTER DATABASE xq_db OWNER TO xq_r3",
        "CREATE SCHEMA s1 AUTHORIZATION xq_r1",
        "CREATE VIEW s1.t1 AS SELECT 1 AS a",
        "ALTER VIEW s1.t1 OWNER TO xq_r2",
        "CREATE TABLE s1.t2 (k int, a int)",
        "ALTER TABLE s1.t2 OWNER TO xq_r3",
    ]


def test_a_role_others_are_members_of_is_never_written_as_a_person(
    pg_server: LocalServer, exact_versions: int, tmp_path: Path
) -> None:
    roles = ["xq_r1", "xq_r2", "xq_r3"]
    ex = exactness.Example(exact_versions, "xq_", "xq_own", False, roles, _owners_in_a_chain(exact_versions))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()


#: E12 of the exactness notes: a member of a group holding TEMPORARY WITH GRANT OPTION itself (more than a person's
#: CONNECT: written as a role of its own), and the owner's defaults on types in a schema with no objects yet.
TEMPORARY_AND_EMPTY_SCHEMA_DEFAULTS = [
    "CREATE DATABASE xq_db",
    "\\c xq_db",
    "CREATE ROLE xq_own NOLOGIN",
    "CREATE ROLE xq_r1 NOLOGIN",
    "CREATE ROLE xq_r2 LOGIN",
    "CREATE ROLE xq_r4 LOGIN",
    "GRANT xq_r1 TO xq_r2",
    "CREATE SCHEMA s1 AUTHORIZATION xq_own",
    "CREATE TABLE s1.t1 (id int)",
    "ALTER TABLE s1.t1 OWNER TO xq_own",
    "GRANT USAGE ON SCHEMA s1 TO xq_r1",
    "GRANT SELECT ON s1.t1 TO xq_r1",
    "GRANT TEMPORARY ON DATABASE xq_db TO xq_r2 WITH GRANT OPTION",
    "ALTER DEFAULT PRIVILEGES FOR ROLE xq_own IN SCHEMA public GRANT USAGE ON TYPES TO xq_r4",
]


def test_a_members_temporary_and_defaults_in_an_empty_schema_are_kept(
    pg_server: LocalServer, exact_versions: int, tmp_path: Path
) -> None:
    roles = ["xq_r1", "xq_r2", "xq_r4"]
    ex = exactness.Example(exact_versions, "xq_", "xq_own", True, roles, list(TEMPORARY_AND_EMPTY_SCHEMA_DEFAULTS))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()


#: E13 of the exactness notes: a role written as a role of its own (a member of xq_r3, which holds nothing) is also a
#: member of a LOGIN (xq_r2) that would otherwise be a person: that one is a group of xq_r4's, not a person.
def _member_of_a_would_be_person(version: int) -> list[str]:
    new = version >= 16
    return [
        "CREATE DATABASE xq_db",
        "\\c xq_db",
        "CREATE ROLE xq_r1 LOGIN",
        "CREATE ROLE xq_r2 LOGIN",
        "CREATE ROLE xq_r3 NOLOGIN",
        "CREATE ROLE xq_r4 LOGIN",
        "GRANT xq_r1 TO xq_r2" + (" WITH INHERIT TRUE, ADMIN TRUE" if new else " WITH ADMIN OPTION"),
        "GRANT xq_r1 TO xq_r3" + (" WITH INHERIT FALSE" if new else ""),
        "GRANT xq_r1 TO xq_r4",
        "GRANT xq_r2 TO xq_r4" + (" WITH INHERIT FALSE" if new else ""),
        "GRANT xq_r3 TO xq_r4",
        "ALTER DATABASE xq_db OWNER TO xq_r1",
        "CREATE SCHEMA s1",
        "CREATE TABLE s1.t1 (id serial, a int, b text)",
        "ALTER TABLE s1.t1 OWNER TO xq_r1",
    ]


def test_a_role_members_of_which_are_roles_of_their_own_is_a_group(
    pg_server: LocalServer, exact_versions: int, tmp_path: Path
) -> None:
    roles = ["xq_r1", "xq_r2", "xq_r3", "xq_r4"]
    ex = exactness.Example(exact_versions, "xq_", "xq_own", False, roles, _member_of_a_would_be_person(exact_versions))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()
