"""The extra catalog reads the hazard rules need: six queries in one round trip, whatever the size of the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pgwarden.fetch import query
from pgwarden.pipeline import Call, fetch_each
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


#: The role initdb creates (oid 10): pg_shdepend records nothing it owns (hazard_owned.sql).
BOOTSTRAP_SUPERUSER = 10


def access_role_oids(policy: Policy, snap: Snapshot) -> list[int]:
    """The oids of the policy's row roles (Policy.row_roles) that exist."""
    return [snap.role_by_name[n].oid for n in policy.row_roles if n in snap.role_by_name]


def outside_without_mappings() -> str:
    """hazard_outside.sql for a database without a foreign server: no user mapping to read."""
    head, marker, _ = query("hazard_outside").partition("\n/* mappings */\n")
    if not marker:
        raise RuntimeError("queries/hazard_outside.sql lost its mappings marker line")
    return head + "\n  '[]'::json AS mappings\n"


def rls_call(policy: Policy, snap: Snapshot) -> Call:
    """hazard_rls.sql: row security in the managed schemas (one scan of pg_class)."""
    return Call("hazard_rls", RlsRow, {"schemas": [s.oid for s in snap.schemas if s.name in policy.database.schemas]})


def read_rls(conn: psycopg.Connection[Any], policy: Policy, snap: Snapshot) -> tuple[RlsRow, ...]:
    """The row security read alone (a big database's check: on the first connection, whose other reads
    end sooner than the second's)."""
    return tuple(fetch_each(conn, [rls_call(policy, snap)])[0])


def read_hazards(conn: psycopg.Connection[Any], policy: Policy, snap: Snapshot, *, rls: bool = True) -> HazardData:
    """Read what the rules need through `conn` (connected to the target database); `rls=False`:
    without row security (read_rls: the caller reads it elsewhere)."""
    roles = access_role_oids(policy, snap)
    schemas = [s.oid for s in snap.schemas if s.name in policy.database.schemas]
    owners = [snap.role_by_name[policy.owner.name].oid] if policy.owner.name in snap.role_by_name else []
    deploy = [snap.role_by_name[d].oid for d in policy.owner.deploy_logins if d in snap.role_by_name]
    # one read for the access roles' paths and the owner's and deploy logins' (owner_reach)
    builders = set(owners + deploy)
    # independent reads, sent together (one round trip); a read the server's first answer says
    # would return no row is not sent (server.sql: definers)
    server, calls = (
        snap.server,
        {
            "paths": Call("hazard_memberships", PathRow, {"roles": roles + owners + deploy}),
            "privileges": Call("hazard_privileges", CreateRow, {"roles": roles, "schemas": schemas}),
            "outside": Call(
                "hazard_outside",
                OutsideHazardRow,
                {"roles": owners + deploy + roles, "access": roles},
                None if snap.foreign_servers else outside_without_mappings(),
            ),
        },
    )
    # what the bootstrap superuser owns is in no pg_shdepend row: every catalog is read for it
    owned_query = "hazard_owned_scan" if BOOTSTRAP_SUPERUSER in roles + deploy else "hazard_owned"
    calls["owned"] = Call(owned_query, OwnedRow, {"roles": roles + deploy})
    if server.definers:
        calls["functions"] = Call("hazard_functions", FunctionRow, {"roles": roles, "schemas": schemas})
    if rls:  # always read (knowing that no relation has row security takes the same scan of pg_class)
        calls["rls"] = rls_call(policy, snap)
    got = dict(zip(calls, fetch_each(conn, list(calls.values())), strict=True))
    paths, (outside,) = got["paths"], got["outside"]
    owned, privileges, functions, secured = (got.get(k, []) for k in ("owned", "privileges", "functions", "rls"))
    data = HazardData.build(
        memberships=[m for m in paths if m.member not in builders],
        owned=owned,
        privileges=privileges,
        functions=functions,
        rls=secured,
        owner_reach=[m for m in paths if m.member in builders],
        schema_create=tuple(outside.schemas),  # queries/hazard_outside.sql
        user_mappings=tuple(outside.mappings),
    )
    from pgwarden.leases import read_leases

    return replace(data, access=_exception_facts(conn, policy), leased=read_leases(conn, policy, snap))


def _exception_facts(conn: psycopg.Connection[Any], policy: Policy) -> Facts | None:
    """pgwarden.access.facts.read_exception_facts, whose module (six dataclasses, ~30M instructions to
    import) is imported only for a policy that excepts tables or columns: it reads nothing otherwise."""
    tables = policy.excepted_tables()
    if not tables:
        return None
    from pgwarden.access.facts import read_facts

    return read_facts(conn, policy.database.schemas, tables)
