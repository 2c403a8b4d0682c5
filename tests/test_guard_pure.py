"""The guard judged by what it does, without a server: every property of an installed guard, changed
alone, makes the plan repair it; a stored event_triggers = off is reset at its level."""

from __future__ import annotations

import dataclasses

import pytest

from pgwarden.plan import plan
from pgwarden.plan.guard import SEARCH_PATH, function_source
from pgwarden.snapshot import GuardState, RoleSetting, Snapshot
from test_plan_pure import DB_OID, OWNER, _policy, compliant


def _guarded_policy() -> object:
    policy = _policy()
    return policy.model_copy(update={"guard": policy.guard.model_copy(update={"enabled": True})})


def _installed() -> GuardState:
    source = function_source(["public"], ["own"], "own")
    return GuardState(
        trigger_enabled="A",
        trigger_event="ddl_command_end",
        trigger_calls_function=True,
        source=source,
        security_definer=True,
        config=(SEARCH_PATH,),
        owner_is_superuser=True,
        acl="{postgres=X/postgres}",
        schema_exists=True,
        other_objects=0,
        trigger_tags=None,
        language="plpgsql",
        function_private=True,
        schema_owner_is_superuser=True,
        schema_private=True,
    )


def _steps(snap: Snapshot) -> list[str]:
    return [s.render() for s in plan(_guarded_policy(), snap).steps]  # type: ignore[arg-type]


def test_an_installed_guard_plans_nothing() -> None:
    assert _steps(dataclasses.replace(compliant(), guard=_installed())) == []


@pytest.mark.parametrize(
    "change",
    [
        {"trigger_enabled": "O"},  # origin sessions only: session_replication_role = replica passes it
        {"trigger_enabled": "R"},
        {"trigger_enabled": "D"},
        {"trigger_event": "sql_drop"},
        {"trigger_tags": ("CREATE FUNCTION",)},
        {"trigger_calls_function": False},
        {"source": "BEGIN END"},
        {"language": "sql"},
        {"security_definer": False},
        {"config": (SEARCH_PATH, "work_mem=64kB")},
        {"owner_is_superuser": False},
        {"function_private": False},
        {"schema_owner_is_superuser": False},
        {"schema_private": False, "schema_grantees": ("PUBLIC", "bi")},
    ],
)
def test_any_change_is_repaired_whatever_it_was(change: dict[str, object]) -> None:
    steps = _steps(dataclasses.replace(compliant(), guard=dataclasses.replace(_installed(), **change)))
    assert steps[:2] == [
        'DROP EVENT TRIGGER IF EXISTS "pgwarden_guard"',
        'DROP FUNCTION IF EXISTS "pgwarden"."guard"()',
    ]
    assert steps[-1] == 'ALTER EVENT TRIGGER "pgwarden_guard" ENABLE ALWAYS'
    assert 'ALTER SCHEMA "pgwarden" OWNER TO CURRENT_USER' in steps
    if "schema_grantees" in change:
        assert 'REVOKE ALL ON SCHEMA "pgwarden" FROM PUBLIC, "bi"' in steps


@pytest.mark.parametrize(
    ("role", "database", "statement"),
    [
        (OWNER, 0, 'ALTER ROLE "own" RESET "event_triggers"'),
        (OWNER, DB_OID, 'ALTER ROLE "own" IN DATABASE "shop" RESET "event_triggers"'),
        (0, DB_OID, 'ALTER DATABASE "shop" RESET "event_triggers"'),
        (0, 0, 'ALTER ROLE ALL RESET "event_triggers"'),
    ],
)
def test_event_triggers_off_is_reset_at_its_level(role: int, database: int, statement: str) -> None:
    settings = (RoleSetting(role, database, ("event_triggers=off",)),)
    snap = dataclasses.replace(compliant(170000), guard=_installed(), role_settings=settings)
    assert statement in _steps(snap)
    on = (RoleSetting(role, database, ("event_triggers=on",)),)
    assert statement not in _steps(dataclasses.replace(snap, role_settings=on))
    # where plan/outside.py resets a superuser-only setting already (a policy role's, the database's), once
    known = dataclasses.replace(snap, superuser_settings=frozenset({"event_triggers"}))
    assert _steps(known).count(statement) == 1
