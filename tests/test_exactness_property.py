"""Never wider, never narrower: on random databases, init --from-database and the documented adoption path
change no non-superuser role's effective privileges beyond what the split itself takes and gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

import exactness
from pgwarden.server import LocalServer

#: Examples per PostgreSQL version in the suite; bench/exactness.py runs the long version.
EXAMPLES = 12


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
