"""`review`: evidence for an access review. Per database, every table, column, sequence and routine
of the managed schemas (the labelled columns first), each role that can read or write it and every
path; and what appeared and disappeared since an earlier review."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgwarden.access.facts import read_facts
from pgwarden.access.labels import labels_of
from pgwarden.access.model import Model
from pgwarden.access.paths import Access
from pgwarden.command_rows import ReviewServerRow
from pgwarden.errors import PgwardenError
from pgwarden.fetch import fetch
from pgwarden.findings import display_name

if TYPE_CHECKING:
    from pgwarden.policy import Policy
    from pgwarden.session import Session

Key = tuple[str, str, str, str, tuple[tuple[str, str, str], ...]]


@dataclass(frozen=True)
class Changes:
    """What access appeared and disappeared since the review of `since` (its time)."""

    since: str
    appeared: tuple[Access, ...]
    disappeared: tuple[Access, ...]


@dataclass(frozen=True)
class Review:
    database: str
    server_version: str
    system_identifier: str | None
    policy_digest: str
    generated_at: str
    labels: Mapping[str, tuple[str, ...]]
    #: (object, column, labels) of every labelled column, in the order of the review
    labelled: tuple[tuple[str, str, tuple[str, ...]], ...]
    accesses: tuple[Access, ...]
    #: role -> its attributes that bypass checks: superuser, bypassrls, login
    roles: Mapping[str, dict[str, bool]] = field(default_factory=dict)
    changes: Changes | None = None

    def labels_for(self, a: Access) -> tuple[str, ...]:
        """The labels of the column an access is about (a whole-table access: of all its columns)."""
        return tuple(
            dict.fromkeys(
                label
                for obj, col, labels in self.labelled
                if obj == a.object and (a.column is None or a.column == col)
                for label in labels
            )
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "database": self.database,
            "server": {"version": self.server_version, "system_identifier": self.system_identifier},
            "policy_digest": self.policy_digest,
            "generated_at": self.generated_at,
            "labels": {k: list(v) for k, v in self.labels.items()},
            "labelled": [{"object": o, "column": c, "labels": list(ls)} for o, c, ls in self.labelled],
            "roles": [{"role": r, **attrs} for r, attrs in self.roles.items()],
            "access": [{**a.to_json(), "labels": list(self.labels_for(a))} for a in self.accesses],
            "summary": {
                "paths": len(self.accesses),
                "objects": len({a.object for a in self.accesses}),
                "roles": len({a.role for a in self.accesses}),
                "labelled_columns": len(self.labelled),
            },
        }
        if self.changes is not None:
            out["changes"] = {
                "since": self.changes.since,
                "appeared": [a.to_json() for a in self.changes.appeared],
                "disappeared": [a.to_json() for a in self.changes.disappeared],
            }
        return out


def policy_digest(policy: Policy) -> str:
    """sha256 of the policy as pgwarden read it (the same file gives the same digest)."""
    text = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _ordered(accesses: Sequence[Access], labelled: set[tuple[str, str]]) -> tuple[Access, ...]:
    """Accesses to labelled columns first (a whole-table access counts for its labelled columns)."""
    tables = {obj for obj, _ in labelled}

    def first(a: Access) -> tuple[bool, tuple[Any, ...]]:
        hit = (a.object, a.column or "") in labelled or (a.column is None and a.object in tables)
        return (not hit, a.key())

    return tuple(sorted(accesses, key=first))


def build_review(session: Session, now: datetime | None = None) -> Review:
    """Read the facts of the managed schemas (one statement besides the snapshot) and compute every path."""
    policy = session.policy
    if not session.target_exists():
        raise PgwardenError(
            f"database {policy.database.name} does not exist", hint="run pgwarden apply first, or pick it with -d"
        )
    with session.connect_target() as conn:
        snap = session.snapshot(conn)
        facts = read_facts(conn, policy.database.schemas)
        server = fetch(conn, "review_server", ReviewServerRow)[0]
    model = Model(snap.roles, snap.memberships, facts, snap.caps.membership_options)
    labelled = tuple(
        (rel.ident, col.name, found)
        for rel in sorted(facts.relations.values(), key=lambda r: (r.schema, r.name))
        if rel.schema in policy.database.schemas
        for col in rel.columns
        if (found := labels_of(policy.labels, rel.schema, rel.name, col.name))
    )
    accesses = _ordered(model.accesses(), {(o, c) for o, c, _ in labelled})
    used = {a.role for a in accesses}
    roles = {
        r.name: {"superuser": r.superuser, "bypassrls": r.bypassrls, "login": r.login}
        for r in sorted(snap.roles.values(), key=lambda r: r.name)
        if r.name in used
    }
    return Review(
        database=policy.database.name,
        server_version=server.version,
        system_identifier=server.system_identifier,
        policy_digest=policy_digest(policy),
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        labels=dict(policy.labels),
        labelled=labelled,
        accesses=accesses,
        roles=roles,
    )


def earlier_accesses(document: Mapping[str, Any], database: str) -> tuple[str, list[Access]] | None:
    """(its time, its accesses) of `database` in an earlier `review --format json` (one database's
    document or several databases' envelope); None when it does not review that database."""
    entries = document.get("databases") if "databases" in document else [document]
    for entry in entries or ():
        if isinstance(entry, Mapping) and entry.get("database") == database and "access" in entry:
            when = str(entry.get("generated_at") or document.get("generated_at") or "")
            return when, [Access.from_json(a) for a in entry["access"]]
    return None


def since(review: Review, document: Mapping[str, Any]) -> Review:
    """The review with what appeared and disappeared since `document` (a set difference of paths)."""
    from dataclasses import replace

    earlier = earlier_accesses(document, review.database)
    if earlier is None:
        raise PgwardenError(
            f"the earlier review has no database {review.database}",
            hint="give --since a `pgwarden review --format json` file of the same database",
        )
    when, before = earlier
    old: dict[Key, Access] = {a.key(): a for a in before}
    new: dict[Key, Access] = {a.key(): a for a in review.accesses}
    appeared = tuple(new[k] for k in sorted(new.keys() - old.keys()))
    disappeared = tuple(old[k] for k in sorted(old.keys() - new.keys()))
    return replace(review, changes=Changes(when, appeared, disappeared))


def column_ident(obj: str, column: str) -> str:
    return f"{obj}.{display_name(column)}"


def labelled_summary(conn: Any, policy: Policy, snap: Any) -> tuple[dict[str, Any], ...]:
    """For `report`: each labelled column and which roles can read or write it (by how many paths).
    Two statements, only when the policy labels columns."""
    from pgwarden.access.labels import read_columns

    if not policy.labels:
        return ()
    columns = read_columns(conn, policy)
    if not columns:
        return ()
    facts = read_facts(conn, policy.database.schemas, sorted({(s, t) for s, t, _ in columns}))
    accesses = Model(snap.roles, snap.memberships, facts, snap.caps.membership_options).accesses()
    out = []
    for schema, table, column in columns:
        obj = display_name(schema, table)
        who: dict[str, dict[str, int]] = {}
        for a in accesses:
            if a.object == obj and a.column in (None, column):
                held = who.setdefault(a.role, {})
                held[a.privilege] = held.get(a.privilege, 0) + 1
        out.append(
            {
                "column": column_ident(obj, column),
                "labels": list(labels_of(policy.labels, schema, table, column)),
                "roles": [
                    {"role": r, "privileges": sorted(p), "paths": sum(p.values())} for r, p in sorted(who.items())
                ],
            }
        )
    return tuple(out)


def sections(review: Review) -> Iterator[tuple[str, str, list[Access]]]:
    """(kind of section, title, accesses): each labelled column with every path that reaches it (the
    table's own included), then each object with its paths."""
    for obj, column, labels in review.labelled:
        paths = [a for a in review.accesses if a.object == obj and a.column in (None, column)]
        yield "labelled", f"{column_ident(obj, column)} ({', '.join(labels)})", paths
    by_object: dict[str, list[Access]] = {}
    for a in sorted(review.accesses, key=Access.key):
        by_object.setdefault(a.object, []).append(a)
    for obj, paths in by_object.items():
        yield "object", f"{obj} ({paths[0].kind})", paths
