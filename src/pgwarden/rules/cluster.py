"""Hazard checks about grants outside the managed schemas that apply does not take back (outside.grant)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql

from pgwarden.acl import Change, ChangeAction
from pgwarden.findings import Finding, Severity
from pgwarden.hazards import HazardData
from pgwarden.plan.context import acl_statement, grantee_sql
from pgwarden.plan.outside import NOT_REPAIRED, object_label, role_oids, target_sql
from pgwarden.policy import Policy
from pgwarden.policy.patterns import is_pattern, matches
from pgwarden.rules.catalog import Rule, reports
from pgwarden.rules.common import finding
from pgwarden.snapshot import OutsideGrant, Snapshot

#: Kinds whose extra grants reach the server itself (a granted pg_read_file, GRANT SET ON PARAMETER).
SERVER_KINDS = frozenset({"routine", "parameter", "language"})
#: What the owner or a deploy login may not hold unreported: the server kinds, and other databases.
OWNER_KINDS = SERVER_KINDS | {"database"}


def _file_database(policy: Policy, g: OutsideGrant) -> bool:
    """CONNECT on another database of the same version 2 file: plan/database.py grants it there to the
    deploy logins (each database's plan its own), so it is the file's design, not a finding."""
    if g.kind != "database" or g.privilege != "CONNECT":
        return False
    # the ident is quote_ident(datname): the bare name, or the name in double quotes
    ident = g.ident
    datname = ident[1:-1].replace('""', '"') if len(ident) > 1 and ident[0] == ident[-1] == '"' else ident
    # a [[databases]] name that is a pattern covers every matching database (policy/patterns.py)
    return any(datname == d.name or (is_pattern(d.name) and matches(datname, d.name)) for d in policy.databases)


#: docs/rules.md, under outside.grant: what apply repairs there and what check only reports
_OUTSIDE = """\
#### Outside the managed schemas: what `apply` repairs and what `check` only reports

Read in two statements whatever the catalog size: `queries/outside_acls.sql` (with
`outside_parameters.sql` in it on 15+, and the superuser-only parameters) for the plan, and
`hazard_outside.sql` (who can create in each schema, user mappings) for the rules; the owner's and
deploy logins' membership paths come with the access roles' (`hazard_memberships.sql`).
Only entries an object did not start with count: its
`pg_init_privs` entry, else `acldefault()` for its owner (so PUBLIC's CONNECT and TEMPORARY on a
database, USAGE on trusted languages and types, EXECUTE on ordinary functions are never findings).

| what | repaired by `apply` (drift) | reported only (`outside.grant`, detect-only) |
|---|---|---|
| other databases | CREATE, TEMPORARY granted to an access role | |
| tablespaces, languages, foreign-data wrappers, foreign servers, large objects, types and routines outside the managed schemas, relations of pg_catalog and information_schema (`pg_authid`: password verifiers), other schemas (CREATE), parameters (15+: SET, ALTER SYSTEM) | anything granted to an access role by the object's owner | PUBLIC beyond the initial privileges on the server's objects (pg_catalog, information_schema, cluster and language, foreign-data and large objects; another database's or schema's are their owners' business); routines, parameters, languages and other databases granted to the owner or a deploy login (their USAGE on foreign servers, types or tablespaces is what migrations may need: not reported); grants by another grantor |
| memberships of the owner and deploy logins in superusers or server-reaching predefined roles | direct ones (`REVOKE ... GRANTED BY` on 16+) | indirect ones (`owner.member-of-privileged` names the first hop) |
| role and database settings | superuser-only parameters (session_replication_role, lo_compat_privileges, ...; logging and statistics ones excepted) on a policy role or the database, `role` on the owner or an access role: `RESET` | |
| the owner's default privileges ON SCHEMAS, ON TYPES, ON LARGE OBJECTS (18+), and on tables, sequences and routines in schemas the policy does not manage | privileges beyond the access role's profile (nothing in a schema the policy does not manage), and grant options | |
| search_path | | `settings.writable-search-path` |

Not read: USAGE of an access role on a schema outside the managed ones (it only looks names up:
extension schemas need it), and its CONNECT on another database (a policy over several databases,
`-d 'shop_*'`, grants exactly that; PUBLIC's default CONNECT on every database is not a finding either:
`REVOKE CONNECT ON DATABASE ... FROM PUBLIC` there is that database's owner's to decide), what PUBLIC
holds in another database or in a schema the policy does not manage, and the relations of such a
schema (its owner's business, as `apply` and `adopt` treat it). User mappings are judged by whom they
log in as (`outside.user-mapping`): an access role's own remote login is configuration.
"""  # noqa: E501


@reports(
    Rule(
        "outside.grant",
        "high",
        "A grant outside the managed schemas that apply does not take back",
        "Privileges outside the managed schemas reach beyond the application: EXECUTE on "
        "pg_read_file or lo_export reads and writes server files, GRANT SET ON PARAMETER "
        "session_replication_role disables triggers and foreign keys, USAGE on a foreign server "
        "reaches another database. `apply` revokes what the policy's access roles were granted there "
        "by the object's owner; it reports, without changing, what PUBLIC holds on the server's "
        "objects beyond their initial privileges (other databases' roles may rely on it), the routines, parameters, "
        "languages and other databases the owner and deploy logins were granted (every migration can "
        "use them; the policy does not say what migrations need), and grants by another grantor.",
        "Run the fix (a REVOKE) as a superuser, after checking nobody else relies on the grant.",
        doc=_OUTSIDE,
    ),
)
def check_outside_grants(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    access = set(policy.row_roles)
    owners = {policy.owner.name, *policy.owner.deploy_logins}
    # the other databases of a version 2 file: apply gives the owner side CONNECT there itself
    oids = role_oids(snap, access)
    for g in snap.outside:
        # USAGE on a schema only looks names up; CREATE is judged by settings.writable-search-path, where
        # it is one. An access role's CONNECT on another database is what a policy over several
        # databases (`-d 'shop_*'`) grants: configuration, not a finding. (repairable() inline, the
        # cheap tests first: a fleet's databases each read every other database's grants.)
        if g.kind == "schema" or (
            g.grantee in oids
            and (g.kind == "database" or (g.grantor == g.owner and (g.kind, g.privilege) not in NOT_REPAIRED))
        ):
            continue
        name = snap.role_name(g.grantee)
        if name is None and not g.system:
            continue  # what PUBLIC holds in another database or schema is that one's owner's business
        obj = object_label(g)
        privilege = frozenset({g.privilege})
        revoke = acl_statement(Change(ChangeAction.REVOKE, name, privilege), target_sql(g))
        severity: Severity = "high" if g.kind in SERVER_KINDS else "medium"
        if name is None:
            message = (
                f"PUBLIC holds {g.privilege} on {obj}, which the object did not start with: every role, "
                "the access roles included, can use it (detect-only: other databases' roles may rely on it)"
            )
            severity = "high"
        elif name in owners:
            if g.kind not in OWNER_KINDS or _file_database(policy, g):
                continue  # USAGE on a foreign server, a type, a tablespace: what migrations may need
            message = (
                f"{name} holds {g.privilege} on {obj}: every migration can use it (detect-only: "
                "the policy does not say what the owner needs outside its schemas)"
            )
        else:  # an access role's grant by another grantor: a superuser's REVOKE acts as the owner
            grantor = snap.role_name(g.grantor) or str(g.grantor)
            message = (
                f"access role {name} holds {g.privilege} on {obj}, granted by {grantor}, not the owner: "
                f"only {grantor} can revoke it, so the fix takes {grantor}'s grant option (detect-only)"
            )
            revoke = acl_statement(Change(ChangeAction.REVOKE_GRANT_OPTION, grantor, privilege), target_sql(g))
        yield finding("outside.grant", obj, name or "PUBLIC", message, revoke, severity=severity)


@reports(
    Rule(
        "outside.user-mapping",
        "high",
        "An access role's user mapping logs in as the owner or a superuser",
        "A user mapping says which remote role a local role is on a foreign server. An access role "
        "(or PUBLIC) mapped to the owner's, a deploy login's or a superuser's login acts as that role "
        "through every foreign table it may read there, whatever the policy gives it.",
        "DROP USER MAPPING FOR the role SERVER ...; create one with the access role's own remote login.",
    ),
)
def check_user_mappings(policy: Policy, snap: Snapshot, hz: HazardData) -> Iterator[Finding]:
    """outside.user-mapping: an access role's (or PUBLIC's) user mapping logs in on a foreign server as
    the owner, a deploy login or a superuser of this cluster: through every foreign table it may read
    on that server, it acts as a role the policy says it must not be."""
    access = set(policy.row_roles)
    borrowed = {policy.owner.name: "the owner", **{d: "a deploy login" for d in policy.owner.deploy_logins}}
    borrowed |= {r.name: "a superuser" for r in snap.roles.values() if r.superuser}
    for row in hz.user_mappings:
        name = snap.role_name(int(row.role))
        remote = row.remote_user
        if (name is not None and name not in access) or remote not in borrowed:
            continue
        yield finding(
            "outside.user-mapping",
            f"user mapping for {name or 'PUBLIC'} on server {row.server}",
            name or "PUBLIC",
            f"{name or 'PUBLIC'} logs in on foreign server {row.server} as {remote}, {borrowed[remote]}: through "
            "its foreign tables it reads and writes with that role's rights (detect-only: the mapping holds "
            "credentials pgwarden cannot replace)",
            sql.SQL("DROP USER MAPPING FOR {} SERVER {}").format(grantee_sql(name), sql.Identifier(row.server)),
        )
