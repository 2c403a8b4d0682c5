"""Policies `init` writes from arguments with deploy logins, groups and people, and `init --append`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pgwarden.errors import PolicyError
from pgwarden.policy.load import format_errors, parse_policies, tuples
from pgwarden.policy.model import Policy
from pgwarden.policy.names import password_env_for
from pgwarden.policy.render import _toml_list, _toml_str, _toml_value
from pgwarden.policy.v2 import BUILTIN_PROFILES, PolicyFileV2


@dataclass(frozen=True)
class Team:
    """What `init` was asked for: the database, its schemas, and who gets what there."""

    database: str
    owner: str
    schemas: Sequence[str] = ()
    app: Sequence[str] = ()
    readonly: Sequence[str] = ()
    groups: Sequence[tuple[str, str]] = ()  # (group, profile)
    members: Sequence[tuple[str, str]] = ()  # (person, group)
    deploy_login: str | None = None

    def roles(self) -> list[dict[str, Any]]:
        """The [[roles]] entries: logins with their password variable, NOLOGIN groups, people."""
        out: list[dict[str, Any]] = [
            {"name": n, "password_env": password_env_for(n)} for n in (*self.app, *self.readonly)
        ]
        out += [{"name": g, "login": False} for g, _ in self.groups]
        people: dict[str, list[str]] = {}
        for person, group in self.members:
            people.setdefault(person, []).append(group)
        out += [{"name": p, "password_env": password_env_for(p), "member_of": gs} for p, gs in people.items()]
        return out

    def database_entry(self) -> dict[str, Any]:
        schemas = list(self.schemas) or ["public"]
        grants = [{"role": n, "profile": "readwrite", "schemas": schemas} for n in self.app]
        grants += [{"role": n, "profile": "readonly", "schemas": schemas} for n in self.readonly]
        grants += [{"role": g, "profile": p, "schemas": schemas} for g, p in self.groups]
        return {"name": self.database, "schemas": schemas, "grants": grants}

    def owner_entry(self) -> dict[str, Any]:
        if self.deploy_login:  # migrations run through the deploy login: the owner itself never logs in
            return {"name": self.owner, "login": False, "deploy_logins": [self.deploy_login]}
        return {"name": self.owner, "password_env": password_env_for(self.owner)}


def parse_pair(value: str, what: str) -> tuple[str, str]:
    """`NAME:OTHER` of --group and --member."""
    name, colon, other = value.partition(":")
    if not colon or not name or not other:
        example = "analysts:readonly" if what == "--group" else "alice:analysts"
        raise PolicyError(
            f"{what} {value!r}: give NAME:{'PROFILE' if what == '--group' else 'GROUP'}", hint=f"{what} {example}"
        )
    if what == "--group" and other not in BUILTIN_PROFILES:
        raise PolicyError(
            f"--group {value!r}: unknown profile {other!r}",
            hint=f"one of {', '.join(BUILTIN_PROFILES)}; define your own under [profiles] in the file afterwards",
        )
    return name, other


def build_team(team: Team) -> Policy:
    """The version 2 policy for `team` (validated like a file)."""
    data = {"version": 2, "owner": team.owner_entry(), "roles": team.roles(), "databases": [team.database_entry()]}
    try:
        return PolicyFileV2.model_validate(tuples(data)).resolve()[0]
    except ValidationError as exc:
        raise PolicyError(format_errors(exc, None, None)) from None


def append_team(text: str, source: str, team: Team) -> tuple[str, Policy, list[str]]:
    """The file `text` with `team`'s database and its new roles added at the end (the rest of the
    file, comments included, as it was), validated as a whole: (the new text, the new database's
    policy, the roles added)."""
    existing = parse_policies(text, source)
    first = existing[0]
    if first.version != 2:
        raise PolicyError(
            f"{source} is a version 1 file: --append adds a [[databases]] entry, which version 2 has",
            hint=f"pgwarden policy upgrade {source}, then init --append again",
        )
    if team.owner != first.owner.name:
        raise PolicyError(
            f"{source}'s owner is {first.owner.name}, not {team.owner}: one owner per file",
            hint="leave out --owner with --append (the file's owner is used)",
        )
    if team.deploy_login and team.deploy_login not in first.owner.deploy_logins:
        raise PolicyError(
            "--deploy-login with --append: deploy logins belong to the file's [owner]",
            hint=f"add {team.deploy_login!r} to owner.deploy_logins in {source} by hand",
        )
    if any(p.database.name == team.database for p in existing):
        raise PolicyError(
            f"database {team.database} is already in {source}",
            hint="edit its grants in the file, or --append another --database",
        )
    declared = set(first.role_names)
    lines = ["", f"# added by pgwarden init --append --database {team.database}"]
    added = [role for role in team.roles() if role["name"] not in declared]
    for role in added:
        lines += ["[[roles]]", *(f"{k} = {_toml_value(v)}" for k, v in role.items()), ""]
    entry = team.database_entry()
    lines += ["[[databases]]", f"name = {_toml_str(entry['name'])}", f"schemas = {_toml_list(entry['schemas'])}"]
    lines += ["grants = [", *(f"  {_toml_value(g)}," for g in entry["grants"]), "]", ""]
    combined = text.rstrip("\n") + "\n" + "\n".join(lines)
    policies = parse_policies(combined, source)  # the whole file must still be valid
    mine = next(p for p in policies if p.database.name == team.database)
    return combined, mine, [role["name"] for role in added]
