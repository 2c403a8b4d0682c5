"""Database names that are glob patterns (`tenant_*`): the syntax, and matching against the cluster's names."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pgwarden.policy.model import DatabaseSpec, LocatedError, Policy, RoleAttributes
from pgwarden.policy.names import check_identifier

#: A name with one of these is a pattern (fnmatch's syntax, matched case-sensitively as PostgreSQL's
#: names are): `*` any run of characters, `?` one character, `[abc]` / `[a-z]` / `[!abc]` one of a set.
#: A character that is itself one of these is written in brackets: `[*]`, `[?]`, `[[]`.
GLOB_CHARACTERS = frozenset("*?[")

#: Never covered by a pattern, whatever the catalog says of them: CREATE DATABASE copies them.
TEMPLATES = frozenset({"template0", "template1"})

R = TypeVar("R", bound=RoleAttributes)


def is_pattern(name: str) -> bool:
    """A name with `*`, `?` or `[` is a pattern; any other is one database's name."""
    return any(ch in GLOB_CHARACTERS for ch in name)


def check_pattern(pattern: str) -> str:
    """Refuse a pattern that cannot mean what it looks like: an unclosed or empty `[...]` (fnmatch
    would take `[` literally and match almost nothing), or one over 63 bytes."""
    check_identifier(pattern, "database pattern")
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            end = _set_end(pattern, i)
            if end < 0:
                raise ValueError(f"{pattern!r}: '[' opens a set that is not closed with ']' (a literal '[' is '[[]')")
            i = end
        i += 1
    return pattern


def check_entries(databases: Sequence[DatabaseSpec]) -> None:
    """Each [[databases]] name that is a pattern is a well-formed one (the file's check, with where)."""
    for index, db in enumerate(databases):
        if is_pattern(db.name):
            try:
                check_pattern(db.name)
            except ValueError as exc:
                raise LocatedError(str(exc), "databases", index, "name") from None


def _set_end(pattern: str, start: int) -> int:
    """The index of the `]` that closes the set opened at `start` (fnmatch's rules: a `!` and then a
    `]` right after `[` are members), or -1."""
    j = start + 1
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    return pattern.find("]", j)


def matches(name: str, pattern: str) -> bool:
    """Whether database `name` is covered by `pattern` (case-sensitive; templates never are)."""
    return name not in TEMPLATES and fnmatch.fnmatchcase(name, pattern)


@dataclass(frozen=True)
class Entry:
    """A [[databases]] entry of the file and the databases it covers."""

    name: str
    policy: Policy
    covers: tuple[str, ...]


class Overlap(ValueError):
    """A database covered by two entries of the file."""


def expand(policies: Sequence[Policy], existing: Iterable[str]) -> list[Entry]:
    """Each entry of the file with the databases it covers: a plain name itself (whether or not it
    exists: `apply` creates it), a pattern every matching database of `existing` (sorted; never
    created). Raises Overlap for a database covered twice; a pattern that matches nothing covers ()."""
    names = sorted(set(existing) - TEMPLATES)
    entries: list[Entry] = []
    owner: dict[str, str] = {}
    for policy in policies:
        name = policy.database.name
        covers = tuple(n for n in names if matches(n, name)) if is_pattern(name) else (name,)
        for db in covers:
            if db in owner:
                raise Overlap(f"database {db!r} is covered by two [[databases]] entries: {owner[db]!r} and {name!r}")
            owner[db] = name
        entries.append(Entry(name, policy, covers))
    return entries


def unmatched(entries: Iterable[Entry]) -> list[str]:
    """The pattern entries that cover no database."""
    return [e.name for e in entries if is_pattern(e.name) and not e.covers]


def concrete(entry: Entry, database: str) -> Policy:
    """The entry's policy for one database it covers: that name, and `database_settings` given under
    the entry's name (the pattern) given under the database's."""
    policy = entry.policy
    if database == entry.name:
        return policy
    update: dict[str, object] = {"database": policy.database.model_copy(update={"name": database})}
    update["owner"] = _settings_for(policy.owner, entry.name, database)
    update["access"] = tuple(_settings_for(a, entry.name, database) for a in policy.access)
    update["members"] = tuple(_settings_for(m, entry.name, database) for m in policy.members)
    return policy.model_copy(update=update)


def _settings_for(spec: R, pattern: str, database: str) -> R:
    if not spec.database_settings or pattern not in spec.database_settings:
        return spec
    settings = {k: v for k, v in spec.database_settings.items() if k != pattern}
    settings[database] = spec.database_settings[pattern]
    return spec.model_copy(update={"database_settings": settings})
