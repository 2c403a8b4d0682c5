"""Django integration: DATABASES entries for the runtime or the owner role, a system check, `pgwarden_check`.

settings.py:

    from pgwarden.contrib.django import database_settings
    DATABASES = {"default": database_settings("pgwarden.toml")}
    INSTALLED_APPS += ["pgwarden.contrib.django_app"]
    PGWARDEN_POLICY = "pgwarden.toml"          # relative: to BASE_DIR when set, else the current directory
    TEST_RUNNER = "pgwarden.contrib.django.TestRunner"   # tests as the app role (docs/django.md)

The entry is the runtime (readwrite access) role's, unless the process runs migrations: an explicit
switch, PGWARDEN_MIGRATE=1, which `pgwarden run --as owner` sets (argv is never looked at).
"""

from __future__ import annotations

from typing import Any

from pgwarden.contrib.django_db import (
    OWNER_KEY,
    admin_dsn_setting,
    database_settings,
    flush_as_owner,
    migrating,
    policy_path_setting,
    runtime_can_alter_schema,
)

__all__ = [
    "OWNER_KEY",
    "admin_dsn_setting",
    "database_settings",
    "flush_as_owner",
    "migrating",
    "policy_path_setting",
    "runtime_can_alter_schema",
]


def __getattr__(name: str) -> Any:
    # Lazy on purpose: TestRunner imports django.test, which settings.py (importing this module) must not
    # pull in. django_testing builds on django_db, not on this module, so this is no import cycle.
    if name == "TestRunner":
        from pgwarden.contrib.django_testing import TestRunner

        return TestRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
