"""Hazard rule: a role other than the owner can write a migration bookkeeping table or its sequence."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.model import acl_subject
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding, q
from pgwarden.snapshot import Snapshot

#: What rewrites the history: rows added, changed, removed; a trigger of one's own on it.
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER")
#: On its sequence (django_migrations_id_seq): nextval (USAGE, UPDATE) and setval (UPDATE) move its keys.
SEQUENCE_WRITES = ("USAGE", "UPDATE")


@reports(
    Rule(
        "bookkeeping.writable",
        "high",
        "A role other than the owner can write a migration bookkeeping table or its sequence",
        "django_migrations, schema_migrations (dbmate, golang-migrate, ActiveRecord), ar_internal_metadata, "
        "flyway_schema_history, alembic_version, databasechangelog(lock), knex_migrations(_lock), "
        "_prisma_migrations and Sqitch's registry schema record which migrations ran. A role that can write "
        "one can mark a migration applied so that it never runs (a security fix skipped) or unapplied so "
        "that it runs again. USAGE or UPDATE on such a table's sequence (django_migrations_id_seq) lets it "
        "move the history's keys with nextval() and setval().",
        "REVOKE the writing privileges (apply does: access roles keep at most SELECT on these tables and "
        "their sequences unless [hardening] protect_bookkeeping = false).",
        doc="See [policy.md](policy.md#migration-bookkeeping-tables).",
    ),
)
def check_bookkeeping(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """Every grant of a writing privilege on a bookkeeping table to PUBLIC or a role other than the owner
    (snapshot.ObjectGroup.bookkeeping: the policy protects them unless hardening.protect_bookkeeping = false)."""
    owner = snap.role_by_name.get(policy.owner.name)
    ignored = {snap.role_by_name[n].oid for n in policy.ignore.roles if n in snap.role_by_name}
    schemas = {s.oid: s.name for s in snap.schemas}
    for group in snap.objects:
        if not group.bookkeeping:
            continue
        writes = SEQUENCE_WRITES if group.kind == "sequence" else WRITES
        writers: dict[int, list[str]] = {}
        for g in group.acl:
            if g.privilege in writes and g.grantee not in ignored and (owner is None or g.grantee != owner.oid):
                writers.setdefault(g.grantee, []).append(g.privilege)
        for obj in group.objects or ():
            schema = schemas.get(group.schema, str(group.schema))
            for grantee, privs in writers.items():
                who = "PUBLIC" if grantee == 0 else (snap.role_name(grantee) or str(grantee))
                held = [p for p in writes if p in privs]
                target = sql.Identifier(schema, obj.name)
                fix = sql.SQL("REVOKE {} ON {} {} FROM {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in held),
                    sql.SQL(group.kind.upper()),
                    target,
                    sql.SQL("PUBLIC") if grantee == 0 else sql.Identifier(who),
                )
                yield finding(
                    "bookkeeping.writable",
                    f"{group.kind} {q(schema, obj.name)}",
                    who,
                    _message(who, held, group.kind, q(schema, obj.name), q(schema, obj.args) if obj.args else None),
                    fix,
                    subject=acl_subject("pg_class", obj.oid, None if grantee == 0 else who),
                )


def _message(who: str, held: list[str], kind: str, name: str, table: str | None) -> str:
    if kind == "sequence":
        of = f" of the migration bookkeeping table {table}" if table else " of a migration bookkeeping schema"
        return (
            f"{who} can {', '.join(held)} the sequence {name}{of}: nextval() and setval() move the keys of "
            "the migration history; only the owner writes it"
        )
    return (
        f"{who} can {', '.join(held)} the migration bookkeeping table {name}: it can rewrite the migration "
        "history (mark a migration applied so that it never runs, or unapplied so that it runs again); only "
        "the owner writes it"
    )
