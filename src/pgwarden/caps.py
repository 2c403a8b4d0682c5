"""What each PostgreSQL major version can do: version differences as data, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from pgwarden.kinds import KINDS

MIN_VERSION_NUM = 140000


@dataclass(frozen=True)
class Capabilities:
    """Facts about a server version (see POSTGRES_FACTS §13)."""

    version_num: int

    @property
    def major(self) -> int:
        return self.version_num // 10000

    @property
    def supported(self) -> bool:
        return self.version_num >= MIN_VERSION_NUM

    @property
    def has_maintain(self) -> bool:
        """MAINTAIN privilege and pg_maintain (17+)."""
        return self.version_num >= 170000

    @property
    def membership_options(self) -> bool:
        """GRANT ... WITH INHERIT/SET, and CREATEROLE's ADMIN model (16+)."""
        return self.version_num >= 160000

    @property
    def createrole_is_near_superuser(self) -> bool:
        """On 14-15 CREATEROLE can take over any non-superuser role (F3.2, F8.4)."""
        return self.version_num < 160000

    @property
    def security_invoker_views(self) -> bool:
        return self.version_num >= 150000

    @property
    def table_owner_privileges(self) -> tuple[str, ...]:
        """What acldefault('r', owner) gives the owner of a table."""
        return self.owner_privileges("table")

    def owner_privileges(self, kind: str) -> tuple[str, ...]:
        """What acldefault() gives the owner of an object of `kind` on this version (the registry's)."""
        return KINDS[kind].owner_privileges(self.major)

    @property
    def dangerous_predefined_roles(self) -> tuple[str, ...]:
        """Predefined roles an access role must not be a member of."""
        roles = [
            "pg_write_all_data",
            "pg_read_server_files",
            "pg_write_server_files",
            "pg_execute_server_program",
            "pg_signal_backend",
        ]
        if self.has_maintain:
            roles.append("pg_maintain")
        return tuple(roles)
