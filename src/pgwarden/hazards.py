"""The extra catalog reads the hazard rules need: six queries whatever the size of the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pgwarden.fetch import fetch
from pgwarden.rows import (
    CreateRow,
    FunctionRow,
    LeaseRow,
    OutsideHazardRow,
    OwnedRow,
    PathRow,
    RlsRow,
    SchemaCreateRow,
    UserMappingRow,
)

if TYPE_CHECKING:
    import psycopg

    from pgwarden.access.facts import Facts
    from pgwarden.policy import Policy
    from pgwarden.snapshot import Snapshot


@dataclass(frozen=True)
class HazardData:
    """Rows of the hazard_*.sql queries, typed (pgwarden.rows)."""

    memberships: tuple[PathRow, ...] = ()
    owned: tuple[OwnedRow, ...] = ()
    privileges: tuple[CreateRow, ...] = ()
    functions: tuple[FunctionRow, ...] = ()
    rls: tuple[RlsRow, ...] = ()
    member_of: dict[int, frozenset[int]] = field(default_factory=dict)
    owner_reach: tuple[PathRow, ...] = ()  # the owner's and deploy logins' paths
    schema_create: tuple[SchemaCreateRow, ...] = ()
    user_mappings: tuple[UserMappingRow, ...] = ()
    #: the leased logins ([[leased]]) that exist: expired or not, what they own and are granted here
    leased: tuple[LeaseRow, ...] = ()
    #: the access model's facts about the policy's excepted tables and what exposes them (None: no exception)
    access: Facts | None = None

    @classmethod
    def build(cls, **rows: Sequence[Any]) -> HazardData:
        """From the rows of each query; a row may also be given as a mapping of its columns (tests do)."""
        typed: dict[str, Any] = {
            k: tuple(_ROW_TYPES[k](**r) if isinstance(r, Mapping) else r for r in v) for k, v in rows.items()
        }
        closure: dict[int, set[int]] = {}
        for m in typed.get("memberships", ()):
            closure.setdefault(m.member, set()).add(m.role)
        return cls(**typed, member_of={k: frozenset(v) for k, v in closure.items()})


_ROW_TYPES: dict[str, type[Any]] = {
    "memberships": PathRow,
    "owned": OwnedRow,
    "leased": LeaseRow,
    "privileges": CreateRow,
    "functions": FunctionRow,
    "rls": RlsRow,
    "owner_reach": PathRow,
    "schema_create": SchemaCreateRow,
    "user_mappings": UserMappingRow,
}


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
    paths = fetch(conn, "hazard_memberships", PathRow, {"roles": roles + owners + deploy})
    data = HazardData.build(
        memberships=[m for m in paths if m.member not in builders],
        owned=fetch(conn, "hazard_owned", OwnedRow, {"roles": roles + deploy}),
        privileges=fetch(conn, "hazard_privileges", CreateRow, {"roles": roles, "schemas": schemas}),
        functions=fetch(conn, "hazard_functions", FunctionRow, {"roles": roles, "schemas": schemas}),
        rls=fetch(conn, "hazard_rls", RlsRow, {"schemas": schemas}),
        owner_reach=[m for m in paths if m.member in builders],
        **_outside(conn, roles, owners + deploy),
    )
    from pgwarden.access.facts import read_exception_facts
    from pgwarden.leases import read_leases

    return replace(data, access=read_exception_facts(conn, policy), leased=read_leases(conn, policy, snap))


def _outside(conn: psycopg.Connection[Any], access: list[int], owners: list[int]) -> dict[str, list[Any]]:
    """schema_create and user_mappings: one statement (queries/hazard_outside.sql)."""
    row = fetch(conn, "hazard_outside", OutsideHazardRow, {"roles": owners + access, "access": access})[0]
    return {
        "schema_create": list(row.schemas),
        "user_mappings": list(row.mappings),
    }
