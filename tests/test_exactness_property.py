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
    # Grant options and default privileges ON TYPES are left out here: the policy cannot say them yet (issue 20
    # stays open on them), and the two strict xfail tests below state each gap on its own; bench/exactness.py
    # draws them.
    @given(exactness.examples(exact_versions, grant_options=False, type_defaults=False))
    def check(ex: exactness.Example) -> None:
        outcome = exactness.check_example(admin, ex, tmp_path)
        assert outcome.ok, (
            f"{outcome.describe()}\n-- the database:\n{ex.script()}\n-- the path:\n{outcome.run.transcript()}"
        )

    check()


#: E3 of the exactness notes: a role holding privileges WITH GRANT OPTION (here CONNECT on the database).
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
]


@pytest.mark.xfail(
    strict=True,
    reason="issue 20 (open): the policy cannot say grant options yet, so the adoption path revokes them; "
    "this test passes, and so fails as strict xfail, the day it can",
)
def test_grant_options_are_kept(pg_server: LocalServer, exact_versions: int, tmp_path: Path) -> None:
    ex = exactness.Example(exact_versions, "xq_", "xq_own", True, ["xq_r1"], list(GRANT_OPTION_DATABASE))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()


#: E9 of the exactness notes: the owner's default privileges ON TYPES for a role, in one schema.
TYPE_DEFAULTS_DATABASE = [
    "CREATE DATABASE xq_db",
    "\\c xq_db",
    "CREATE ROLE xq_own NOLOGIN",
    "CREATE ROLE xq_r1 NOLOGIN",
    "CREATE SCHEMA s1 AUTHORIZATION xq_own",
    "CREATE TABLE s1.t1 (id int)",
    "ALTER TABLE s1.t1 OWNER TO xq_own",
    "ALTER DEFAULT PRIVILEGES FOR ROLE xq_own IN SCHEMA s1 GRANT USAGE ON TYPES TO xq_r1",
]


@pytest.mark.xfail(
    strict=True,
    reason="issue 20 (open): profiles say nothing of types yet, so the owner's default privileges ON TYPES for a "
    "role are revoked; this test passes, and so fails as strict xfail, the day they can",
)
def test_type_default_privileges_are_kept(pg_server: LocalServer, exact_versions: int, tmp_path: Path) -> None:
    ex = exactness.Example(exact_versions, "xq_", "xq_own", True, ["xq_r1"], list(TYPE_DEFAULTS_DATABASE))
    outcome = exactness.check_example(pg_server.conninfo("postgres"), ex, tmp_path)
    assert outcome.ok, outcome.describe()
