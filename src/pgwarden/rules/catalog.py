"""The rule catalog: every hazard rule and every drift rule, with why it matters and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.findings import Severity


@dataclass(frozen=True)
class Rule:
    """A catalog entry: stable id, severity, a title, why it matters and how to fix it (docs/rules.md)."""

    id: str
    severity: Severity
    title: str
    why: str
    how: str


CATALOG: tuple[Rule, ...] = (
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
    ),
    Rule(
        "access.attribute",
        "critical",
        "Access role has a powerful attribute",
        "SUPERUSER bypasses every check, BYPASSRLS every row policy, CREATEROLE (14-15) takes over "
        "other roles, CREATEDB and REPLICATION reach beyond the application's data.",
        "ALTER ROLE ... NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS.",
    ),
    Rule(
        "access.owns-objects",
        "high",
        "Access role owns objects in the database",
        "An owner can alter, drop and grant its objects whatever the policy says.",
        "ALTER ... OWNER TO the owner (`pgwarden apply` does it in the managed schemas; elsewhere `pgwarden adopt "
        "--from ROLE --yes` moves them one by one).",
    ),
    Rule(
        "ownership.not-owner",
        "high",
        "Object in a managed schema not owned by the owner",
        "The classic 'migration ran as the wrong login': the owner cannot change the object and the "
        "access roles often get no grant on it.",
        "ALTER ... OWNER TO the owner (`pgwarden apply` does it).",
    ),
    Rule(
        "ownership.escaped-owner",
        "high",
        "Object owned by a deploy login",
        "A deploy login created objects without SET ROLE to the owner: they escaped the owner and "
        "its default privileges.",
        "ALTER ... OWNER TO the owner; run migrations with `SET ROLE owner` (PGOPTIONS=-c role=owner).",
    ),
    Rule(
        "defaults.wrong-role",
        "medium",
        "Default privileges for a role that does not create objects",
        "ALTER DEFAULT PRIVILEGES only applies to objects created by the role it names: entries for "
        "another role (the application, a deploy login) are never used for the owner's objects, and "
        "can give privileges on objects that role creates.",
        "ALTER DEFAULT PRIVILEGES FOR ROLE <that role> REVOKE ... (or DROP OWNED BY it).",
    ),
    Rule(
        "create.schema",
        "high",
        "CREATE on a managed schema for PUBLIC or an access role",
        "Whoever may create objects in a schema owns them, and can shadow the owner's objects.",
        "REVOKE CREATE ON SCHEMA ... FROM PUBLIC / the access role.",
    ),
    Rule(
        "privilege.grant-option",
        "medium",
        "A role may grant its privileges to other roles (WITH GRANT OPTION), as the policy's grant_option keeps",
        "A role holding a privilege WITH GRANT OPTION can give it to any role, outside the policy: what the "
        "policy lists is then no longer all who hold it. `init --from-database` writes the grant options a "
        "database has (`grant_option`) so that adopting takes nothing away; this finding keeps them in view.",
        "REVOKE GRANT OPTION FOR ... FROM the role, and remove the privilege from the grant's grant_option.",
    ),
    Rule(
        "create.database",
        "high",
        "CREATE on the database for PUBLIC or an access role",
        "CREATE on the database lets a role create schemas (and trusted extensions) it then owns.",
        "REVOKE CREATE ON DATABASE ... FROM PUBLIC / the access role.",
    ),
    Rule(
        "temp.public",
        "medium",
        "TEMPORARY on the database for PUBLIC",
        "Temporary tables are searched first for relations: with TEMPORARY a role can hijack "
        "unqualified table names in SECURITY DEFINER code, and fill the disk.",
        "REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC.",
    ),
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
    Rule(
        "function.security-definer",
        "high",
        "SECURITY DEFINER routine without a fixed search_path",
        "It runs with its owner's rights; an access role that can create temporary tables or objects "
        "in a schema on the search_path can make it use its own objects (CVE-2018-1058 style).",
        "ALTER FUNCTION ... SET search_path = pg_catalog, pg_temp (and schema-qualify names), or "
        "REVOKE EXECUTE from PUBLIC and the access roles.",
    ),
    Rule(
        "function.definer-readonly",
        "medium",
        "SECURITY DEFINER routine a readonly role can run",
        "readonly roles get EXECUTE on the routines of the managed schemas, because queries and views "
        "call them and a SECURITY INVOKER routine can do no more than its caller. A SECURITY DEFINER "
        "routine runs with its owner's rights: if it writes, the readonly role writes through it.",
        "ALTER FUNCTION ... SECURITY INVOKER (and grant its callers what it needs); a routine that must "
        "stay SECURITY DEFINER belongs in a schema the policy does not manage, out of readonly roles' reach.",
    ),
    Rule(
        "exception.path",
        "high",
        "Excepted table or column reachable by the role it is excepted from",
        "A grant's except_tables, except_columns and except_labels hold only if nothing else gives the "
        "role the data: a view or materialized view over the table (it reads with its owner's rights), a "
        "rule, a parent or partitioned table (its queries read the children's rows), a SECURITY DEFINER "
        "routine or the trigger that runs one, a membership, PUBLIC or a predefined role.",
        "The fix is the one statement that removes the path (REVOKE on the view or routine, or of the "
        "membership) when the policy does not give that grant itself; otherwise the message says what "
        "to change (except the view too, make the routine SECURITY INVOKER).",
    ),
    Rule(
        "rls.not-forced",
        "high",
        "Row level security not forced on a table an access role can bypass",
        "The table owner, and every member of it, bypasses row level security unless it is forced.",
        "ALTER TABLE ... FORCE ROW LEVEL SECURITY, and remove the membership.",
    ),
    Rule(
        "rls.view-bypass",
        "high",
        "View over a row-level-security table runs as its owner",
        "A view reads its tables with its owner's rights: when the owner bypasses row level "
        "security, every reader of the view sees every row.",
        "ALTER VIEW ... SET (security_invoker = true) (15+).",
    ),
    Rule(
        "owner.member-of-privileged",
        "critical",
        "The owner or a deploy login is a member of a role that reaches the server",
        "Every migration runs as the owner: if it is a member (by any path, ADMIN OPTION included, "
        "which lets it grant itself the membership) of a superuser or of pg_execute_server_program, "
        "pg_read_server_files, pg_write_server_files, pg_read_all_data, pg_write_all_data, "
        "pg_signal_backend, pg_maintain (17+) or pg_create_subscription (16+), so is every migration: "
        "COPY ... TO PROGRAM gives it a shell on the server.",
        "REVOKE the membership (GRANTED BY its grantor on 16+); `pgwarden apply` revokes direct ones.",
    ),
    Rule(
        "outside.member-of-owner",
        "high",
        "A role outside the policy can act as the owner",
        "The policy names who acts as the owner: its deploy logins. A role it does not name (a person's "
        "login made a member 'for a quick fix', by any path: a chain of roles, INHERIT, SET, or ADMIN "
        "OPTION, which lets it grant itself the rest) can alter, drop and grant every object, and what "
        "it creates without SET ROLE escapes the owner.",
        "REVOKE the membership (`pgwarden apply` does it, but for an administrator's: a CREATEROLE role "
        "is reported, not changed); a role that must stay goes under [ignore] roles.",
    ),
    Rule(
        "outside.member-of-access",
        "medium",
        "A role outside the policy can act as an access role",
        "It reads and writes what the access role may, and the policy does not say so: access reviews "
        "built from the policy miss it.",
        "Declare it in the policy (version 2: [[roles]] with member_of), list it under [ignore] roles, "
        "or REVOKE the membership (detect-only: apply does not change it).",
    ),
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
    ),
    Rule(
        "outside.user-mapping",
        "high",
        "An access role's user mapping logs in as the owner or a superuser",
        "A user mapping says which remote role a local role is on a foreign server. An access role "
        "(or PUBLIC) mapped to the owner's, a deploy login's or a superuser's login acts as that role "
        "through every foreign table it may read there, whatever the policy gives it.",
        "DROP USER MAPPING FOR the role SERVER ...; create one with the access role's own remote login.",
    ),
    Rule(
        "settings.writable-search-path",
        "high",
        "A schema on the owner's or an access role's search_path that another role can create in",
        "Unqualified names resolve through the search_path (database and role settings, `$user`, "
        'the server\'s default "$user", public): a role that can create in one of those schemas can '
        "put a function or table there that a migration or the application then uses by mistake, "
        "and runs its code with their rights (CVE-2018-1058).",
        "REVOKE CREATE ON SCHEMA ... FROM the other roles, or take the schema off the search_path "
        "(ALTER ROLE ... IN DATABASE ... SET search_path).",
    ),
    Rule(
        "login.no-password",
        "medium",
        "LOGIN role of the policy without a password",
        "The role cannot log in with password authentication, or logs in without one under trust.",
        "Set the password environment variable and run `pgwarden apply`.",
    ),
    Rule(
        "login.md5-password",
        "medium",
        "LOGIN role of the policy with an MD5 password",
        "MD5 verifiers are replayable and deprecated (warned about on 18).",
        "Set the password again as SCRAM-SHA-256 (`pgwarden apply` does it).",
    ),
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
    ),
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
    ),
    Rule(
        "lease.direct-grant",
        "high",
        "A leased login holds privileges of its own",
        "Logins a system issues (Vault/OpenBao, Teleport) should get their rights from their group only. "
        "A privilege granted to one by name stays in the object's ACL until revoked by name: revocation "
        "statements that clean schema public only leave them behind, and thousands of such entries make "
        "the ACLs too big for any GRANT to run.",
        "DROP OWNED BY the login (after REASSIGN OWNED when it owns something); grant to the group instead.",
    ),
    Rule(
        "lease.owns-objects",
        "high",
        "A leased login owns objects",
        "An owner can alter, drop and grant its objects whatever the policy says, and a login that owns "
        "something cannot be dropped: its revocation fails, or DROP OWNED drops the objects with it.",
        "REASSIGN OWNED BY the login TO the owner, then DROP OWNED BY it (`pgwarden leases retire` does both "
        "for expired ones).",
    ),
    Rule(
        "lease.expired",
        "medium",
        "Expired leased logins still exist",
        "VALID UNTIL refuses password logins only: sessions already open, certificate or trust logins and "
        "SET ROLE by its members go on, and so do its grants. A secrets engine that failed to revoke leaves "
        "thousands of them behind.",
        "`pgwarden leases retire --yes`: ends their sessions, reassigns and revokes in every database and "
        "drops them, in batches, as a non-superuser admin.",
    ),
    Rule(
        "pooler.auth-user-superuser",
        "critical",
        "PgBouncer's auth_user is a superuser",
        "PgBouncer keeps the auth_user's password in its auth_file and a session as it: whoever reads the "
        "file or takes over the pooler is a superuser. A lookup routine needs no such power.",
        "ALTER ROLE ... NOSUPERUSER; `pgwarden apply` installs the lookup routine it calls instead.",
    ),
    Rule(
        "pooler.auth-user-reads-secrets",
        "critical",
        "PgBouncer's auth_user reads password verifiers itself",
        "SELECT on pg_authid.rolpassword or pg_shadow.passwd (a grant, or a membership such as "
        "pg_read_all_data) gives every role's verifier, superusers' included, to whoever holds the "
        "auth_user's password: the lookup routine's limits mean nothing.",
        "REVOKE the membership or the grant (the fix names it); the auth_user needs EXECUTE on the routine only.",
    ),
    # managed services (rules/managed.py, docs/managed-services.md)
    Rule(
        "provider.iam-lockout",
        "high",
        "A password login is a member of the provider's IAM role",
        "On Amazon RDS and Aurora a member of rds_iam, directly or through any group, must log in with an "
        "IAM token: its password stops working the moment a group it belongs to is granted rds_iam.",
        "REVOKE the membership that leads to rds_iam (the fix names it), or switch that login to IAM tokens "
        "and drop its password from the policy.",
    ),
    Rule(
        "provider.role-reached",
        "critical",
        "An access role can act as the provider's administrative role",
        "The provider's admin group (neon_superuser, rds_superuser, cloudsqlsuperuser, azure_pg_admin, "
        "alloydbsuperuser) creates roles and databases; Neon's has BYPASSRLS and reads and writes every "
        "table (pg_read_all_data, pg_write_all_data). Roles made in Neon's console are members of it.",
        "REVOKE the membership (the fix names the direct grant); create application roles with SQL, not "
        "the provider's console.",
    ),
    Rule(
        "provider.default-privileges",
        "high",
        "The provider's own default privileges grant the policy's roles",
        "ALTER DEFAULT PRIVILEGES FOR ROLE <provider role> (Supabase's supabase_admin granting anon, "
        "authenticated and service_role) gives those roles rights on every object the provider's role "
        "creates, whatever the policy says; only a member of that role, the provider, can change them.",
        "Keep the application's objects owned by the policy's owner (`pgwarden apply` and `adopt`), in schemas "
        "the provider does not create objects in; the provider's support can change its entries.",
    ),
    Rule(
        "provider.admin-option",
        "medium",
        "A non-superuser administrator holds ADMIN OPTION on the owner (16+)",
        "Since PostgreSQL 16 a CREATEROLE role that creates a role is granted ADMIN OPTION on it by the "
        "bootstrap superuser: on a managed service the admin login can make any role a member of the "
        "owner, and only a superuser can revoke that grant. With createrole_self_grant set it is also made a "
        "member of every role it creates.",
        "Use the admin login only to run pgwarden (not in applications or by people day to day), with IAM "
        "or a strong password; `pgwarden check` lists every role that holds it.",
    ),
)

#: Drift rule ids: one per plan action, with the severity of what the step would repair.
DRIFT_SEVERITY: dict[str, Severity] = {
    "create-role": "high",
    "alter-role": "high",
    "set-password": "low",
    "revoke-membership": "high",
    "grant-membership": "medium",
    "create-database": "high",
    "create-schema": "medium",
    "alter-owner": "high",
    "grant": "medium",
    "revoke": "high",
    "revoke-grant-option": "high",
    "default-privileges": "medium",
    # a deploy login without its role setting makes every migration escape the owner
    "role-setting": "high",
    # the guard was dropped, disabled or changed behind pgwarden's back
    "guard": "high",
    "refresh-routine": "medium",
    # a member that may SET ROLE to, or inherit, a group the policy says it must not, or hands it out
    "membership-options": "high",
    # a connection limit or an expiry the policy declares (an account that should have expired)
    "role-attribute": "medium",
    # a comment is documentation
    "role-comment": "low",
    # a retired role still exists (its objects, grants and logins with it)
    "retire-role": "medium",
    # PgBouncer's lookup routine is missing or was changed: logins through PgBouncer fail, or it leaks
    "pooler": "high",
}
DRIFT_CATALOG: tuple[Rule, ...] = tuple(
    Rule(
        f"drift.{action}",
        sev,
        f"`apply` would run: {action}",
        "The database differs from the policy; the step `plan` shows repairs it.",
        "Run `pgwarden apply`.",
    )
    for action, sev in DRIFT_SEVERITY.items()
)
RULES: dict[str, Rule] = {r.id: r for r in CATALOG + DRIFT_CATALOG}
