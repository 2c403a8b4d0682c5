"""Hazard rule: a role the policy lets refresh a materialized view cannot (no MAINTAIN on 17+; on 14-16
its refresh routine is missing, changed or runnable by others)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.model import acl_subject
from pgwarden.plan.refresh import default_grantees, installed, problems, subject
from pgwarden.policy import Policy
from pgwarden.refresh import create_sql, declared, grant_sql, owner_sql, revoke_sql
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding, q
from pgwarden.snapshot import Snapshot


@reports(
    Rule(
        "refresh.missing",
        "medium",
        "A role the policy lets refresh a materialized view cannot",
        "REFRESH MATERIALIZED VIEW needs ownership, or MAINTAIN on PostgreSQL 17+: an app that refreshes a "
        "view the policy declares (a database's `refresh`) fails until it has one. On 14-16 the refresh is "
        "an owner-owned SECURITY DEFINER routine (<schema>.pgwarden_refresh_<role>) that refreshes only the "
        "declared views and only that role may run: one that is missing, changed, not SECURITY DEFINER, "
        "without a fixed search_path, owned by another role or runnable by others is reported.",
        "GRANT MAINTAIN on the view to the role (17+), or make the routine again (14-16): `pgwarden apply` "
        "does either.",
        doc="See [policy.md](policy.md#materialized-views-a-role-refreshes).",
    ),
)
def check_refresh(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """Each declared refresh that the database does not give (views that do not exist yet are skipped:
    `expected` says so, and nothing can be refreshed before a migration creates them)."""
    if snap.database is None:
        return
    schema_oids = {s.name: s.oid for s in snap.schemas}
    views = {
        (g.schema, o.name): (o.oid, g)
        for g in snap.objects
        if g.kind == "table"
        for o in g.objects or ()
        if o.subkind == "m"
    }
    for refresh in declared(policy):
        present = [v for v in refresh.views if (schema_oids.get(refresh.schema), v) in views]
        if not present:
            continue
        if snap.caps.has_maintain:
            role = snap.role_by_name.get(refresh.role)
            for view in present:
                oid, group = views[(schema_oids[refresh.schema], view)]
                if role is not None and any(g.grantee == role.oid and g.privilege == "MAINTAIN" for g in group.acl):
                    continue
                target = sql.Identifier(refresh.schema, view)
                yield finding(
                    "refresh.missing",
                    f"materialized view {q(refresh.schema, view)}",
                    refresh.role,
                    f"the policy lets {refresh.role} refresh {q(refresh.schema, view)}, but it lacks MAINTAIN "
                    "on it: its REFRESH MATERIALIZED VIEW fails (must be owner)",
                    sql.SQL("GRANT MAINTAIN ON TABLE {} TO {}").format(target, sql.Identifier(refresh.role)),
                    subject=acl_subject("pg_class", oid, refresh.role),
                )
            continue
        wrong = problems(snap, policy.owner.name, refresh)
        if not wrong:
            continue
        routine = installed(snap, refresh)
        others = (
            *default_grantees(policy, snap),
            *(e for e in (routine.executors if routine else ()) if e != "PUBLIC"),
        )
        fix = sql.SQL(";\n").join(
            [
                create_sql(refresh),
                owner_sql(refresh, policy.owner.name),
                revoke_sql(refresh, tuple(dict.fromkeys(others))),
                grant_sql(refresh),
            ]
        )
        yield finding(
            "refresh.missing",
            refresh.label,
            refresh.role,
            f"the policy lets {refresh.role} refresh {', '.join(q(refresh.schema, v) for v in refresh.views)}; "
            f"before PostgreSQL 17 only the owner may, through this routine, but {'; '.join(wrong)}",
            fix,
            subject=subject(refresh),
        )
