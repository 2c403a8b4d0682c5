"""Migration bookkeeping tables: the owner's to write, whatever profile an access role holds on their schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import Connection

    from pgwarden.policy import Policy

#: Each documented migration tool's bookkeeping tables (docs/tools/*): who applied which migration.
#: An app role that can write one can rewrite the history (mark a migration applied so that it never
#: runs, or unapplied so that it runs again). golang-migrate and dbmate share `schema_migrations`.
TOOLS: dict[str, tuple[str, ...]] = {
    "Django": ("django_migrations",),
    "Alembic": ("alembic_version",),
    "dbmate, golang-migrate, ActiveRecord": ("schema_migrations",),
    "ActiveRecord": ("ar_internal_metadata",),
    "Flyway": ("flyway_schema_history",),
    "Liquibase": ("databasechangelog", "databasechangeloglock"),
    "Knex": ("knex_migrations", "knex_migrations_lock"),
    "Prisma": ("_prisma_migrations",),
}

#: Table names that are bookkeeping in any managed schema.
TABLES: tuple[str, ...] = tuple(dict.fromkeys(t for names in TOOLS.values() for t in names))

#: Schemas whose every table is bookkeeping when the policy manages them: Sqitch's registry.
SCHEMAS: tuple[str, ...] = ("sqitch",)

#: What an access role may still hold on one: reading it (Django reads django_migrations at start-up
#: for its "unapplied migrations" warning; Rails reads schema_migrations and ar_internal_metadata).
READ = frozenset({"SELECT"})


def tables(policy: Policy) -> tuple[str, ...]:
    """The bookkeeping table names the planner protects under `policy` (none when it opts out)."""
    return TABLES if policy.hardening.protect_bookkeeping else ()


def schemas(policy: Policy) -> tuple[str, ...]:
    """Managed schemas whose every table is bookkeeping under `policy`."""
    if not policy.hardening.protect_bookkeeping:
        return ()
    return tuple(s for s in SCHEMAS if s in policy.database.schemas)


def is_bookkeeping(policy: Policy, schema: str, name: str) -> bool:
    return name in tables(policy) or schema in schemas(policy)


#: Privileges that let a role rewrite a bookkeeping table (rules/bookkeeping.py reports the same ones).
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER")
#: ... or move its sequence (django_migrations_id_seq): nextval, setval.
SEQUENCE_WRITES = ("USAGE", "UPDATE")

#: The bookkeeping tables, and the sequences they own (serial, identity), with what others may write.
_WRITERS = """WITH books AS (
    SELECT c.oid, c.relowner, c.relacl, n.nspname, c.relname, c.relkind
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%(schemas)s) AND (
        (c.relkind IN ('r', 'p') AND (c.relname = ANY(%(tables)s) OR n.nspname = ANY(%(book_schemas)s)))
        OR (c.relkind = 'S' AND (n.nspname = ANY(%(book_schemas)s) OR EXISTS (
            SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
              AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0
              AND d.deptype IN ('a', 'i') AND t.relname = ANY(%(tables)s)))))
)
SELECT b.nspname, b.relname, b.relkind = 'S' AS seq, a.grantee = 0 AS public, r.rolname,
       array_agg(DISTINCT a.privilege_type::text) AS privs
FROM books b CROSS JOIN LATERAL aclexplode(b.relacl) a LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE a.grantee <> b.relowner
  AND a.privilege_type = ANY(CASE WHEN b.relkind = 'S' THEN %(seq_writes)s::text[] ELSE %(writes)s::text[] END)
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 3, 2, 5"""


def take_back(conn: Connection[Any], policy: Policy) -> list[str]:
    """As the owner, right after a migration created them: revoke what the schema's default privileges
    gave other roles on the bookkeeping tables and their sequences (they are the owner's to write). What was
    revoked, in words."""
    from psycopg import sql

    params = {"schemas": list(policy.database.schemas), "tables": list(tables(policy))}
    params |= {"book_schemas": list(schemas(policy)), "writes": list(WRITES), "seq_writes": list(SEQUENCE_WRITES)}
    if not params["tables"] and not params["book_schemas"]:
        return []
    done = []
    for schema, table, seq, public, role, privs in conn.execute(_WRITERS, params).fetchall():
        held = [p for p in (SEQUENCE_WRITES if seq else WRITES) if p in privs]
        who = sql.SQL("PUBLIC") if public else sql.Identifier(role)
        target = sql.SQL("{} {}").format(sql.SQL("SEQUENCE" if seq else "TABLE"), sql.Identifier(schema, table))
        conn.execute(sql.SQL("REVOKE {} ON {} FROM {}").format(sql.SQL(", ").join(map(sql.SQL, held)), target, who))
        what = f"the sequence {schema}.{table}" if seq else f"{schema}.{table}"
        done.append(f"{'PUBLIC' if public else role} may no longer {', '.join(held)} {what}")
    return done
