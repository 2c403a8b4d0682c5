"""Policy keys for logins other systems make: [[leased]] (Vault/OpenBao, Teleport) and [pgbouncer]."""

from __future__ import annotations

import fnmatch
from typing import Annotated

from pydantic import AfterValidator

from pgwarden.policy.base import _Model
from pgwarden.policy.names import RoleName, SchemaName, check_identifier

#: fnmatch's characters (the same syntax as a [[databases]] pattern: policy/patterns.py)
_GLOB = frozenset("*?[")

#: A pattern must say this much of the name itself: `*` alone would make every role a leased login.
MIN_LITERAL = 2


def _lease_pattern(value: str) -> str:
    check_identifier(value, "leased pattern")
    if not any(ch in _GLOB for ch in value):
        raise ValueError(f"{value!r} is not a pattern: leased logins are named by a glob such as 'v-token-app-*'")
    literal = sum(1 for ch in value if ch not in _GLOB and ch not in "]!")
    if literal < MIN_LITERAL:
        raise ValueError(f"{value!r} matches almost any role: give the prefix the issuing system uses ('v-*')")
    return value


LeasePattern = Annotated[str, AfterValidator(_lease_pattern)]


class LeaseSpec(_Model):
    """Logins a system issues and revokes (Vault/OpenBao's database secrets engine, Teleport's
    auto-provisioning): named by `pattern`, each a member of `group` and holding nothing itself;
    `issuer` is the login that creates them (its minimal rights: `pgwarden leases statements`)."""

    pattern: LeasePattern
    group: RoleName
    issuer: RoleName | None = None

    def matches(self, role: str) -> bool:
        """Whether `role` is named by this pattern (case-sensitive, as PostgreSQL's names are)."""
        return fnmatch.fnmatchcase(role, self.pattern)


class PgBouncerSpec(_Model):
    """PgBouncer's `auth_user`: apply installs the lookup routine its `auth_query` calls, in `schema`
    of every database of the policy, executable by that login only (docs/pgbouncer.md)."""

    auth_user: RoleName
    lookup_schema: SchemaName = "pgbouncer"
