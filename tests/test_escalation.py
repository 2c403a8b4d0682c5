"""Membership paths to the owner as PostgreSQL 16 knows them, on real servers: a grant by another
grantor, ADMIN OPTION alone. Each is proved by acting as the access role, found, and repaired both
by the finding's fix and by apply."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgCleanup
from helpers import role_conninfo
from test_check import check_json
from test_core import make_split
from test_outside import works


@pytest.mark.minversion(16)  # membership options, and grants recorded per grantor, exist from 16
def test_paths_to_the_owner_by_another_grantor_and_by_admin_option_alone(
    tmp_path: Path, admin_dsn: str, unique_name: Callable[[str], str], pg_cleanup: PgCleanup
) -> None:
    split = make_split(tmp_path, admin_dsn, unique_name, pg_cleanup)
    split.apply()
    app, ro, owner = split.app, split.readonly, split.owner
    mig = pg_cleanup.role(unique_name("mig"))
    o, a, r, m = (sql.Identifier(n) for n in (owner, app, ro, mig))

    def tamper() -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [mig]).fetchone():
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'mig-pw'").format(m))
            admin.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(o, m))
            # ADMIN OPTION alone: no inherited rights, no SET ROLE
            admin.execute(sql.SQL("GRANT {} TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(o, r))
        with psycopg.connect(role_conninfo(admin_dsn, mig, "mig-pw", split.database), autocommit=True) as mc:
            mc.execute(sql.SQL("GRANT {} TO {}").format(o, a))  # recorded as granted by mig

    def proofs() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with split.login(app) as c:
            out["app acts as the owner"] = works(c, sql.SQL("SET ROLE {}").format(o))
        with split.login(ro) as c:
            took = works(c, sql.SQL("GRANT {} TO {}").format(o, r))
            if not isinstance(took, Exception):
                took = works(c, sql.SQL("SET ROLE {}").format(o))
                c.execute("RESET ROLE")
                c.execute(sql.SQL("REVOKE {} FROM {}").format(o, r))
            out["ro grants itself the owner"] = took
        return out

    tamper()
    assert all(not isinstance(v, Exception) for v in proofs().values())
    _, data = check_json(split)
    hazards = {f["role"]: f for f in data["findings"] if f["rule"] == "access.member-of-owner"}
    assert set(hazards) == {app, ro}, data["findings"]
    assert hazards[app]["fix"] == sql.SQL("REVOKE {} FROM {} GRANTED BY {}").format(o, a, m).as_string(None)
    with split.admin_db() as adb:  # the fixes, as printed, as the admin
        for f in hazards.values():
            for statement in f["fix"].split("; "):
                adb.execute(statement)
    assert all(isinstance(v, Exception) for v in proofs().values())
    split.assert_clean()

    tamper()
    split.apply()
    after = proofs()
    assert all(isinstance(v, psycopg.errors.InsufficientPrivilege) for v in after.values()), after
    split.assert_clean()
