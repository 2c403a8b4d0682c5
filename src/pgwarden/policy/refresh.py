"""A database's `refresh`: the materialized views a role may refresh (REFRESH MATERIALIZED VIEW needs ownership)."""

from __future__ import annotations

from pydantic import model_validator

from pgwarden.policy.base import _Model
from pgwarden.policy.names import MAX_IDENTIFIER_BYTES, LocatedError, QualifiedName, RoleName

#: The refresh routine of a role on PostgreSQL 14-16 is `<schema>.pgwarden_refresh_<role>` (pgwarden.refresh).
ROUTINE_PREFIX = "pgwarden_refresh_"


class RefreshSpec(_Model):
    """`role` may refresh `views` (materialized views as schema.view): MAINTAIN on 17+, an owner-owned
    refresh routine that only it may run on 14-16."""

    role: RoleName
    views: tuple[QualifiedName, ...]

    @model_validator(mode="after")
    def _listed(self) -> RefreshSpec:
        if not self.views:
            raise LocatedError("list at least one materialized view (schema.view)", "views")
        if len(set(self.views)) != len(self.views):
            raise LocatedError("lists the same view twice", "views")
        if len((ROUTINE_PREFIX + self.role).encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            raise LocatedError(
                f"the refresh routine's name {ROUTINE_PREFIX}{self.role} would be over {MAX_IDENTIFIER_BYTES} bytes "
                f"(role names of at most {MAX_IDENTIFIER_BYTES - len(ROUTINE_PREFIX)} bytes can refresh views)",
                "role",
            )
        return self
