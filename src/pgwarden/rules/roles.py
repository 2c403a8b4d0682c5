"""Hazard checks about roles: memberships, attributes, the owner's powers, passwords."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.findings import Finding
from pgwarden.hazards import HazardData
from pgwarden.plan.model import Subject
from pgwarden.plan.roles import ATTRIBUTE_SQL
from pgwarden.policy import Policy
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import access_roles, finding
from pgwarden.rules.memberships import revoke_sql
from pgwarden.snapshot import Snapshot


def revoke_membership(snap: Snapshot, member: int, target: int) -> tuple[str, Subject]:
    """REVOKE the direct grants on the path from member to target (the first hop is enough to cut
    it), each by its grantor on 16+ (a superuser's plain REVOKE leaves a grant by another role in
    place), and the membership it is about."""
    direct = [m.role for m in snap.memberships if m.member == member]
    hop = target if target in direct else next(iter(direct), target)
    return revoke_sql(snap, member, hop), ("membership", snap.role_name(hop) or "", snap.role_name(member) or "")


@reports(
    Rule(
        "access.member-of-owner",
        "critical",
        "Access role is a member of the owner",
        "A member of the owner (directly or through other roles) can SET ROLE to it or inherit its "
        "rights: it can alter and drop every table and bypass row level security.",
        "REVOKE the membership (the fix names the direct grant to remove).",
    ),
    Rule(
        "access.member-of-privileged",
        "high",
        "Access role is a member of a powerful role",
        "Predefined roles such as pg_write_all_data, pg_read_server_files, pg_write_server_files, "
        "pg_execute_server_program, pg_signal_backend and pg_maintain (17+) act on every database "
        "of the cluster or on the server itself; membership of a superuser role gives everything.",
        "REVOKE the membership.",
        doc=(
            "Covers pg_write_all_data, pg_read_server_files, pg_write_server_files, "
            "pg_execute_server_program, pg_signal_backend, pg_maintain (17+) and any superuser role, by any "
            "path."
        ),
    ),
)
def check_memberships(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    owners = {owner.oid} if owner else set()
    owners |= {snap.role_by_name[d].oid for d in policy.owner.deploy_logins if d in snap.role_by_name}
    dangerous = set(snap.caps.dangerous_predefined_roles)
    for name, oid in access_roles(policy, snap):
        for target in sorted(hz.member_of.get(oid, ())):
            role = snap.roles.get(target)
            if role is None:
                continue
            fix, subject = revoke_membership(snap, oid, target)
            how = "directly" if target in {m.role for m in snap.memberships if m.member == oid} else "indirectly"
            if target in owners:
                yield finding(
                    "access.member-of-owner",
                    f"role {role.name}",
                    name,
                    f"{name} is {how} a member of {role.name}: it can act as the owner "
                    "(alter or drop every table, bypass row level security)",
                    fix,
                    subject=subject,
                )
            elif role.name in dangerous or role.superuser:
                what = "a superuser" if role.superuser else "a predefined role with cluster-wide rights"
                yield finding(
                    "access.member-of-privileged",
                    f"role {role.name}",
                    name,
                    f"{name} is {how} a member of {role.name}, {what}",
                    fix,
                    subject=subject,
                )


@reports(
    Rule(
        "access.attribute",
        "critical",
        "Access role has a powerful attribute",
        "SUPERUSER bypasses every check, BYPASSRLS every row policy, CREATEROLE (14-15) takes over "
        "other roles, CREATEDB and REPLICATION reach beyond the application's data.",
        "ALTER ROLE ... NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS.",
        doc="`critical` for SUPERUSER and BYPASSRLS, `high` for the others.",
    ),
)
def check_attributes(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """access.attribute: an access role or a member (a person gets its rights from groups only) with
    an attribute beyond LOGIN."""
    people = [(m.name, snap.role_by_name[m.name].oid) for m in policy.members if m.name in snap.role_by_name]
    for name, oid in [*access_roles(policy, snap), *people]:
        role = snap.roles[oid]
        what = "member" if (name, oid) in people else "access role"
        for attr, (word, negation) in ATTRIBUTE_SQL.items():
            if attr != "login" and getattr(role, attr):
                yield finding(
                    "access.attribute",
                    f"role {name}",
                    name,
                    f"{what} {name} has {word}",
                    sql.SQL("ALTER ROLE {} " + negation).format(sql.Identifier(name)),
                    severity="critical" if attr in ("superuser", "bypassrls") else "high",
                    subject=("role-attributes", name),
                )


@reports(
    Rule(
        "owner.superuser",
        "high",
        "The owner is a superuser",
        "Migrations then run with every power of the server; row level security is bypassed.",
        "ALTER ROLE owner NOSUPERUSER.",
    ),
    Rule(
        "owner.createrole",
        "medium",
        "The owner has CREATEROLE on PostgreSQL 14-15",
        "Before 16, CREATEROLE can alter any non-superuser role and grant itself "
        "pg_execute_server_program: it is practically a superuser.",
        "ALTER ROLE owner NOCREATEROLE; create roles as an administrator.",
    ),
)
def check_owner(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    owner = snap.role_by_name.get(policy.owner.name)
    if owner is None:
        return
    if owner.superuser:
        yield finding(
            "owner.superuser",
            f"role {owner.name}",
            owner.name,
            f"the owner {owner.name} is a superuser",
            sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(owner.name)),
            subject=("role-attributes", owner.name),
        )
    if owner.createrole and snap.caps.createrole_is_near_superuser:
        yield finding(
            "owner.createrole",
            f"role {owner.name}",
            owner.name,
            f"the owner {owner.name} has CREATEROLE, which on PostgreSQL {snap.caps.major} can take "
            "over any non-superuser role",
            sql.SQL("ALTER ROLE {} NOCREATEROLE").format(sql.Identifier(owner.name)),
            subject=("role-attributes", owner.name),
        )


@reports(
    Rule(
        "login.no-password",
        "medium",
        "LOGIN role of the policy without a password",
        "The role cannot log in with password authentication, or logs in without one under trust.",
        "Set the password environment variable and run `pgwarden apply`.",
        doc="Needs the stored verifiers, which only a superuser can read; without one the rule is skipped.",
    ),
    Rule(
        "login.md5-password",
        "medium",
        "LOGIN role of the policy with an MD5 password",
        "MD5 verifiers are replayable and deprecated (warned about on 18).",
        "Set the password again as SCRAM-SHA-256 (`pgwarden apply` does it).",
        doc="Needs the stored verifiers, which only a superuser can read; without one the rule is skipped.",
    ),
)
def check_passwords(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    if snap.passwords is None:  # verifiers are readable by superusers only
        return
    for name, env in policy.login_roles():
        role = snap.role_by_name.get(name)
        if role is None or not role.login or role.oid not in snap.passwords:
            continue
        verifier = snap.passwords.get(role.oid)
        if env:  # apply sets it from the variable, as a SCRAM verifier
            how, fix = f": set ${env} and run pgwarden apply", "pgwarden apply --yes"
        else:
            how, fix = " (the policy names no password_env for it: set one, or the password by hand)", None
        subject = ("role-password", name)
        if not verifier:
            yield finding(
                "login.no-password",
                f"role {name}",
                name,
                f"LOGIN role {name} has no password{how}",
                fix,
                subject=subject,
            )
        elif verifier.startswith("md5"):
            if env and policy.mode == "additive":  # additive apply never replaces an existing password
                how, fix = (
                    f": additive mode never replaces a password, so `pgwarden apply` leaves it; run "
                    f"`\\password {name}` in psql (it sends a SCRAM verifier), or set ${env} and apply "
                    "with --mode authoritative",
                    None,
                )
            message = f"LOGIN role {name} has an MD5 password{how}"
            yield finding("login.md5-password", f"role {name}", name, message, fix, subject=subject)
