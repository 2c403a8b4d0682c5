"""Hazard checks about PgBouncer's auth_user ([pgbouncer]: docs/pgbouncer.md)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.snapshot import Snapshot


@reports(
    Rule(
        "pooler.auth-user-superuser",
        "critical",
        "PgBouncer's auth_user is a superuser",
        "PgBouncer keeps the auth_user's password in its auth_file and a session as it: whoever reads the "
        "file or takes over the pooler is a superuser. A lookup routine needs no such power.",
        "ALTER ROLE ... NOSUPERUSER; `pgwarden apply` installs the lookup routine it calls instead.",
        doc=("`pgwarden apply` refuses to run while the auth_user is a superuser. See [pgbouncer.md](pgbouncer.md)."),
    ),
    Rule(
        "pooler.auth-user-reads-secrets",
        "critical",
        "PgBouncer's auth_user reads password verifiers itself",
        "SELECT on pg_authid.rolpassword or pg_shadow.passwd (a grant, or a membership such as "
        "pg_read_all_data) gives every role's verifier, superusers' included, to whoever holds the "
        "auth_user's password: the lookup routine's limits mean nothing.",
        "REVOKE the membership or the grant (the fix names it); the auth_user needs EXECUTE on the routine only.",
        doc="Judged by `has_column_privilege` on those two columns, so every path counts.",
    ),
)
def check_pooler(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """pooler.auth-user-superuser, or else pooler.auth-user-reads-secrets: the auth_user can read every
    login's verifier itself (pg_authid.rolpassword or pg_shadow.passwd), so the routine's limits
    (no superuser's, no expired login's) mean nothing."""
    spec, state = policy.pgbouncer, snap.pooler
    if spec is None or state is None or state.auth_superuser is None:
        return
    user = sql.Identifier(spec.auth_user)
    if state.auth_superuser:
        yield finding(
            "pooler.auth-user-superuser",
            f"role {spec.auth_user}",
            spec.auth_user,
            f"PgBouncer's auth_user {spec.auth_user} is a superuser: PgBouncer keeps its password and a session "
            "as it, and anyone who has them can do anything on the server",
            sql.SQL("ALTER ROLE {} NOSUPERUSER").format(user),
        )
        return
    if not state.auth_reads_secrets:
        return
    through = [r for r in state.auth_reads_through if r in state.auth_member_of]
    if through:
        how = f"through its membership in {', '.join(through)}"
        fix: sql.Composable = sql.SQL("; ").join(
            sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(r), user) for r in through
        )
    elif state.auth_reads_through:
        how = f"through {', '.join(state.auth_reads_through)} (a role it reaches by membership)"
        fix = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(state.auth_reads_through[0]), user)
    else:
        how = "by a grant of its own"
        fix = sql.SQL("REVOKE SELECT ON pg_catalog.pg_authid, pg_catalog.pg_shadow FROM {}").format(user)
    yield finding(
        "pooler.auth-user-reads-secrets",
        f"role {spec.auth_user}",
        spec.auth_user,
        f"PgBouncer's auth_user {spec.auth_user} reads every role's password verifier itself ({how}): it needs "
        "nothing but EXECUTE on the lookup routine, which refuses superusers' and expired logins' verifiers",
        fix,
    )
