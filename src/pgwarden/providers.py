"""Managed PostgreSQL services as data: what identifies each and the roles it owns; detection (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    """One service. `markers`: roles only this provider creates (one is enough to identify it);
    `settings`: its own parameters (seen with current_setting(name, true)); `extensions`: its own
    extensions (signals, never enough alone); `roles`: the roles it owns (external: never altered, revoked or retired);
    `project_roles`: roles it creates for the project, which a policy may take over (else external);
    `superusers`: its own superusers (no customer logs in as them); `admin_groups`: the group its
    admin belongs to; `iam_roles`: a member of these logs in with a token, no longer a password."""

    id: str
    name: str
    markers: tuple[str, ...]
    settings: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    project_roles: tuple[str, ...] = ()
    superusers: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    iam_roles: tuple[str, ...] = ()
    #: roles whose members bypass row level security or read every table (Neon's neon_superuser)
    broad_roles: tuple[str, ...] = ()
    admin_is_superuser: bool = False
    docs: str = ""

    def owns(self, role: str) -> bool:
        return role in self.roles or role in self.superusers


#: Names checked against each provider's public documentation (docs/managed-services.md cites them).
PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "rds",
        "Amazon RDS / Aurora PostgreSQL",
        markers=("rds_superuser", "rdsadmin", "rds_iam", "rds_replication", "rds_password"),
        settings=("rds.extensions", "rds.force_ssl", "rds.logical_replication"),
        extensions=("aws_commons", "aws_s3", "aws_lambda", "rds_tools", "apg_plan_mgmt"),
        roles=("rds_superuser", "rds_iam", "rds_replication", "rds_password", "rds_ad", "rdstopmgr"),
        superusers=("rdsadmin",),
        admin_groups=("rds_superuser",),
        iam_roles=("rds_iam",),
        docs="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.html",
    ),
    Provider(
        "cloudsql",
        "Google Cloud SQL for PostgreSQL",
        markers=("cloudsqlsuperuser", "cloudsqladmin", "cloudsqliamuser", "cloudsqliamserviceaccount"),
        settings=("cloudsql.iam_authentication", "cloudsql.enable_pgaudit", "cloudsql.logical_decoding"),
        roles=(
            "cloudsqlsuperuser",
            "cloudsqliamuser",
            "cloudsqliamserviceaccount",
            "cloudsqlimportexport",
            "cloudsqlreplica",
            "cloudsqlagent",
            "cloudsqlinactiveuser",
        ),
        superusers=("cloudsqladmin",),
        admin_groups=("cloudsqlsuperuser",),
        docs="https://cloud.google.com/sql/docs/postgres/users",
    ),
    Provider(
        "alloydb",
        "Google AlloyDB for PostgreSQL",
        markers=("alloydbsuperuser", "alloydbadmin", "alloydbiamuser", "alloydbagent"),
        settings=("alloydb.iam_authentication", "alloydb.enable_pgaudit", "google_columnar_engine.enabled"),
        extensions=("google_columnar_engine", "google_db_advisor"),
        roles=("alloydbsuperuser", "alloydbiamuser", "alloydbimportexport", "alloydbagent", "alloydbreplica"),
        superusers=("alloydbadmin",),
        admin_groups=("alloydbsuperuser",),
        docs="https://cloud.google.com/alloydb/docs/database-users/about",
    ),
    Provider(
        "azure",
        "Azure Database for PostgreSQL flexible server",
        markers=("azure_pg_admin", "azuresu"),
        settings=("azure.extensions", "azure.accepted_password_auth_method"),
        extensions=("azure", "pg_azure_storage"),
        roles=("azure_pg_admin", "replication"),
        superusers=("azuresu",),
        admin_groups=("azure_pg_admin",),
        docs="https://learn.microsoft.com/azure/postgresql/flexible-server/how-to-create-users",
    ),
    Provider(
        "supabase",
        "Supabase",
        markers=("supabase_admin", "supabase_auth_admin", "supabase_storage_admin"),
        settings=("supautils.reserved_roles", "supautils.privileged_extensions", "pgrst.db_schemas"),
        extensions=("supautils", "pgsodium", "supabase_vault", "pg_graphql"),
        roles=(
            "supabase_auth_admin",
            "supabase_storage_admin",
            "supabase_functions_admin",
            "supabase_realtime_admin",
            "supabase_replication_admin",
            "supabase_read_only_user",
            "supabase_etl_admin",
            "dashboard_user",
            "pgbouncer",
            "pgsodium_keyholder",
            "pgsodium_keyiduser",
            "pgsodium_keymaker",
        ),
        project_roles=("anon", "authenticated", "service_role", "authenticator"),
        superusers=("supabase_admin",),
        docs="https://supabase.com/docs/guides/database/postgres/roles",
    ),
    Provider(
        "neon",
        "Neon",
        markers=("neon_superuser", "cloud_admin"),
        settings=("neon.timeline_id", "neon.tenant_id", "neon.max_file_cache_size"),
        extensions=("neon", "neon_utils"),
        roles=("neon_superuser", "neon_service"),
        superusers=("cloud_admin",),
        admin_groups=("neon_superuser",),
        broad_roles=("neon_superuser",),
        docs="https://neon.com/docs/manage/roles",
    ),
    Provider(
        "crunchy-bridge",
        "Crunchy Bridge",
        markers=("crunchy_read", "crunchy_write"),
        roles=("crunchy_read", "crunchy_write"),
        project_roles=("application",),
        admin_is_superuser=True,  # its postgres role is a real superuser
        docs="https://docs.crunchybridge.com/concepts/users/",
    ),
)

COMMUNITY = Provider("community", "community PostgreSQL", markers=())

BY_ID = {p.id: p for p in (*PROVIDERS, COMMUNITY)}


@dataclass(frozen=True)
class Detection:
    """The provider the server looks like and what showed it ("role rds_superuser", "setting rds.extensions")."""

    provider: Provider
    signals: tuple[str, ...] = ()
    #: provider-owned roles that exist on this server, outside the policy: pgwarden leaves them alone
    external: tuple[str, ...] = ()

    @property
    def managed(self) -> bool:
        return self.provider.id != COMMUNITY.id

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.provider.id,
            "name": self.provider.name,
            "signals": list(self.signals),
            "external_roles": list(self.external),
        }


def detect(role_names: Iterable[str], settings: Sequence[str] = (), extensions: Sequence[str] = ()) -> Detection:
    """The provider whose marker roles exist (the most of them wins); its settings and extensions are
    listed as further signals. Community PostgreSQL when no marker role exists. Pure."""
    names = set(role_names)
    best: tuple[int, Provider] | None = None
    for p in PROVIDERS:
        hits = sum(1 for m in p.markers if m in names)
        if hits and (best is None or hits > best[0]):
            best = (hits, p)
    if best is None:
        return Detection(COMMUNITY)
    p = best[1]
    signals = [f"role {m}" for m in p.markers if m in names]
    signals += [f"setting {s}" for s in sorted(settings) if s in p.settings]
    signals += [f"extension {e}" for e in sorted(extensions) if e in p.extensions]
    return Detection(p, tuple(signals))


#: every provider's parameters, which the server query looks up (snapshot.py)
SETTINGS: tuple[str, ...] = tuple(s for p in PROVIDERS for s in p.settings)
