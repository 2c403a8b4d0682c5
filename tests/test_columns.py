"""Column privileges: the policy grants on whole tables, so a column-level grant is drift that check
finds and apply revokes (a readonly role that could UPDATE one column, PUBLIC reading a secret)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from pgwarden.plan import plan
from pgwarden.snapshot import ColumnAcl
from test_check import check_json
from test_core import Split, applied_split
from test_plan_pure import OWNER, PUBLIC_NS, RO, _policy, acl, compliant


def test_a_column_grant_is_revoked_pure() -> None:
    column = ColumnAcl(20000, PUBLIC_NS, "t0", "r", OWNER, "name", acl((OWNER, RO, "UPDATE")))
    snap = dataclasses.replace(compliant(), columns=(column,))
    (step,) = plan(_policy(), snap).steps
    assert step.render() == 'REVOKE UPDATE ("name") ON TABLE "public"."t0" FROM "ro" CASCADE'
    assert step.action == "revoke" and step.role == "ro" and "more than its level (readonly)" in step.reason
    ignored = _policy(ignore=_policy().ignore.model_copy(update={"roles": ("ro",)}))
    assert plan(ignored, snap).steps == ()


@pytest.fixture
def split(tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup) -> Split:
    return applied_split(
        tmp_path,
        admin_dsn,
        unique_name,
        pg_cleanup,
        "CREATE TABLE public.customers (id int PRIMARY KEY, name text, email text)",
        "INSERT INTO public.customers VALUES (1, 'a', 'a@example.com')",
    )


def test_column_grants_are_found_proved_and_revoked(
    split: Split, admin_conn: psycopg.Connection[Any], unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    outsider = pg_cleanup.role(unique_name("nosy"))
    admin_conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(outsider)))
    ro, app = sql.Identifier(split.readonly), sql.Identifier(split.app)
    with split.admin_db() as db:
        db.execute(sql.SQL("GRANT UPDATE (name) ON public.customers TO {}").format(ro))
        db.execute("GRANT SELECT (email) ON public.customers TO PUBLIC")
        db.execute(sql.SQL("GRANT INSERT (name) ON public.customers TO {}").format(app))

    def proofs() -> dict[str, object]:
        out: dict[str, object] = {}
        with split.login(split.readonly) as conn, conn.transaction(force_rollback=True):
            try:
                conn.execute("UPDATE public.customers SET name = 'changed by readonly'")
                out["readonly updates a column"] = True
            except psycopg.errors.InsufficientPrivilege as exc:
                out["readonly updates a column"] = exc
        # any role: acting as one outside the policy (its login may not even connect any more)
        with split.admin_db() as conn, conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(outsider)))
            try:
                conn.execute("SELECT email FROM public.customers").fetchall()
                out["anyone reads the email"] = True
            except psycopg.errors.InsufficientPrivilege as exc:
                out["anyone reads the email"] = exc
        return out

    assert proofs() == {"readonly updates a column": True, "anyone reads the email": True}  # the hazard is real
    code, data = check_json(split)
    columns = {(f["object"], f["role"]) for f in data["findings"] if "of table public.customers" in f["object"]}
    assert code == 1 and columns == {
        ("UPDATE (name) of table public.customers", split.readonly),
        ("SELECT (email) of table public.customers", None),  # PUBLIC
        ("INSERT (name) of table public.customers", split.app),
    }, json.dumps(data["findings"], indent=1)
    split.apply()
    after = proofs()
    assert all(isinstance(v, psycopg.errors.InsufficientPrivilege) for v in after.values()), after
    with split.login(split.app) as conn, conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO public.customers VALUES (2, 'b', 'b@example.com')")  # its table grant stays
    code, data = check_json(split)
    assert code == 0, json.dumps(data["findings"], indent=1)


def test_a_policy_role_granted_a_secret_column_of_a_system_catalog_loses_it(split: Split) -> None:
    """GRANT SELECT (rolpassword) ON pg_authid: the app reads every password verifier. check finds it,
    apply revokes it; what initdb gives on the catalogs (pg_subscription's columns to PUBLIC) stays."""
    with split.admin_db() as db:
        db.execute(
            sql.SQL("GRANT SELECT (rolname, rolpassword) ON pg_catalog.pg_authid TO {}").format(
                sql.Identifier(split.app)
            )
        )
    with split.login(split.app) as conn:
        assert conn.execute("SELECT count(rolpassword) FROM pg_catalog.pg_authid").fetchone()  # the hazard is real
    code, data = check_json(split)
    found = [f for f in data["findings"] if "pg_authid" in f["object"]]
    assert code == 1 and [(f["object"], f["role"]) for f in found] == [
        ("SELECT (rolname, rolpassword) of table pg_catalog.pg_authid", split.app)
    ], json.dumps(data["findings"], indent=1)
    split.apply()
    with split.login(split.app) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT rolpassword FROM pg_catalog.pg_authid")
    code, data = check_json(split)
    assert code == 0, json.dumps(data["findings"], indent=1)
