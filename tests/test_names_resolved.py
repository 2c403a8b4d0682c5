"""Every name of a policy is resolved against the catalog on a real server: a misspelt table, excepted
table, excepted column, schema or ignored role is an error (exit 2, with the closest name the
database has) for plan, apply, check, probe and report, and changes nothing; a name the policy
declares `expected` is noted instead, and a misspelt `expected` entry is a file error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from conftest import PgCleanup
from helpers import CliResult, db_conninfo, run_cli

ENV = {"PGWARDEN_PASSWORD_NAMES_APP": "names-pw"}


def _policy(owner: str, app: str, db: str, grant: str = "", expected: str = "", schemas: str = '"app"') -> str:
    grant = grant or f'{{ role = "{app}", profile = "readonly", schemas = ["app"] }}'
    return f"""version = 2
[owner]
name = "{owner}"
login = false
[[roles]]
name = "{app}"
password_env = "PGWARDEN_PASSWORD_NAMES_APP"
[[databases]]
name = "{db}"
schemas = [{schemas}]
{expected}
grants = [
  {grant},
]
"""


class Names:
    def __init__(self, tmp_path: Path, admin_dsn: str, owner: str, app: str, db: str) -> None:
        self.path, self.dsn, self.owner, self.app, self.db = tmp_path / "pgwarden.toml", admin_dsn, owner, app, db

    def write(self, **kwargs: str) -> None:
        self.path.write_text(_policy(self.owner, self.app, self.db, **kwargs))

    def cli(self, *args: str) -> CliResult:
        return run_cli([*args, "-c", str(self.path), "--dsn", self.dsn], env=ENV)

    def as_app(self, statement: str) -> bool:
        """Whether the app role may run `statement` (acting as it)."""
        with psycopg.connect(db_conninfo(self.dsn, self.db), autocommit=True) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.app)))
            try:
                conn.execute(statement)  # type: ignore[arg-type]
            except errors.InsufficientPrivilege:
                return False
        return True


@pytest.fixture
def names(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Names:
    """Applied with a plain grant; then the owner's migration made app.customers(id, email, name) and
    app.secrets, and someone else made schema `reporting` (not managed). The app holds nothing on
    the new tables yet (the readonly grant is revoked by hand, so that a widening would show)."""
    owner, app = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("app"))
    db = pg_cleanup.database(unique_name("db"))
    n = Names(tmp_path, admin_dsn, owner, app, db)
    n.write()
    result = n.cli("apply", "--yes")
    assert result.exit_code == 0, str(result)
    with psycopg.connect(db_conninfo(admin_dsn, db), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA reporting")
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner)))
        conn.execute("CREATE TABLE app.customers (id int, email text, name text)")
        conn.execute("CREATE TABLE app.secrets (token text)")
        conn.execute("RESET ROLE")
        conn.execute(sql.SQL("REVOKE ALL ON app.customers, app.secrets FROM {}").format(sql.Identifier(app)))
    return n


def _except_columns(app: str, table: str, column: str) -> str:
    scope = f'schemas = ["app"], except_columns = {{ "{table}" = ["{column}"] }}'
    return f'{{ role = "{app}", profile = "readonly", {scope} }}'


def _refused(result: CliResult, wrong: str, right: str) -> None:
    assert result.exit_code == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and repr(wrong) in lines[0], str(result)
    assert lines[1].startswith("hint: ") and f"did you mean {right!r}" in lines[1], str(result)
    assert "Traceback" not in result.stderr


def test_a_misspelt_excepted_column_is_refused_everywhere_and_grants_nothing(names: Names) -> None:
    app = names.app
    names.write(grant=_except_columns(app, "app.customers", "emial"))
    for command in (["plan"], ["apply", "--yes"], ["check"], ["probe"], ["report"]):
        _refused(names.cli(*command), "emial", "email")
    # nothing was applied: the column meant to be hidden is not readable, nor is any other
    assert not names.as_app("SELECT email FROM app.customers")
    assert not names.as_app("SELECT name FROM app.customers")
    # spelt right, apply hides exactly that column
    names.write(grant=_except_columns(app, "app.customers", "email"))
    assert names.cli("apply", "--yes").exit_code == 0
    assert names.as_app("SELECT name FROM app.customers") and not names.as_app("SELECT email FROM app.customers")


def test_misspelt_tables_schemas_and_roles_are_refused_with_the_closest_name(names: Names) -> None:
    app = names.app
    cases = [
        (
            f'{{ role = "{app}", profile = "readonly", schemas = ["app"], except_tables = ["app.secrts"] }}',
            "app.secrts",
            "app.secrets",
        ),
        (f'{{ role = "{app}", profile = "readonly", tables = ["app.custmers"] }}', "app.custmers", "app.customers"),
        (
            _except_columns(app, "app.custmers", "email"),
            "app.custmers",
            "app.customers",
        ),
    ]
    for grant, wrong, right in cases:
        names.write(grant=grant)
        _refused(names.cli("apply", "--yes"), wrong, right)
    assert not names.as_app("SELECT token FROM app.secrets")  # the excepted table was never granted
    names.write(schemas='"app", "reportng"')
    _refused(names.cli("plan"), "reportng", "reporting")
    with psycopg.connect(db_conninfo(names.dsn, names.db), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'reportng'").fetchone() == (0,)
    names.write()
    names.path.write_text(names.path.read_text() + f'\n[ignore]\nroles = ["{app}x"]\n')
    _refused(names.cli("plan"), f"{app}x", app)
    # a retired role misspelt would keep the role meant to go: refused too (one already dropped is fine)
    with psycopg.connect(names.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(names.app + "_old")))
    try:
        names.write()
        names.path.write_text(f'retired = ["{app}_odl"]\n' + names.path.read_text())
        _refused(names.cli("plan"), f"{app}_odl", f"{app}_old")
        names.write()
        names.path.write_text(f'retired = ["{app}_gone_long_ago"]\n' + names.path.read_text())
        assert names.cli("plan").exit_code == 0
    finally:
        with psycopg.connect(names.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(names.app + "_old")))


def test_names_declared_expected_are_noted_and_a_misspelt_expected_is_a_file_error(names: Names) -> None:
    app = names.app
    grant = (
        f'{{ role = "{app}", profile = "readonly", schemas = ["app"], except_tables = ["app.invoices"], '
        f'except_columns = {{ "app.customers" = ["email", "phone"] }} }}'
    )
    names.write(grant=grant, expected='expected = ["app.invoices", "app.customers.phone"]')
    result = names.cli("plan", "--format", "json")
    assert result.exit_code == 0, str(result)
    notes = " ".join(result.json()["notes"])
    assert "app.invoices" in notes and "app.customers.phone" in notes and "expected later" in notes
    assert names.cli("apply", "--yes").exit_code == 0
    assert names.as_app("SELECT name FROM app.customers") and not names.as_app("SELECT email FROM app.customers")
    # the migration runs: the expected table exists now and stays excepted
    with psycopg.connect(db_conninfo(names.dsn, names.db), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(names.owner)))
        conn.execute("CREATE TABLE app.invoices (total int)")
    assert names.cli("apply", "--yes").exit_code == 0
    assert not names.as_app("SELECT total FROM app.invoices")
    # a typo in `expected` itself is caught when the file is read
    names.write(grant=grant, expected='expected = ["app.invoice", "app.customers.phone"]')
    result = names.cli("plan")
    assert result.exit_code == 2 and "'app.invoices'" in result.stderr and "expected" in result.stderr, str(result)


def test_a_new_database_is_checked_against_template1_before_anything_is_created(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    """public comes from template1, empty: a table listed there that no migration is expected to
    create is refused before apply creates a role or the database."""
    owner, app = pg_cleanup.role(unique_name("owner")), pg_cleanup.role(unique_name("app"))
    db = pg_cleanup.database(unique_name("db"))
    n = Names(tmp_path, admin_dsn, owner, app, db)
    n.path.write_text(
        _policy(
            owner, app, db, grant=f'{{ role = "{app}", profile = "readonly", tables = ["public.orders"] }}'
        ).replace('schemas = ["app"]', 'schemas = ["public"]', 1)
    )
    result = n.cli("apply", "--yes")
    assert result.exit_code == 2 and "'public.orders'" in result.stderr and "expected" in result.stderr, str(result)
    with psycopg.connect(admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", (owner, app)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (db,)).fetchone() == (0,)
    # declared expected, the same file applies, and the plan says the table is awaited
    n.path.write_text(n.path.read_text().replace("grants = [", 'expected = ["public.orders"]\ngrants = [', 1))
    result = n.cli("apply", "--yes")
    assert result.exit_code == 0, str(result)
