"""The extra catalog reads the hazard rules need: six queries whatever the size of the database."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pgwarden.snapshot import _rows

if TYPE_CHECKING:
    import psycopg

    from pgwarden.access.facts import Facts
    from pgwarden.policy import Policy
    from pgwarden.snapshot import Snapshot


@dataclass(frozen=True)
class HazardData:
    """Rows of the hazard_*.sql queries (plain dicts: the rules read them by column name)."""

    memberships: tuple[dict[str, Any], ...] = ()  # member, role, direct
    owned: tuple[dict[str, Any], ...] = ()  # role, catalog, object
    privileges: tuple[dict[str, Any], ...] = ()  # role, kind, name, can_create, can_temp
    functions: tuple[dict[str, Any], ...] = ()  # schema, name, args, owner, kind, public_execute, executable_by
    rls: tuple[dict[str, Any], ...] = ()  # kind, schema, name, owner, forced, base_schema, base_name
    member_of: dict[int, frozenset[int]] = field(default_factory=dict)
    owner_reach: tuple[dict[str, Any], ...] = ()  # member, role, direct: the owner's and deploy logins'
    schema_create: tuple[dict[str, Any], ...] = ()  # name, owner, grantees, creators, default_path
    user_mappings: tuple[dict[str, Any], ...] = ()  # role (0: PUBLIC), server, remote_user
    #: the access model's facts about the policy's excepted tables and what exposes them (None: no exception)
    access: Facts | None = None

    @classmethod
    def build(cls, **rows: list[dict[str, Any]]) -> HazardData:
        closure: dict[int, set[int]] = {}
        for m in rows.get("memberships", ()):
            closure.setdefault(int(m["member"]), set()).add(int(m["role"]))
        tables: dict[str, Any] = {k: tuple(v) for k, v in rows.items()}
        return cls(
            **tables,
            member_of={k: frozenset(v) for k, v in closure.items()},
        )


def access_role_oids(policy: Policy, snap: Snapshot) -> list[int]:
    """The oids of the policy's row roles (Policy.row_roles) that exist."""
    return [snap.role_by_name[n].oid for n in policy.row_roles if n in snap.role_by_name]


def read_hazards(conn: psycopg.Connection[Any], policy: Policy, snap: Snapshot) -> HazardData:
    """Read what the rules need through `conn` (connected to the target database)."""
    roles = access_role_oids(policy, snap)
    schemas = [s.oid for s in snap.schemas if s.name in policy.database.schemas]
    owners = [snap.role_by_name[policy.owner.name].oid] if policy.owner.name in snap.role_by_name else []
    deploy = [snap.role_by_name[d].oid for d in policy.owner.deploy_logins if d in snap.role_by_name]
    # one read for the access roles' paths and the owner's and deploy logins' (owner_reach)
    builders = set(owners + deploy)
    paths = _rows(conn, "hazard_memberships", {"roles": roles + owners + deploy})
    data = HazardData.build(
        memberships=[m for m in paths if m["member"] not in builders],
        owned=_rows(conn, "hazard_owned", {"roles": roles + deploy}),
        privileges=_rows(conn, "hazard_privileges", {"roles": roles, "schemas": schemas}),
        functions=_rows(conn, "hazard_functions", {"roles": roles, "schemas": schemas}),
        rls=_rows(conn, "hazard_rls", {"schemas": schemas}),
        owner_reach=[m for m in paths if m["member"] in builders],
        **_outside(conn, roles, owners + deploy),
    )
    from pgwarden.access.facts import read_exception_facts

    return replace(data, access=read_exception_facts(conn, policy))


def _outside(conn: psycopg.Connection[Any], access: list[int], owners: list[int]) -> dict[str, list[dict[str, Any]]]:
    """schema_create and user_mappings: one statement (queries/hazard_outside.sql)."""
    row = _rows(conn, "hazard_outside", {"roles": owners + access, "access": access})[0]
    return {"schema_create": list(row["schemas"]), "user_mappings": list(row["mappings"])}
