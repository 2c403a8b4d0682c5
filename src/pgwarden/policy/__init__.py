"""The policy: what the user wants, loaded from TOML (version 1 or 2) and validated with errors that
name file, line and key. The engine reads `Policy`: one database's view of the file."""

from __future__ import annotations

from pgwarden.policy.build import build_policy, upgrade
from pgwarden.policy.load import load_policies, load_policy, parse_policies, parse_policy
from pgwarden.policy.locate import locate
from pgwarden.policy.model import (
    AccessSpec,
    ApplySpec,
    DatabaseSpec,
    GrantSpec,
    GuardSpec,
    HardeningSpec,
    IgnoreSpec,
    MembershipSpec,
    MemberSpec,
    OwnerSpec,
    Policy,
    ProfileSpec,
    RetiredSpec,
    RoleAttributes,
)
from pgwarden.policy.names import (
    MAX_IDENTIFIER_BYTES,
    MODES,
    AccessLevel,
    Mode,
    check_duration,
    check_identifier,
    password_env_for,
    split_qualified,
)
from pgwarden.policy.render import render_toml, render_toml_v2

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "MODES",
    "AccessLevel",
    "AccessSpec",
    "ApplySpec",
    "DatabaseSpec",
    "GrantSpec",
    "GuardSpec",
    "HardeningSpec",
    "IgnoreSpec",
    "MemberSpec",
    "MembershipSpec",
    "Mode",
    "OwnerSpec",
    "Policy",
    "ProfileSpec",
    "RetiredSpec",
    "RoleAttributes",
    "build_policy",
    "check_duration",
    "check_identifier",
    "load_policies",
    "load_policy",
    "locate",
    "parse_policies",
    "parse_policy",
    "password_env_for",
    "render_toml",
    "render_toml_v2",
    "split_qualified",
    "upgrade",
]
