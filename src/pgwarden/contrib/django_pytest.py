"""pytest-django with the split: `django_db_setup` made by pgwarden's TestRunner (owner creates, migrates, hardens).

pytest-django ignores settings.TEST_RUNNER: it creates the test database itself, as the connection's
role (the app role, which may not create databases). In the project's conftest.py:

    from pgwarden.contrib.django_pytest import django_db_setup  # noqa: F401

The test database (and each xdist worker's, `test_<name>_gw0`, ...) is then created and migrated as
the owner and hardened as the policy says (pgwarden.contrib.django.TestRunner, steps 1-2 and 5 of
docs/django.md), and the tests run as the runtime role, with flushes and sequence resets run as the
owner. `--reuse-db` keeps the database (Django's --keepdb); `--create-db` makes it again.
"""
# mypy: disable-error-code="import-untyped,misc,untyped-decorator"

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """pytest-django's fixture of the same name, with pgwarden's TestRunner doing the work."""
    from pgwarden.contrib.django_testing import TestRunner

    keepdb = django_db_keepdb and not django_db_createdb
    runner = TestRunner(verbosity=request.config.option.verbose, interactive=False, keepdb=keepdb)
    with django_db_blocker.unblock():
        old_config = runner.setup_databases()
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            runner.teardown_databases(old_config)
