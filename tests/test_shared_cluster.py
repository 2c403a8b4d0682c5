"""A fleet's cluster-level part read once (pgwarden.shared): each database's findings are those of checking it alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import db_conninfo, run_cli
from pgwarden.check import run_check
from pgwarden.cli import load_targets
from pgwarden.fetch import fetch
from pgwarden.session import Session
from pgwarden.shared import read_shared
from pgwarden.snapshot import ServerInfo

SERVER_PARAMS: dict[str, list[str]] = {"settings": [], "schemas": []}


def _file(dbs: list[str], owner: str, app: str) -> str:
    entries = "\n".join(
        f'[[databases]]\nname = "{db}"\ngrants = [{{ role = "{app}", profile = "readwrite", schemas = ["public"] }}]\n'
        for db in dbs
    )
    roles = f'[owner]\nname = "{owner}"\nlogin = false\n\n[[roles]]\nname = "{app}"\nlogin = false\n'
    return f"version = 2\n\n{roles}\n{entries}"


def _fleet(tmp_path: Path, admin_dsn: str, unique_name: Any, pg_cleanup: Any) -> tuple[Path, list[str], str, str]:
    owner, app = pg_cleanup.role(unique_name("own")), pg_cleanup.role(unique_name("app"))
    prefix = unique_name("sh")
    dbs = [pg_cleanup.database(f"{prefix}_{i}") for i in range(3)]
    cfg = tmp_path / "p.toml"
    cfg.write_text(_file(dbs, owner, app))
    applied = run_cli(["apply", "-c", str(cfg), "--yes", "-j", "2", "--dsn", admin_dsn, "-d", f"{prefix}_*"])
    assert applied.exit_code == 0, applied
    return cfg, dbs, owner, app


def _as_role(admin_dsn: str, dbname: str, role: str, statement: str) -> None:
    """Run `statement` as `role` (SET ROLE) and roll it back: proves what the role can do."""
    with psycopg.connect(db_conninfo(admin_dsn, dbname)) as conn:
        conn.execute(f'SET ROLE "{role}"')
        conn.execute(statement)
        conn.rollback()


def _timeless(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "seconds"} for d in doc["databases"]]


def _findings(session: Session) -> list[tuple[str, str, str | None, str | None]]:
    return [(f.rule, f.object, f.role, f.fix) for f in run_check(session).findings]


def test_fleet_check_with_the_shared_cluster_part_finds_what_each_database_alone_finds(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    cfg, dbs, owner, app = _fleet(tmp_path, admin_dsn, unique_name, pg_cleanup)
    # cluster-level: the access role reads every table of the cluster (a membership, read once for the fleet)
    admin_conn.execute(f'GRANT pg_read_all_data TO "{app}"')
    # a grant on another database (outside_databases.sql, read once and filtered per database)
    admin_conn.execute(f'GRANT CREATE ON DATABASE "{dbs[2]}" TO "{app}"')
    # a role setting in one database only (role settings of every database, filtered per database): a
    # superuser-only parameter that every session of the access role there would run with
    admin_conn.execute(f'ALTER ROLE "{app}" IN DATABASE "{dbs[1]}" SET session_replication_role = replica')
    # per database: the access role owns a table in the first one
    with psycopg.connect(db_conninfo(admin_dsn, dbs[0]), autocommit=True) as conn:
        conn.execute(f'CREATE TABLE secret (id int); ALTER TABLE secret OWNER TO "{owner}"')
        conn.execute(f'CREATE TABLE mine (id int); ALTER TABLE mine OWNER TO "{app}"')
    # the hazards are real: the access role reads a table nobody granted it, and may grant its own
    _as_role(admin_dsn, dbs[0], app, "SELECT * FROM secret")
    _as_role(admin_dsn, dbs[0], app, "GRANT ALL ON mine TO PUBLIC")
    _as_role(admin_dsn, dbs[2], app, "CREATE SCHEMA app_made")

    fleet = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-j", "2", "--format", "json"])
    assert fleet.exit_code == 1, fleet
    alone = [run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-d", db, "--format", "json"]) for db in dbs]
    by_db = {d["database"]: d for d in _timeless(fleet.json())}
    for db, one in zip(dbs, alone, strict=True):
        assert one.exit_code == 1, one
        assert by_db[db]["findings"] == one.json()["findings"], db
    fixes = {db: " ".join(str(f.get("fix")) for f in by_db[db]["findings"]) for db in dbs}
    assert all("pg_read_all_data" in fixes[db] for db in dbs), fixes
    assert dbs[2] in fixes[dbs[0]] and dbs[2] in fixes[dbs[1]], fixes  # REVOKE CREATE ON DATABASE
    assert "session_replication_role" in fixes[dbs[1]] and "session_replication_role" not in fixes[dbs[0]], fixes
    assert "mine" in fixes[dbs[0]] and "mine" not in fixes[dbs[1]], fixes

    # the fleet took the shared part (it stands for every database's own read), and the library
    # gives the same findings with it as without
    targets = load_targets(str(cfg), None, admin_dsn, ())
    part = read_shared(admin_dsn, list(targets.values()))
    assert part is not None
    for db, policy in targets.items():
        with psycopg.connect(db_conninfo(admin_dsn, db)) as conn:
            server = fetch(conn, "server", ServerInfo, SERVER_PARAMS)[0]
        assert part.serves(server, policy.role_names), db
        with Session.open(admin_dsn, policy, part) as shared, Session.open(admin_dsn, policy) as own:
            assert _findings(shared) == _findings(own), db


def test_a_database_whose_reads_differ_from_the_parents_reads_its_own(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    cfg, dbs, owner, app = _fleet(tmp_path, admin_dsn, unique_name, pg_cleanup)
    # VALID UNTIL is read in the session's time zone: another one in one database makes its roles'
    # rows differ from the admin connection's, so that database must not take the shared part
    admin_conn.execute(f"ALTER ROLE \"{app}\" VALID UNTIL '2031-01-01 00:00:00+00'")
    admin_conn.execute(f"ALTER DATABASE \"{dbs[1]}\" SET timezone = 'Pacific/Auckland'")
    targets = load_targets(str(cfg), None, admin_dsn, ())
    part = read_shared(admin_dsn, list(targets.values()))
    assert part is not None
    with psycopg.connect(db_conninfo(admin_dsn, dbs[1])) as conn:
        server = fetch(conn, "server", ServerInfo, SERVER_PARAMS)[0]
    assert not part.serves(server, targets[dbs[1]].role_names)
    with Session.open(admin_dsn, targets[dbs[1]], part) as shared:
        snap = shared.snapshot(shared=True)
    valid_until = snap.role_by_name[app].valid_until
    assert valid_until is not None and valid_until.startswith("2031-01-01T13:00"), valid_until  # Auckland, UTC+13
    fleet = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-j", "2", "--format", "json"])
    alone = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-d", dbs[1], "--format", "json"])
    assert {d["database"]: d for d in _timeless(fleet.json())}[dbs[1]]["findings"] == alone.json()["findings"]


@pytest.mark.parametrize("readable", [True, False])
def test_the_cluster_statement_reads_what_the_four_queries_read(admin_conn: Any, readable: bool) -> None:
    from pgwarden.rows import PasswordRow, RoleSettingRow
    from pgwarden.shared import read_cluster
    from pgwarden.snapshot import Membership, Role

    server = fetch(admin_conn, "server", ServerInfo, SERVER_PARAMS)[0]
    names = ["postgres"] if readable else []
    part = read_cluster(admin_conn, server, names)
    assert part.roles == {r.oid: r for r in fetch(admin_conn, "roles", Role)}
    assert part.memberships == tuple(fetch(admin_conn, "memberships", Membership))
    settings = fetch(admin_conn, "role_settings", RoleSettingRow, {"all_databases": False})
    assert [(s.role, s.database, s.settings) for s in part.role_settings] == [
        (s.role, s.database, tuple(s.settings or ())) for s in settings
    ]
    rows = fetch(admin_conn, "passwords", PasswordRow, {"names": names})
    assert part.passwords == ({r.oid: r.password for r in rows} if readable else None)


def test_a_fleets_report_of_changes_outside_pgwarden_is_each_databases_own(
    tmp_path: Path, admin_dsn: str, admin_conn: Any, unique_name: Any, pg_cleanup: Any
) -> None:
    # each database's ledger recorded its state at the fleet's apply; a worker that checks several
    # databases digests the cluster's rows once (pgwarden.fingerprint, by identity): what it keeps
    # from one database must not stand for another's, whose own changes alone it reports
    cfg, dbs, owner, app = _fleet(tmp_path, admin_dsn, unique_name, pg_cleanup)
    admin_conn.execute(f'GRANT CREATE ON DATABASE "{dbs[2]}" TO "{app}"')  # a row every database reads
    with psycopg.connect(db_conninfo(admin_dsn, dbs[0]), autocommit=True) as conn:  # a row of dbs[0] only
        conn.execute(f'CREATE SCHEMA elsewhere; GRANT CREATE ON SCHEMA elsewhere TO "{app}"')
    _as_role(admin_dsn, dbs[0], app, "CREATE TABLE elsewhere.made (id int)")  # the grants are real
    _as_role(admin_dsn, dbs[2], app, "CREATE SCHEMA app_made")

    fleet = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-j", "2", "--format", "json"])
    assert fleet.exit_code == 1, fleet
    by_db = {d["database"]: d for d in _timeless(fleet.json())}
    for db in dbs:
        alone = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-d", db, "--format", "json"])
        assert alone.exit_code == 1, alone
        assert by_db[db]["findings"] == alone.json()["findings"], db
        assert by_db[db].get("outside_pgwarden") == alone.json().get("outside_pgwarden"), db
    changed = {db: by_db[db].get("outside_pgwarden", {}).get("changed", []) for db in dbs}
    assert "outside:schema" in changed[dbs[0]], changed
    assert "outside:schema" not in changed[dbs[1]] and "outside:schema" not in changed[dbs[2]], changed
    assert "database" in changed[dbs[2]] and "database" not in changed[dbs[1]], changed
    # the grant on dbs[2] is dbs[2]'s change to report (its `database` part), not the others': dbs[1]
    # has the finding it makes and nothing changed of its own (pgwarden.ledger.OTHER_DATABASES)
    assert changed[dbs[1]] == [] and all("outside:database" not in c for c in changed.values()), changed


def test_a_fleets_admin_connection_sends_nothing_per_database(
    tmp_path: Path, admin_dsn: str, unique_name: Any, pg_cleanup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each database's "does it exist?" was a statement on the admin connection; the fleet's shared
    # read now answers it (ClusterPart.database_names), so what the admin connection sends does not
    # grow with the fleet. The statements are counted as psycopg sends them (the server is real).
    cfg, dbs, _, _ = _fleet(tmp_path, admin_dsn, unique_name, pg_cleanup)
    sent: list[tuple[str, str]] = []
    execute = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        sent.append((str(self.connection.info.dbname), str(query)[:200]))
        return execute(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)

    def admin_statements(selected: list[str]) -> list[str]:
        sent.clear()
        args = [a for db in selected for a in ("-d", db)]  # -j 1: in this process, one after the other
        result = run_cli(["check", "-c", str(cfg), "--dsn", admin_dsn, "-j", "1", "--format", "json", *args])
        assert result.exit_code == 0, result
        assert [d["database"] for d in result.json()["databases"]] == selected
        assert {db for db, _ in sent if db in dbs} == set(selected)  # each read on its own connection
        return [q for db, q in sent if db not in dbs]

    two, three = admin_statements(dbs[:2]), admin_statements(dbs)
    assert two == three and two  # the shared read, once, whatever the number of databases
