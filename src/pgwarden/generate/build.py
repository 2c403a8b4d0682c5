"""From a live database to the version 2 policy file that describes it (init --from-database)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from pgwarden.errors import PolicyError
from pgwarden.generate.assemble import (
    Generated,
    choose_owner,
    defaults_of,
    deploy_logins,
    fit_all,
    global_defaults,
    hardening,
    holders,
    role_attributes,
)
from pgwarden.generate.catalog import Live, LiveMembership, LiveRole
from pgwarden.generate.fit import TYPE_PROFILE, TYPE_PROFILE_SPEC, Draft, fit_role
from pgwarden.policy import Policy
from pgwarden.policy.names import password_env_for
from pgwarden.scopes import PUBLIC_ROLE

#: Attributes an access role must not have (plan takes them away).
_FORBIDDEN_ATTRIBUTES = ("superuser", "createdb", "createrole", "replication", "bypassrls")


def generate(live: Live, owner_name: str | None = None, deploy_login: str | None = None) -> Generated:
    """The policy data for `live`, with its comments and the split's hazards."""
    if not live.schemas:
        raise PolicyError(
            f"database {live.database} has no schema with objects or grants",
            hint="name the schemas to manage with --schema NAME",
        )
    gen = Generated(data={})
    owner = choose_owner(live, owner_name)
    deploys = sorted({*deploy_logins(live, owner), *([deploy_login] if deploy_login else [])})
    switches = hardening(live, owner, gen)
    owner_side = {owner, *deploys}
    superusers = {n for n, r in live.roles.items() if r.superuser}
    found = holders(live, owner_side)
    _superusers(live, found, superusers, gen)
    candidates = [n for n in found if n not in superusers]
    # routines are fitted either way: where PUBLIC runs them, what a role holds is kept as said
    fits = fit_all(live, owner, candidates, True, gen)
    # a member of a group that holds CONNECT itself is a person (its CONNECT comes through the group)
    # (TEMPORARY, or a grant option, is more than that: a role holding it is not a person)
    holding = {n for n in candidates if any(_more_than_connect(d) for d in fits[n].grants)}
    people = _people(live, holding, owner_side | superusers)
    kept = _members_elsewhere(live, people, holding, owner_side)
    # a role another role of the policy is a member of is a group of theirs, not a person (rights never flow
    # from people): to a fixpoint, since each role taken out of the people may be a member of another
    while more := {
        p for p in people - kept if any(m.role == p and m.member in {*candidates, *people} for m in live.memberships)
    }:
        kept |= more
    people -= kept
    groups = {n for n in candidates if fits[n].grants and n not in people} | kept
    named = [*candidates, *sorted(kept - set(candidates))]
    roles = [_group_or_app(live, n, groups, gen) for n in named if n in groups and n not in people]
    roles += [_person(live, n, groups) for n in sorted(people)]
    _role_notes(live, candidates, groups, people, deploys, gen)
    grants = []
    for name in candidates:
        if name in groups and name not in people:
            grants += [d.spec() for d in fits[name].grants]
            for d in fits[name].grants:
                if d.why:
                    gen.comments[f"grant.{live.database}.{name}.{d.profile}"] = [f"exact: {w}" for w in d.why]
            gen.header += fits[name].notes
    grants += [d.spec() for d in _public(live, owner, switches["revoke_public_execute"], gen)]
    _hazards(live, owner, owner_side, groups, gen)
    for line in _other_grantors(live, owner, groups):
        gen.inexact("grants made by another role than the owner: plan grants them again as the owner", line)
    gen.data = {
        "version": 2,
        "owner": _owner(live, owner, deploys, deploy_login),
        "roles": roles,
        "profiles": _profiles(gen, grants),
        "databases": [{"name": live.database, "schemas": [s.name for s in live.schemas], "grants": grants}],
        "hardening": switches,
    }
    for name, lines in gen.book.notes.items():
        gen.comments[f"profile.{name}"] = lines
    return gen


def _profiles(gen: Generated, grants: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """The custom profiles the grants use, and `type_usage` when a grant says the owner's type defaults."""
    out = {n: {k: sorted(v) for k, v in p.items() if v} for n, p in gen.book.custom.items()}
    if any(g["profile"] == TYPE_PROFILE for g in grants) and TYPE_PROFILE not in out:
        out[TYPE_PROFILE] = {k: sorted(v) for k, v in TYPE_PROFILE_SPEC.items()}
        gen.comments[f"profile.{TYPE_PROFILE}"] = [
            "USAGE on the types the owner creates later (its default privileges ON TYPES); existing types "
            "are PUBLIC's to use"
        ]
    return out


def _more_than_connect(d: Draft) -> bool:
    return d.profile != "connect" or d.database is not None or bool(d.grant_option)


def _public(live: Live, owner: str, routines: bool, gen: Generated) -> list[Draft]:
    """What PUBLIC holds on the objects (every role holds it through PUBLIC), as grants to PUBLIC;
    its EXECUTE is the hardening switch's when PUBLIC may run the routines."""

    def keyed(acl: Mapping[str | None, frozenset[str]]) -> dict[str | None, frozenset[str]]:
        return {PUBLIC_ROLE: acl[None]} if None in acl else {}

    objects = [replace(o, acl=keyed(o.acl), columns=tuple((c, keyed(a)) for c, a in o.columns)) for o in live.objects]
    fit = fit_role(PUBLIC_ROLE, [s.name for s in live.schemas], objects, defaults_of(live, owner, None), gen.book,
                   routines=routines)  # fmt: skip
    fit.grants += global_defaults(
        live, owner, None, gen.book, ("table", "sequence", *(("routine",) if routines else ()))
    )
    for d in fit.grants:
        gen.note(
            "grants to PUBLIC on objects (every role holds them): kept, as grants to PUBLIC",
            f"PUBLIC holds {d.profile} on {', '.join(sorted(d.reached())) or 'what the owner creates later'}: kept",
        )
    return fit.grants


def _superusers(live: Live, found: list[str], superusers: set[str], gen: Generated) -> None:
    """A superuser's grants on objects it does not own are revoked by plan; what it owns moves."""
    for name in found:
        if name not in superusers:
            continue
        granted = [o for o in live.objects if o.owner != name and name in o.acl]
        if granted:
            gen.hazard(
                "superusers holding grants on objects they do not own: not written (a superuser bypasses "
                "every check); plan revokes them",
                f"superuser {name} holds privileges on {len(granted)} object(s) it does not own: plan revokes them",
            )


def _role_notes(
    live: Live, candidates: list[str], groups: set[str], people: set[str], deploys: list[str], gen: Generated
) -> None:
    """Where the roles' privileges cannot be said as they are (the file's header)."""
    for name in deploys:
        if name in live.roles and "CONNECT" not in live.db_acl.get(name, frozenset()):
            gen.inexact(
                "deploy logins without CONNECT: plan grants it",
                f"deploy login {name} has no CONNECT of its own on database {live.database}: plan grants it",
            )
    for name in sorted(people & set(candidates)):
        if _own_connect_only(live, name, groups):
            continue  # what the engine gives a member that does not inherit (Scopes.member_database)
        gen.inexact(
            "members of a group holding privileges themselves: plan revokes them (their rights come from groups)",
            f"{name}, a member of a group, holds privileges itself: plan revokes them (its rights come from "
            "its groups)",
        )
    for name in candidates:
        if name not in groups and name not in people:
            gen.inexact(
                "roles holding privileges no grant can say: plan revokes them",
                f"{name} holds privileges no grant can say: plan revokes them",
            )
    for name in candidates:
        owned = [o for o in live.objects if o.owner == name and not o.extension]
        if owned:
            gen.hazard(
                "roles owning objects today: ownership moves to the owner, and they keep only what their grants give",
                f"{name} owns {len(owned)} object(s): after the move it holds only what the policy grants it",
            )


def _own_connect_only(live: Live, name: str, groups: set[str]) -> bool:
    """A member that inherits none of its groups and holds only CONNECT on the database: it needs
    that CONNECT to log in and SET ROLE, and the policy gives it."""
    memberships = [m for m in live.member_of(name) if m.role in groups]
    if not memberships or any(m.inherit for m in memberships):
        return False
    if live.db_acl.get(name, frozenset()) != frozenset({"CONNECT"}):
        return False
    elsewhere = any(name in s.acl for s in live.schemas) or any(
        name in o.acl or any(name in acl for _, acl in o.columns) for o in live.objects
    )
    return not elsewhere and not any(name in d.acl for d in live.defaults)


def _owner(live: Live, owner: str, deploys: list[str], deploy_login: str | None) -> dict[str, Any]:
    """The [owner] table: as the role is, or (a role the policy creates) NOLOGIN with
    `deploy_login`, else a login with its password in the environment."""
    role = live.roles.get(owner)
    if role is None:
        out: dict[str, Any] = {"name": owner, "login": deploy_login is None, "createdb": False, "createrole": False}
        if deploy_login is None:
            out["password_env"] = password_env_for(owner)
        if deploys:
            out["deploy_logins"] = deploys
        return out
    login = role.login and deploy_login is None
    out = {"name": owner, "login": login, "createdb": role.createdb, "createrole": role.createrole}
    if login:
        out["password_env"] = password_env_for(owner)
    if deploys:
        out["deploy_logins"] = deploys
    return out | role_attributes(live, role)


def _people(live: Live, groups: set[str], apart: set[str]) -> set[str]:
    """LOGIN roles that hold nothing themselves (CONNECT aside) and are members of a group."""
    out = set()
    for name, role in live.roles.items():
        if name in apart or not role.login or name in groups:
            continue
        if any(m.role in groups for m in live.member_of(name)):
            out.add(name)
    return out


def _members_elsewhere(live: Live, people: set[str], groups: set[str], owner_side: set[str]) -> set[str]:
    """People that are also members of roles the policy leaves alone (not groups, not the owner's side,
    not superusers or predefined roles): written as roles with `also_member_of`, whose other
    memberships plan keeps (a person loses every membership but its groups)."""
    out = set()
    for name in people:
        for m in live.member_of(name):
            role = live.roles.get(m.role)
            elsewhere = m.role not in groups and m.role not in owner_side and not m.role.startswith("pg_")
            if elsewhere and role is not None and not role.superuser:
                out.add(name)
    return out


def _group_or_app(live: Live, name: str, groups: set[str], gen: Generated) -> dict[str, Any]:
    role = live.roles[name]
    out: dict[str, Any] = {"name": name, "login": role.login}
    if role.login:
        out["password_env"] = password_env_for(name)
    also = [m for m in live.member_of(name) if m.role in groups and m.role != name]
    if also:  # a role with grants of its own, also a member of other such roles
        out["also_member_of"] = _memberships(also)
    if not role.login and any(m.role == name for m in live.memberships):
        gen.comments[name] = ["A group: holds the grants; its members get them by membership."]
    return out | role_attributes(live, role)


def _memberships(rows: list[LiveMembership]) -> list[Any]:
    """member_of entries: names, or tables where an option is not the default (ADMIN written only
    where held: the member may make other roles members; check reports it)."""
    if all(m.inherit and m.set and not m.admin for m in rows):
        return [m.role for m in rows]
    return [{"role": m.role, "inherit": m.inherit, "set": m.set, **({"admin": True} if m.admin else {})} for m in rows]


def _person(live: Live, name: str, groups: set[str]) -> dict[str, Any]:
    role = live.roles[name]
    member_of = _memberships([m for m in live.member_of(name) if m.role in groups])
    out: dict[str, Any] = {"name": name, "login": True, "password_env": password_env_for(name), "member_of": member_of}
    return out | role_attributes(live, role)


def _other_grantors(live: Live, owner: str, groups: set[str]) -> list[str]:
    """Grants on the owner's objects that another role made: plan makes them again as the owner."""
    pairs = sorted(
        {(grantee, grantor) for o in live.objects if o.owner == owner for grantee, grantor in o.grantors}
        - {(g, owner) for g in groups},
        key=str,
    )
    return [
        f"privileges of {grantee} were granted by {grantor}, not the owner {owner}: plan grants them again as {owner}"
        for grantee, grantor in pairs
        if grantee in groups and grantor != owner
    ]


def _hazards(live: Live, owner: str, owner_side: set[str], groups: set[str], gen: Generated) -> None:
    """What the split forbids, said once each; plan and check act on every one."""
    _object_hazards(live, owner, groups, gen)
    _schema_hazards(live, owner, groups, gen)
    _database_hazards(live, owner, groups, gen)
    _membership_hazards(live, owner, owner_side, groups, gen)


def _object_hazards(live: Live, owner: str, groups: set[str], gen: Generated) -> None:
    h = gen.hazard
    for o in live.objects:
        if o.extension:
            continue
        if o.owner != owner and not (o.kind == "sequence" and o.table is not None):
            h(
                f"objects owned by {o.owner}, not {owner}: plan moves them to {owner} (ALTER ... OWNER TO); "
                "what others were granted stays",
                f"{o.kind} {o.qualified} is owned by {'access role ' if o.owner in groups else ''}{o.owner}, "
                f"not {owner}: plan moves it to {owner} and grants on it what the policy says",
            )
        for grantee, privilege in sorted(o.grantable, key=str):
            if grantee != o.owner:
                _grant_option(gen, grantee, privilege, f"{o.kind} {o.qualified}", groups)


def _schema_hazards(live: Live, owner: str, groups: set[str], gen: Generated) -> None:
    h = gen.hazard
    for s in live.schemas:
        for grantee, privilege in sorted(s.grantable, key=str):
            if grantee != s.owner and privilege != "CREATE":  # CREATE goes (below)
                _grant_option(gen, grantee, privilege, f"schema {s.name}", groups)
        if s.owner not in (owner, "pg_database_owner"):
            h(
                f"managed schemas owned by another role than {owner}: plan moves them",
                f"schema {s.name} is owned by {s.owner}, not {owner}: plan moves it",
            )
        for grantee, privs in s.acl.items():
            if "CREATE" in privs and grantee not in (owner, s.owner):
                h(
                    "CREATE on a managed schema held by others than the owner: plan revokes it",
                    f"{grantee or 'PUBLIC'} may CREATE in schema {s.name}: only the owner may; plan revokes it",
                )
    _unmanaged_schema_hazards(live, groups, gen)


def _unmanaged_schema_hazards(live: Live, groups: set[str], gen: Generated) -> None:
    """The schemas the policy does not manage: left alone, but for what access roles may create there."""
    h = gen.hazard
    for s in live.others:
        if s.extension:
            continue
        if s.name == "public" and "CREATE" in s.acl.get(None, frozenset()):
            h(
                "PUBLIC may CREATE in schema public, which is not managed (the PostgreSQL 14 default): kept "
                "(revoke_public_create = false); check reports it",
                "PUBLIC may CREATE in schema public (the PostgreSQL 14 default): kept (revoke_public_create = false)",
            )
        for grantee in sorted(g for g, p in s.acl.items() if g in groups and "CREATE" in p):
            h(
                "access roles that may CREATE outside the managed schemas: plan revokes it",
                f"access role {grantee} may CREATE in schema {s.name}: plan revokes it",
            )


def _database_hazards(live: Live, owner: str, groups: set[str], gen: Generated) -> None:
    h = gen.hazard
    if live.db_owner != owner:
        h(
            f"the database is owned by another role than {owner}: plan moves it",
            f"database {live.database} is owned by {live.db_owner}, not {owner}: plan moves it",
        )
    for grantee, privilege in sorted(live.db_grantable, key=str):
        if grantee != live.db_owner and privilege != "CREATE" and not _is_superuser(live, grantee):
            _grant_option(gen, grantee, privilege, f"database {live.database}", groups)
    for grantee, privs in live.db_acl.items():
        if "CREATE" in privs and grantee not in (owner, live.db_owner) and not _is_superuser(live, grantee):
            h(
                "CREATE on the database held by others than the owner: plan revokes it",
                f"{grantee or 'PUBLIC'} may CREATE schemas in database {live.database}: plan revokes it",
            )


def _grant_option(gen: Generated, grantee: str | None, privilege: str, what: str, groups: set[str]) -> None:
    """A grant option: kept by the role's grant (grant_option) when the policy writes the role's grants."""
    if grantee in groups:
        gen.hazard(
            "grant options held by roles other than the owner: the policy keeps them (grant_option); "
            "check reports them",
            f"{grantee} may grant {privilege} on {what} to others: kept (grant_option)",
        )
    else:
        gen.hazard(
            "grant options held by roles the policy gives no grants: plan revokes the option, keeps the privilege",
            f"{grantee or 'PUBLIC'} may grant {privilege} on {what} to others: plan revokes that",
        )


def _is_superuser(live: Live, name: str | None) -> bool:
    return name is not None and live.roles.get(name, LiveRole(name)).superuser


def _membership_hazards(live: Live, owner: str, owner_side: set[str], groups: set[str], gen: Generated) -> None:
    h = gen.hazard
    for m in live.memberships:
        if m.role == owner and m.member not in owner_side and not _is_superuser(live, m.member):
            h(
                f"members of the owner {owner} (they act as it): revoke, or make them deploy logins",
                f"{m.member} is a member of the owner {owner}: it acts as the owner without SET ROLE"
                ": revoke the membership, or make it a deploy login (docs/deploy-logins.md)",
            )
        if m.member in groups and m.role == owner:
            h(
                "access roles that are members of other access roles: plan revokes the membership",
                f"access role {m.member} is a member of {m.role}: plan revokes that membership",
            )
    for name in sorted(groups):
        role = live.roles[name]
        bad = [a.upper() for a in _FORBIDDEN_ATTRIBUTES if getattr(role, a)]
        if bad:
            h(
                "access roles with attributes the split forbids: plan takes them away",
                f"access role {name} has {', '.join(bad)}: plan takes it away",
            )
        if "role" in {k for k in (e.partition("=")[0] for e in role.database_settings)}:
            h(
                "access roles that switch role in the database (SET role): not written",
                f"access role {name} switches role in {live.database} (SET role): not written",
            )


def to_policy(gen: Generated) -> Policy:
    """The engine's policy for the generated file (validated like a file)."""
    from pgwarden.policy.load import format_errors, tuples
    from pgwarden.policy.v2 import PolicyFileV2

    try:
        return PolicyFileV2.model_validate(tuples(gen.data)).resolve()[0]
    except ValidationError as exc:  # a name the policy format refuses, say
        raise PolicyError("the database cannot be described as a policy: " + format_errors(exc, None, None)) from None
