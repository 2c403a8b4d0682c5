"""Policy keys for time-bound access: [[temporary]] memberships with an end, and [break_glass] roles."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pgwarden.policy.names import RoleName


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # as pgwarden.policy.model's


class TemporarySpec(_Model):
    """`role` is a member of `group` until `until` (with its time zone), for `reason`; reviewed like
    any change. On PostgreSQL 16+, with the membership options given: SET without INHERIT by default."""

    role: RoleName
    group: RoleName
    until: AwareDatetime
    reason: str = Field(min_length=1)
    inherit: bool = False
    set: bool = True

    @model_validator(mode="after")
    def _distinct(self) -> TemporarySpec:
        if self.role == self.group:
            raise ValueError(f"temporary: {self.role} cannot be a member of itself")
        if not (self.inherit or self.set):
            raise ValueError(f"temporary: {self.role} in {self.group} with neither inherit nor set gives nothing")
        return self


class BreakGlassSpec(_Model):
    """Roles for emergencies: NOLOGIN except inside a window `pgwarden break-glass open` gives."""

    roles: tuple[RoleName, ...] = ()
