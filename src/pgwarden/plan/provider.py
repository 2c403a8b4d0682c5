"""The plan on a managed service: its roles left alone (as [ignore]d), and the steps its admin cannot run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pgwarden.errors import PolicyError
from pgwarden.plan.model import Step
from pgwarden.policy import Policy
from pgwarden.policy.model import IgnoreSpec
from pgwarden.providers import Detection, Provider, detect
from pgwarden.snapshot import Snapshot


def of_snapshot(snap: Snapshot, policy: Policy | None = None) -> Detection:
    """detect() over a snapshot, with the external roles that exist (those the policy does not name)."""
    found = detect(snap.role_by_name, snap.server.settings, snap.server.extensions)
    p = found.provider
    named = set(policy.role_names) if policy is not None else set()
    owned = (*p.superusers, *p.roles, *p.project_roles)
    external = tuple(r for r in owned if r in snap.role_by_name and r not in named)
    return Detection(p, found.signals, external)


def with_external(policy: Policy, snap: Snapshot) -> Policy:
    """The policy with the provider's roles under [ignore] roles, so that no planner alters, revokes
    or retires them; a policy that manages or retires one of them is refused."""
    found = of_snapshot(snap, policy)
    if not found.managed:
        return policy
    p = found.provider
    retired = {r.name for r in policy.retired}
    for name in (*policy.role_names, *sorted(retired)):
        if p.owns(name):
            verb = "retires" if name in retired else "manages"
            raise PolicyError(
                f"the policy {verb} role {name!r}, which belongs to {p.name}",
                hint=f"pgwarden never alters, revokes or retires {p.name}'s own roles: take it out of the policy "
                "(it is left alone as external)",
            )
    extra = tuple(r for r in found.external if r not in policy.ignore.roles)
    if not extra:
        return policy
    return policy.model_copy(update={"ignore": IgnoreSpec(roles=(*policy.ignore.roles, *extra))})


@dataclass(frozen=True)
class Impossible:
    """A step the admin cannot run on this provider: why, and what to do instead."""

    step: Step
    why: str
    instead: str

    def to_dict(self) -> dict[str, object]:
        return {"key": self.step.key, "object": self.step.object, "why": self.why, "instead": self.instead}


def impossible(found: Detection, steps: Iterable[Step]) -> tuple[Impossible, ...]:
    """For each step the admin may not run (`allowed` False) on a managed service, the provider's reason
    and the alternative. On community PostgreSQL, or where the admin is a superuser, nothing. Pure."""
    p = found.provider
    if not found.managed or p.admin_is_superuser:
        return ()
    return tuple(_explain(p, s) for s in steps if not s.allowed)


def _explain(p: Provider, step: Step) -> Impossible:
    need = step.needs
    theirs = [r for r in (need.roles if need else ()) if r and p.owns(r)]
    if need is not None and theirs:
        return Impossible(
            step,
            f"it needs {need}, and {theirs[0]} is {p.name}'s own role: no role you log in as can act as it",
            "keep the application's objects in the policy's own schemas, owned by the owner (what the provider "
            "owns stays its own); `pgwarden check` keeps reporting it, and `apply --skip-unprivileged` "
            "applies the rest",
        )
    if need is None or not need.requires:
        group = f" (its admin is a member of {', '.join(p.admin_groups)})" if p.admin_groups else ""
        return Impossible(
            step,
            f"it needs a superuser, and on {p.name} no customer role is one{group}",
            "drop what needs it from the policy (SUPERUSER, REPLICATION or BYPASSRLS attributes) or ask the "
            "provider's support; `apply --skip-unprivileged` applies the rest",
        )
    return Impossible(
        step,
        f"the admin lacks {need}",
        "grant the admin what it lacks from a role that has it (the provider's admin login), "
        "or run `apply --skip-unprivileged` and give the printed SQL to whoever has it",
    )
