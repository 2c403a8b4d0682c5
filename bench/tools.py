"""Other tools on the same database: ldap2pg 5.9 and pgbedrock 0.4.2 dry runs (--compare-tools).

They live in the benchmark's own virtual environment (never pgwarden's): pgbedrock 0.4.2 and
ldap2pg 5.9 are pure-Python wheels on PyPI; their dependencies need two substitutions on a machine
without PostgreSQL/LDAP headers: psycopg2-binary stands in for psycopg2 (same import name; building
psycopg2 needs pg_config), and python-ldap (ldap2pg imports it even without LDAP) is compiled and
needs the libldap2-dev and libsasl2-dev headers. ldap2pg 6 is a Go binary, not on PyPI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import fixture
from bench.measure import Row

PGBEDROCK = "pgbedrock==0.4.2"
LDAP2PG = "ldap2pg==5.9"
DEPENDENCIES = ("psycopg2-binary", "cerberus", "click", "jinja2", "pyyaml", "python-ldap", "pyasn1", "pyasn1-modules")


def venv_dir() -> Path:
    from pgwarden.server import cache_dir

    return cache_dir() / "bench-tools-venv"


def ensure_venv(log: Any) -> tuple[Path | None, str]:
    """(bin directory, "") when both tools are installed, else (None, why not)."""
    venv = venv_dir()
    bindir = venv / "bin"
    if (bindir / "pgbedrock").exists() and (bindir / "ldap2pg").exists():
        return bindir, ""
    log(f"installing {PGBEDROCK} and {LDAP2PG} into {venv}")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        # --no-deps: pgbedrock requires psycopg2 (a source build); psycopg2-binary provides the module.
        [str(bindir / "pip"), "install", "-q", "--no-deps", PGBEDROCK, LDAP2PG],
        [str(bindir / "pip"), "install", "-q", *DEPENDENCIES],
    ]
    for argv in steps:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            errors = [line for line in out.stderr.splitlines() if "error" in line.lower() and "WARNING" not in line]
            return None, f"`{' '.join(argv[-3:])}` failed: {' / '.join(errors[-3:])[:400]}"
    return bindir, ""


def pgbedrock_spec(size: fixture.Size, predefined: list[str], public_owner: str) -> str:
    """The policy as a pgbedrock spec: owner owns everything; app reads+writes; readonly reads.

    pgbedrock 0.4.2 (2019) insists that every role of the cluster is in the spec, including the
    predefined pg_* roles that PostgreSQL 14+ added, and that every schema has its owner listed.
    """
    schemas = size.schema_names()
    public = "public" if public_owner == "postgres" else ""
    extra = "".join(f"{name}:\n  can_login: false\n" for name in predefined if name != public_owner)
    if public_owner != "postgres":
        extra += f"{public_owner}:\n  can_login: false\n  owns:\n    schemas:\n      - public\n"
    every = [f"{s}.*" for s in schemas]

    def items(values: list[str], indent: str) -> str:
        return "".join(f"{indent}- {v}\n" for v in values)

    return extra + (
        # pgbedrock wants every schema and table of the database owned by some role of the spec.
        "postgres:\n  can_login: true\n  is_superuser: true\n  owns:\n"
        "    schemas:\n      - information_schema\n      - pg_catalog\n"
        + (f"      - {public}\n" if public else "")
        + "    tables:\n      - information_schema.*\n      - pg_catalog.*\n"
        f"{fixture.OWNER}:\n  can_login: true\n  attributes:\n    - CREATEDB\n  owns:\n"
        f"    schemas:\n{items(schemas, '      ')}"
        f"    tables:\n{items(every, '      ')}"
        f"    sequences:\n{items(every, '      ')}"
        f"{fixture.APP}:\n  can_login: true\n  privileges:\n"
        f"    schemas:\n      read:\n{items(schemas, '        ')}"
        # pgbedrock refuses read+write on the same objects: write implies read.
        f"    tables:\n      write:\n{items(every, '        ')}"
        f"    sequences:\n      write:\n{items(every, '        ')}"
        f"{fixture.READONLY}:\n  can_login: true\n  privileges:\n"
        f"    schemas:\n      read:\n{items(schemas, '        ')}"
        f"    tables:\n      read:\n{items(every, '        ')}"
        f"    sequences:\n      read:\n{items(every, '        ')}"
    )


def ldap2pg_config(size: fixture.Size, dbname: str) -> str:
    """The policy as an ldap2pg 5.9 config (static roles, no LDAP): the same grants, no default ACLs."""
    schemas = "".join(f"  - {s}\n" for s in size.schema_names())
    # The owner is not a managed role: ldap2pg would "revoke" its implicit owner privileges.
    roles = ", ".join((fixture.APP, fixture.READONLY))
    return f"""postgres:
  databases_query: [{dbname}]
  managed_roles_query: [{roles}]
  owners_query: [{fixture.OWNER}]
  schemas_query:
{schemas.replace("  - ", "    - ")}
privileges:
  ro:
  - __connect__
  - __usage_on_schemas__
  - __select_on_tables__
  - __select_on_sequences__
  rw:
  - ro
  - __insert_on_tables__
  - __update_on_tables__
  - __delete_on_tables__
  - __usage_on_sequences__
sync_map:
- role:
    names: [{roles}]
    options: LOGIN
- grant:
    privilege: rw
    role: {fixture.APP}
- grant:
    privilege: ro
    role: {fixture.READONLY}
"""


def measure_tools(ctx: Any, size: fixture.Size) -> list[Row]:
    from bench.measure import run
    from bench.run import repeat

    floor = "floor: psql reads the ACLs"
    bindir, why = ensure_venv(ctx.log)
    if bindir is None:
        return [
            Row("ldap2pg 5.9 dry run", size.tables, skipped=f"cannot install: {why}"),
            Row("pgbedrock 0.4.2 --check", size.tables, skipped=f"cannot install: {why}"),
        ]
    server = ctx.server
    env = {
        **ctx.env,
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGUSER": server.superuser,
        "PGPASSWORD": server.password,
        "PGDATABASE": size.compliant,
    }
    config = ctx.workdir / "ldap2pg.yml"
    config.write_text(ldap2pg_config(size, size.compliant))
    ldap2pg = Row("ldap2pg 5.9 dry run", size.tables, floor=floor, goal="pgwarden check >= 10x faster")
    saved = ctx.env
    ctx.env = env
    try:
        repeat(ctx, ldap2pg, [str(bindir / "ldap2pg"), "--config", str(config)])
        ldap2pg.note = ldap2pg.note or proposed(ldap2pg, ("Would ",))
        rows = [ldap2pg]
        spec = ctx.workdir / "pgbedrock.yml"
        # pgbedrock itself skips pg_signal_backend (the one predefined role of its time).
        predefined = [
            r[0]
            for r in ctx.admin.execute(
                "SELECT rolname FROM pg_roles WHERE rolname ~ '^pg_' AND rolname <> 'pg_signal_backend'"
            )
        ]
        import psycopg

        with psycopg.connect(ctx.dsn(size.compliant)) as conn:
            row = conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'").fetchone()
        spec.write_text(pgbedrock_spec(size, predefined, row[0] if row else "postgres"))
        pgbedrock = Row("pgbedrock 0.4.2 --check", size.tables, floor=floor, goal="pgwarden check >= 10x faster")

        def argv(dbname: str) -> list[str]:
            return [
                str(bindir / "pgbedrock"),
                "configure",
                str(spec),
                "-h",
                server.host,
                "-p",
                str(server.port),
                "-U",
                server.superuser,
                "-w",
                server.password,
                "-d",
                dbname,
                "--check",
            ]

        first = run(argv(size.compliant), env=env)
        note = ""
        target = size.compliant
        if "Traceback" in first.stderr:
            # pgbedrock 0.4.2 crashes (KeyError: 'functions' in get_all_current_defaults) on any
            # database with default privileges on functions, which pgwarden's hardening sets; it
            # can only be timed on the brown-field copy (same objects and ACL volume, no defaults).
            error = first.stderr.strip().splitlines()[-1][:120]
            note = f"crashes on the compliant database ({error}); measured on the brown-field copy; "
            fixture.copy_database(ctx.admin, size.brown_template, size.brown)
            target = size.brown
        repeat(ctx, pgbedrock, argv(target))
        pgbedrock.note = note + (pgbedrock.note or proposed(pgbedrock, ("GRANT", "REVOKE", "ALTER")))
        rows.append(pgbedrock)
    finally:
        ctx.env = saved
    return rows


def proposed(row: Row, prefixes: tuple[str, ...]) -> str:
    """How many changes the tool proposed on a database pgwarden calls compliant."""
    if not row.samples:
        return ""
    text = row.samples[-1].stdout + row.samples[-1].stderr
    count = sum(1 for line in text.splitlines() if line.lstrip().startswith(prefixes) or " Would " in line)
    return f"{count} proposed change lines"
