"""The statements that keep leased logins least-privilege: what the issuing login may do, what it runs to
create a login and to revoke it (Vault/OpenBao's creation_statements and revocation_statements). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pgwarden.caps import Capabilities
from pgwarden.policy import Policy
from pgwarden.policy.leases import LeaseSpec
from pgwarden.policy.patterns import is_pattern

#: The secrets engine's templates (Vault and OpenBao fill them in before running the statements).
NAME, PASSWORD, EXPIRATION = "{{name}}", "{{password}}", "{{expiration}}"

#: An issuer name for a [[leased]] entry that gives none.
DEFAULT_ISSUER = "lease_issuer"


@dataclass(frozen=True)
class LeaseStatements:
    """For one [[leased]] entry: `issuer` (run once, as a superuser: the issuer's minimal rights),
    `creation` (as the issuer, per login), `revocation` (as the issuer, in each of `databases`),
    then `drop` (as the issuer, once, last)."""

    lease: LeaseSpec
    issuer_name: str
    issuer: tuple[str, ...]
    creation: tuple[str, ...]
    revocation: tuple[str, ...]
    drop: tuple[str, ...]
    databases: tuple[str, ...]


def _s(statement: sql.Composable) -> str:
    return statement.as_string(None) + ";"


def lease_statements(policy: Policy, lease: LeaseSpec, caps: Capabilities) -> LeaseStatements:
    """The statements for `lease` on a server with `caps` (16+ says the membership options)."""
    issuer = sql.Identifier(lease.issuer or DEFAULT_ISSUER)
    group, name = sql.Identifier(lease.group), sql.Identifier(NAME)
    databases = tuple(db.name for db in policy.databases or (policy.database,) if not is_pattern(db.name))
    rights = [
        # INHERIT: the issuer uses a login's privileges to revoke it (DROP OWNED, ending its sessions)
        sql.SQL("CREATE ROLE {} WITH LOGIN CREATEROLE INHERIT NOCREATEDB NOREPLICATION NOBYPASSRLS").format(issuer)
    ]
    if caps.membership_options:
        # 16+: ADMIN on the group lets it make logins members; neither INHERIT nor SET: it may not use
        # the group's rights itself. Logins it creates it holds ADMIN on (the server grants it).
        rights.append(sql.SQL("GRANT {} TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(group, issuer))
    rights += [sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(d), issuer) for d in databases]
    creation = [
        sql.SQL(
            "CREATE ROLE {} WITH LOGIN INHERIT NOCREATEDB NOCREATEROLE PASSWORD {} VALID UNTIL {} IN ROLE {}"
        ).format(name, sql.Literal(PASSWORD), sql.Literal(EXPIRATION), group)
    ]
    gain = sql.SQL("GRANT {} TO CURRENT_USER").format(name)
    if caps.membership_options:
        gain = sql.SQL("{} WITH INHERIT TRUE, SET FALSE").format(gain)
    revocation = [
        sql.SQL("ALTER ROLE {} NOLOGIN").format(name),
        gain,
        sql.SQL(
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = {}"
        ).format(sql.Literal(NAME)),
        sql.SQL("DROP OWNED BY {}").format(name),
    ]
    return LeaseStatements(
        lease,
        lease.issuer or DEFAULT_ISSUER,
        tuple(_s(s) for s in rights),
        tuple(_s(s) for s in creation),
        tuple(_s(s) for s in revocation),
        (_s(sql.SQL("DROP ROLE IF EXISTS {}").format(name)),),
        databases,
    )


def fill(statement: str, name: str, password: str = "", expiration: str = "") -> str:
    """A statement with the templates filled in as the secrets engine does (plain text replacement:
    the engine's names and passwords contain no quote)."""
    return statement.replace(NAME, name).replace(PASSWORD, password).replace(EXPIRATION, expiration)
