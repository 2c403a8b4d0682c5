"""The version 2 policy that describes a live database: owner, roles, groups and people, grants,
hardening; and the list of what the database does that the split forbids (not written as intent)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pgwarden.errors import PolicyError
from pgwarden.generate.catalog import Live, LiveRole
from pgwarden.generate.fit import FITTED_KINDS, TYPE_PROFILE, Draft, ProfileBook, RoleFit, fit_role
from pgwarden.kinds import kind, ordered

#: ALTER DEFAULT PRIVILEGES object types by kind.
DEFACL_CODES: dict[str, str] = {k: kind(k).defacl_code or "" for k in FITTED_KINDS}
#: Settings a policy cannot declare on a role (pgwarden's own, or not storable).
UNDECLARABLE = frozenset({"role", "session_authorization"})


@dataclass
class Generated:
    """A policy file's data (PolicyFileV2 shape), its comments, and what `init` must say."""

    data: dict[str, Any]
    comments: dict[str, list[str]] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)  # why the policy is not exact, when it is not
    hazards: list[str] = field(default_factory=list)  # what the split forbids: plan/check act on it
    book: ProfileBook = field(default_factory=ProfileBook)
    #: (kind of finding, line) for the summary: one line per kind, with counts
    kinds: list[tuple[str, str]] = field(default_factory=list)

    def hazard(self, kind: str, line: str) -> None:
        self.hazards.append(line)
        self.kinds.append((kind, line))

    def note(self, kind: str, line: str) -> None:
        """Something odd the policy keeps as it is (the summary only)."""
        self.kinds.append((kind, line))

    def inexact(self, kind: str, line: str) -> None:
        self.header.append(line)
        self.kinds.append((kind, line))


def choose_owner(live: Live, given: str | None) -> str:
    """--owner (a role that exists, or one the policy will create), else the role that owns most
    objects of the managed schemas (an error when two tie, or when it is a superuser)."""
    if given is not None:
        role = live.roles.get(given)
        if role is not None and role.superuser:
            raise PolicyError(
                f"{given} is a superuser: pgwarden's owner must not be one",
                hint="name a new role with --owner ROLE (the policy creates it)",
            )
        return given
    counts = Counter(o.owner for o in live.objects if not o.extension)
    if not counts:
        counts = Counter(s.owner for s in live.schemas if s.owner != "pg_database_owner") or Counter([live.db_owner])
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        raise PolicyError(
            f"the owner is ambiguous: {ranked[0][0]} and {ranked[1][0]} own {ranked[0][1]} objects each",
            hint="name the owner with --owner ROLE",
        )
    owner = ranked[0][0]
    if live.roles.get(owner, LiveRole(owner)).superuser:
        raise PolicyError(
            f"most objects are owned by {owner}, a superuser: pgwarden's owner must not be one",
            hint=f"name the owner to be with --owner ROLE (the policy creates it; add --deploy-login NAME "
            f"for the login migrations run through): pgwarden init --from-database {live.database} --owner ROLE",
        )
    return owner


def parse_settings(entries: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        name, _, value = entry.partition("=")
        out[name] = value
    return out


def _defaults(live: Live, owner: str, role: str | None) -> Any:
    entries = {(d.schema, d.objtype): d.acl for d in live.defaults if d.role == owner}

    def of(schema: str, kind: str) -> frozenset[str]:
        return entries.get((schema, DEFACL_CODES[kind]), {}).get(role, frozenset())

    return of


def holders(live: Live, owner_side: set[str]) -> list[str]:
    """Roles that hold something in the database, in name order (superusers and the owner's side apart)."""
    names: set[str | None] = set(live.db_acl)
    for s in live.schemas:
        names |= set(s.acl)
    for o in live.objects:
        names |= set(o.acl)
        names |= {g for _, acl in o.columns for g in acl}
    for d in live.defaults:  # the owner's default privileges, in a managed schema or in every schema
        if d.role in owner_side and (d.schema is None or d.schema in {s.name for s in live.schemas}):
            names |= set(d.acl)
    return sorted(n for n in names if n is not None and n not in owner_side and n in live.roles)


def hardening(live: Live, owner: str, gen: Generated) -> dict[str, bool]:
    """The hardening switches that match what the database does."""
    public_db = live.db_acl.get(None, frozenset())
    connect = not public_db
    if public_db:
        gen.comments.setdefault("hardening", []).append(
            f"revoke_public_connect = false: PUBLIC holds {', '.join(sorted(public_db))} on database "
            f"{live.database} (set it to true to revoke that)"
        )
    routines = [o for o in live.objects if o.kind == "routine" and not o.extension]
    public_exec = [o for o in routines if "EXECUTE" in o.held(None)]
    global_f = next((d for d in live.defaults if d.role == owner and d.schema is None and d.objtype == "f"), None)
    # an owner still to be made has no default privileges yet: the policy sets them
    future_public = owner in live.roles and (global_f is None or "EXECUTE" in global_f.acl.get(None, frozenset()))
    execute = not public_exec and not future_public
    if not execute:
        why = f"PUBLIC may run {len(public_exec)} routine(s) of the managed schemas" if public_exec else ""
        why = why or f"routines {owner} creates are executable by PUBLIC (PostgreSQL's default)"
        gen.comments.setdefault("hardening", []).append(f"revoke_public_execute = false: {why}")
    out = {"revoke_public_connect": connect, "revoke_public_execute": execute}
    if any(s.name == "public" and "CREATE" in s.acl.get(None, frozenset()) for s in live.others):
        out["revoke_public_create"] = False  # never revoke on a schema the policy does not manage
        gen.comments.setdefault("hardening", []).append(
            "revoke_public_create = false: PUBLIC may CREATE in schema public, which the policy does not manage "
            "(set it to true to revoke that)"
        )
    return out


def role_attributes(live: Live, role: LiveRole) -> dict[str, Any]:
    """connection_limit, valid_until, comment and settings, where the role has them."""
    out: dict[str, Any] = {}
    if role.connlimit != -1:
        out["connection_limit"] = role.connlimit
    if role.valid_until is not None:
        out["valid_until"] = role.valid_until
    if role.comment is not None:
        out["comment"] = role.comment
    settings = {k: v for k, v in parse_settings(role.settings).items() if k not in UNDECLARABLE}
    if settings:
        out["settings"] = settings
    here = {k: v for k, v in parse_settings(role.database_settings).items() if k not in UNDECLARABLE}
    if here:
        out["database_settings"] = {live.database: here}
    return out


def deploy_logins(live: Live, owner: str) -> list[str]:
    """Members of the owner whose sessions in this database act as it (ALTER ROLE ... SET role)."""
    out = []
    for m in live.memberships:
        role = live.roles.get(m.member)
        if m.role != owner or role is None or role.superuser:
            continue
        if parse_settings(role.database_settings).get("role", "").strip('"') == owner:
            out.append(m.member)
    return sorted(out)


def defaults_of(live: Live, owner: str, role: str | None) -> Any:
    """(schema, kind) -> what the owner's default privileges give `role` (None: PUBLIC)."""
    return _defaults(live, owner, role)


def fit_all(live: Live, owner: str, names: list[str], routines: bool, gen: Generated) -> dict[str, RoleFit]:
    """Each role's grants, whoever owns the objects today: ALTER ... OWNER keeps what others were
    granted (the grantor becomes the new owner). An object a role owns says nothing of what it
    should hold there (fit_role leaves it free for that role)."""
    schemas = [s.name for s in live.schemas]
    objects = list(live.objects)
    fits = {}
    for name in names:
        fit = fit_role(name, schemas, objects, _defaults(live, owner, name), gen.book, routines=routines)
        fits[name] = fit
        fit.grants += global_defaults(live, owner, name, gen.book, FITTED_KINDS)
        fit.grants += type_defaults(live, owner, name)
        _usage_and_database(live, name, fit)
        _grant_options(live, name, fit, gen.book)
        for d in fit.grants:
            if d.profile == TYPE_PROFILE:
                continue  # default privileges on types: no object of the schema is granted anything
            given = set(d.usage) if isinstance(d.usage, list) else (d.reached() if d.usage else set())
            for schema in sorted(d.reached() - given):
                s = live.schema(schema)
                if s is not None and "USAGE" in s.acl.get(None, frozenset()):
                    continue  # PUBLIC's USAGE reaches it: nothing odd
                gen.note(
                    "roles holding privileges on objects of a schema without USAGE on it: they have no effect "
                    "until USAGE is granted; the policy keeps it so (usage = false)",
                    f"{name} holds privileges on objects of {schema} without USAGE on {schema}: the policy keeps it so",
                )
    return fits


def global_defaults(live: Live, owner: str, role: str | None, book: ProfileBook, kinds: Sequence[str]) -> list[Draft]:
    """The owner's default privileges in every schema (no IN SCHEMA) for `role` (None: PUBLIC), as
    a grant's `global_defaults`."""
    entries = {d.objtype: d.acl for d in live.defaults if d.role == owner and d.schema is None}
    given = {k: entries.get(DEFACL_CODES[k], {}).get(role, frozenset()) for k in kinds}
    given = {k: v for k, v in given.items() if v}
    if not given:
        return []
    name = "PUBLIC" if role is None else role
    return [Draft(name, book.name_for(given, name), global_defaults=list(given))]


def type_defaults(live: Live, owner: str, role: str) -> list[Draft]:
    """The owner's default privileges ON TYPES for `role` (USAGE on types it creates later), per
    managed schema and in every schema, as grants of the `type_usage` profile."""
    entries = [d for d in live.defaults if d.role == owner and d.objtype == "T" and "USAGE" in d.acl.get(role, ())]
    schemas = sorted(d.schema for d in entries if d.schema is not None and live.schema(d.schema) is not None)
    out = [Draft(role, TYPE_PROFILE, ("type",), schemas=schemas)] if schemas else []
    if any(d.schema is None for d in entries):
        out.append(Draft(role, TYPE_PROFILE, global_defaults=["type"]))
    return out


def _usage_and_database(live: Live, name: str, fit: RoleFit) -> None:
    """USAGE on exactly the schemas where the role holds it, and its own database privileges (CREATE
    aside: the owner's), whatever its grants on objects."""
    usage = {s.name for s in live.schemas if "USAGE" in s.acl.get(name, frozenset())}
    for d in fit.grants:
        reached = d.reached()
        if reached and not reached <= usage:
            d.usage = sorted(reached & usage) or False
    for schema in sorted(usage - fit.schemas_with_grants()):
        fit.grants.append(Draft(name, "usage", schemas=[schema]))
    held = sorted(live.db_acl.get(name, frozenset()) & {"CONNECT", "TEMPORARY"})
    if not fit.grants:
        if held:
            fit.grants.append(Draft(name, "connect", database=None if held == ["CONNECT"] else held))
        return
    if held != ["CONNECT"]:
        fit.grants[0].database = held


def _grant_options(live: Live, name: str, fit: RoleFit, book: ProfileBook) -> None:
    """What the role holds WITH GRANT OPTION, said on the grants that give those privileges
    (`grant_option`: kept where held, never granted; check reports each as a hazard)."""
    objects = {p for o in live.objects if o.owner != name for g, p in o.grantable if g == name}
    usage = {s.name for s in live.schemas if (name, "USAGE") in s.grantable}
    database = {p for g, p in live.db_grantable if g == name} & {"CONNECT", "TEMPORARY"}
    for index, d in enumerate(fit.grants):
        keep = {p for k in FITTED_KINDS for p in book.on(d.profile, k)} & objects
        if any(d.gives_usage(s) for s in usage):
            keep.add("USAGE")
        if index == 0:  # the grant that carries the role's database privileges (see _usage_and_database)
            keep |= database
        d.grant_option = list(ordered(keep))
