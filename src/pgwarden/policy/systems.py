"""The file's checks of [[leased]] and [pgbouncer] against its roles (pgwarden.policy.leases)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgwarden.policy.names import LocatedError

if TYPE_CHECKING:
    from pgwarden.policy.v2 import PolicyFileV2


def check_systems(file: PolicyFileV2) -> None:
    """A leased pattern names none of the file's own roles; its group is a group of [[roles]]; the
    issuer is outside the policy; PgBouncer's auth_user is a login of [[roles]]."""
    named = {file.owner.name: "the owner"}
    named.update((d, "a deploy login") for d in file.owner.deploy_logins)
    named.update((r.name, "a role of [[roles]]") for r in file.roles)
    named.update((r, "an ignored role") for r in file.ignore.roles)
    named.update((r.name, "a retired role") for r in file.retired)
    named.update((r, "a break-glass role") for r in file.break_glass.roles)
    groups = {r.name for r in file.roles if not r.member_of}
    for index, lease in enumerate(file.leased):
        if lease.group not in groups:
            raise LocatedError(
                f"{lease.group!r} is not a group role of [[roles]] (one without member_of): leased logins are "
                "members of such a group and hold nothing themselves",
                "leased",
                index,
                "group",
            )
        for name, what in named.items():
            if lease.matches(name):
                raise LocatedError(
                    f"pattern {lease.pattern!r} names {name}, {what}: leased logins must be named apart",
                    "leased",
                    index,
                    "pattern",
                )
        if lease.issuer is not None and lease.issuer in named:
            raise LocatedError(
                f"issuer {lease.issuer} is {named[lease.issuer]}: the issuing login is the secrets engine's "
                "own, outside the policy",
                "leased",
                index,
                "issuer",
            )
        if lease.issuer is not None and any(other.matches(lease.issuer) for other in file.leased):
            raise LocatedError(f"issuer {lease.issuer} is named by a leased pattern", "leased", index, "issuer")
    _check_pgbouncer(file)


def _check_pgbouncer(file: PolicyFileV2) -> None:
    if file.pgbouncer is None:
        return
    user = file.pgbouncer.auth_user
    role = next((r for r in file.roles if r.name == user), None)
    if role is None:
        what = "the owner's side" if user in {file.owner.name, *file.owner.deploy_logins} else "not in the policy"
        raise LocatedError(
            f"auth_user {user!r} is {what}: PgBouncer's auth_user is a login of its own, declared under [[roles]] "
            "(login = true, granted nothing but CONNECT)",
            "pgbouncer",
            "auth_user",
        )
    if not role.login:
        raise LocatedError(f"auth_user {user!r} is declared with login = false", "pgbouncer", "auth_user")
    if any(lease.matches(user) for lease in file.leased):
        raise LocatedError(f"auth_user {user!r} is named by a leased pattern", "pgbouncer", "auth_user")
