"""`init --from-database`: the version 2 policy that describes a live database (see generate.build)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgwarden.generate.assemble import Generated
from pgwarden.generate.build import generate, to_policy
from pgwarden.generate.catalog import Live, read
from pgwarden.generate.suggest import privilege_diff, smaller
from pgwarden.policy import Policy

if TYPE_CHECKING:
    import psycopg

__all__ = ["Generated", "Live", "Result", "from_database", "generate", "read", "render", "to_policy"]


@dataclass(frozen=True)
class Result:
    text: str  # the policy file
    policy: Policy
    hazards: tuple[str, ...]  # what the split forbids (not written as intent)
    inexact: tuple[str, ...]  # where the file cannot say what the database does
    diff: tuple[str, ...] = ()  # --suggest: effective privileges it widens (+) or narrows (-)
    kinds: tuple[tuple[str, str], ...] = ()  # (kind of finding, line): the summary groups them
    owner_exists: bool = True  # False: the policy creates the owner
    superuser_owned: bool = False  # the managed objects belong to a superuser today
    previous_owner: str | None = None  # who owns most objects today, when not the policy's owner

    def summary(self) -> list[str]:
        """One line per kind of finding, with its count (and the one line when it is alone)."""
        counts: dict[str, list[str]] = {}
        for kind, line in self.kinds:
            counts.setdefault(kind, []).append(line)
        return [lines[0] if len(lines) == 1 else f"{len(lines)} {kind}" for kind, lines in counts.items()]


def render(gen: Generated, policy: Policy) -> str:
    from pgwarden.policy.render import render_toml_v2

    header = [f"Written by `pgwarden init --from-database {policy.database.name}` from the live database."]
    if gen.header:
        header += ["Not exact: `pgwarden plan` will change these (the rest is what the database holds):"]
        header += [f"  - {line}" for line in gen.header]
    return "\n".join(f"# {line}" for line in header) + "\n" + render_toml_v2(policy, gen.comments)


def from_database(
    conn: psycopg.Connection[Any],
    schemas: Sequence[str] | None,
    owner: str | None,
    *,
    suggest: bool = False,
    deploy_login: str | None = None,
) -> Result:
    """Read the database `conn` is connected to and describe it as a policy (the exact one, or with
    `suggest` a smaller one and the privileges it changes)."""
    live = read(conn, schemas)
    gen = generate(live, owner, deploy_login)
    policy = to_policy(gen)
    chosen = policy.owner.name
    facts = {
        "kinds": tuple(gen.kinds),
        "owner_exists": chosen in live.roles,
        "superuser_owned": any(
            live.roles[o.owner].superuser for o in live.objects if not o.extension and o.owner in live.roles
        )
        or (live.db_owner in live.roles and live.roles[live.db_owner].superuser),
        "previous_owner": _previous_owner(live, chosen),
    }
    if not suggest:
        return Result(render(gen, policy), policy, tuple(gen.hazards), tuple(gen.header), **facts)  # type: ignore[arg-type]
    small = smaller(gen)
    suggested = to_policy(small)
    diff = privilege_diff(policy, suggested, live.objects, policy.hardening.revoke_public_execute)
    return Result(render(small, suggested), suggested, tuple(small.hazards), tuple(gen.header), tuple(diff), **facts)  # type: ignore[arg-type]


def _previous_owner(live: Live, owner: str) -> str | None:
    """The role owning most of what moves to `owner` (what `adopt --from` names)."""
    from collections import Counter

    counts = Counter(o.owner for o in live.objects if not o.extension and o.owner != owner)
    if live.db_owner != owner:
        counts[live.db_owner] += 1
    return counts.most_common(1)[0][0] if counts else None
