"""Other tools on the same database: ldap2pg 5.9 and pgbedrock 0.4.2 dry runs (--compare-tools)."""

from __future__ import annotations

from typing import Any

from bench import fixture
from bench.measure import Row


def measure_tools(ctx: Any, size: fixture.Size) -> list[Row]:
    return [Row("ldap2pg 5.9 dry run", size.tables, skipped="not implemented yet")]
