"""Several databases: a v2 file's [[databases]] or (v1) the cluster's, selected by -d; a job each with --jobs."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import TypeVar

from pgwarden.connect import connect, conninfo_for
from pgwarden.errors import PolicyError
from pgwarden.fetch import query
from pgwarden.fleet import OnDone, Outcome, run_each
from pgwarden.policy import Policy, check_identifier
from pgwarden.policy.patterns import Entry, Overlap, concrete, expand, is_pattern, matches, unmatched

# the runner lives in pgwarden.fleet; these names stay importable from here (renderers, commands)
__all__ = ["Outcome", "run_each", "run_over", "select_in_file"]

T = TypeVar("T")


def for_database(policy: Policy, name: str) -> Policy:
    """The same policy, for another database of the cluster."""
    check_identifier(name, "database name")
    return policy.model_copy(update={"database": policy.database.model_copy(update={"name": name})})


def cluster_databases(dsn: str | None) -> list[str]:
    """The databases a pattern can cover: connectable and not a template (queries/cluster_databases.sql)."""
    with connect(conninfo_for(dsn), what="the admin connection") as conn:
        return [row[0] for row in conn.execute(query("cluster_databases").encode()).fetchall()]


def resolve_databases(dsn: str | None, selectors: Sequence[str]) -> list[str]:
    """Database names for --database values: plain names as given, glob patterns (`tenant_*`)
    matched against the cluster's connectable, non-template databases. Sorted, no duplicates."""
    names: list[str] = []
    patterns: list[str] = []
    for sel in selectors:
        if is_pattern(sel):
            patterns.append(sel)
        else:
            try:
                check_identifier(sel, "database name")
            except ValueError as exc:
                raise PolicyError(
                    f"--database: {exc}", hint="give a database name, or a glob pattern such as 'tenant_*'"
                ) from None
            names.append(sel)
    if patterns:
        existing = cluster_databases(dsn)
        for pattern in patterns:
            matched = [d for d in existing if fnmatch.fnmatchcase(d, pattern)]
            if not matched:
                raise PolicyError(
                    f"--database {pattern!r} matches no database of the cluster",
                    hint="`psql -l` lists them (templates and databases that refuse connections do not count); "
                    "quote the pattern so that the shell does not expand it",
                )
            names.extend(matched)
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return sorted(seen)


def policies_for(policy: Policy, dsn: str | None, selectors: Sequence[str]) -> list[Policy]:
    """One policy per database selected by --database (the policy's own database when none)."""
    if not selectors:
        return [policy]
    return [for_database(policy, name) for name in resolve_databases(dsn, selectors)]


def select(policy: Policy, dsn: str | None, selectors: Sequence[str]) -> dict[str, Policy]:
    """database name -> the policy for it, from --database (the policy's own database when none)."""
    return {p.database.name: p for p in policies_for(policy, dsn, selectors)}


def select_in_file(
    policies: Sequence[Policy], dsn: str | None, selectors: Sequence[str], *, source: str = "the policy file"
) -> dict[str, Policy]:
    """database name -> its policy, in the file's order. A version 2 file: its [[databases]], every
    one without --database, else those named or matched by a glob (a name the file lacks is an
    error: the file says nothing about other databases); an entry whose name is a pattern stands for
    every matching database of the cluster (read here, where a connection exists). A version 1 file:
    as `select` (the one policy applied to other databases of the cluster)."""
    if policies[0].version != 2:
        return select(policies[0], dsn, selectors)
    entries = _entries(policies, dsn, source)
    by_name = {db: concrete(e, db) for e in entries for db in e.covers}
    if not selectors:
        empty = unmatched(entries)
        if empty:
            raise _unmatched_error(empty, source)
        return by_name
    listed = _listed(entries)
    chosen: set[str] = set()
    for sel in selectors:
        if is_pattern(sel):
            matched = [name for name in by_name if fnmatch.fnmatchcase(name, sel)]
            if not matched:
                raise PolicyError(
                    f"--database {sel!r} matches none of the databases of {source} ({listed})",
                    hint="a version 2 file works on the databases it lists ([[databases]]) and those its "
                    "patterns match in the cluster; quote the pattern so that the shell does not expand it",
                )
        elif sel in by_name:
            matched = [sel]
        else:
            raise PolicyError(
                f"--database {sel!r} is not a database of {source} (it lists {listed})",
                hint=f"give one of {listed}, or add a [[databases]] table named {sel!r} to the file",
            )
        chosen.update(matched)
    return {name: policy for name, policy in by_name.items() if name in chosen}


def _entries(policies: Sequence[Policy], dsn: str | None, source: str) -> list[Entry]:
    """The file's entries with the databases each covers: the cluster is read only when a name is a pattern."""
    patterns = [p.database.name for p in policies if is_pattern(p.database.name)]
    try:
        return expand(policies, cluster_databases(dsn) if patterns else ())
    except Overlap as exc:
        raise PolicyError(
            f"{exc} of {source}",
            hint="each database is covered by one entry: narrow a pattern (e.g. 'tenant_[!0]*') or drop the "
            "plain entry the pattern already covers",
        ) from None


def _listed(entries: Sequence[Entry]) -> str:
    """The file's databases for a message: plain names, and each pattern with how many it matches."""
    return ", ".join(e.name if not is_pattern(e.name) else f"{e.name} ({len(e.covers)} matching)" for e in entries)


def _unmatched_error(names: Sequence[str], source: str) -> PolicyError:
    quoted = ", ".join(repr(n) for n in names)
    return PolicyError(
        f"[[databases]] {quoted} of {source} matches no database of the cluster (a pattern never creates one)",
        hint="create the databases first (a pattern covers existing ones: connectable, not templates; "
        "`psql -l` lists them), or work on the others with -d NAME",
    )


def run_over(
    targets: dict[str, Policy],
    job: Callable[[Policy], T],
    *,
    jobs: int,
    on_done: OnDone | None = None,
) -> list[Outcome[T]]:
    """`job(policy)` for every selected database, `jobs` at a time over the cores (pgwarden.fleet);
    `on_done` reports progress (the commands pass pgwarden.render.database_progress: the library
    prints nothing)."""
    return run_each(list(targets), lambda name: job(targets[name]), jobs=jobs, on_done=on_done)


def policy_named(policies: Sequence[Policy], name: str | None, *, source: str = "the policy file") -> Policy:
    """The file's policy for the database `name` names (a connection's or the settings' database):
    the [[databases]] entry of that name, else the one whose pattern covers it (for that database);
    without a name, the file's only entry when it names one database. No cluster read: for helpers
    (the pytest plugin, Django) that work on one database they are told of."""
    if name is None:
        if len(policies) == 1 and not is_pattern(policies[0].database.name):
            return policies[0]
        raise PolicyError(
            f"{source} covers several databases ({', '.join(p.database.name for p in policies)}): which one?",
            hint="name the database (the helper's database setting, or PGDATABASE)",
        )
    plain = [p for p in policies if p.database.name == name and not is_pattern(p.database.name)]
    if plain:
        return plain[0]
    entries = [Entry(p.database.name, p, (name,)) for p in policies if is_pattern(p.database.name)]
    covering = [e for e in entries if matches(name, e.name)]
    if len(covering) == 1:
        return concrete(covering[0], name)
    listed = ", ".join(p.database.name for p in policies)
    if covering:
        raise PolicyError(
            f"database {name!r} is covered by two [[databases]] entries of {source}: "
            + " and ".join(repr(e.name) for e in covering),
            hint="each database is covered by one entry: narrow a pattern",
        )
    raise PolicyError(
        f"database {name!r} is not a database of {source} (it lists {listed})",
        hint=f"name one of {listed}, or add a [[databases]] table for {name!r}",
    )
