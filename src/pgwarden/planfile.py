"""Reviewed plans: `plan --out` writes a plan with what it was computed from; `apply --plan` runs exactly it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgwarden import __version__
from pgwarden.errors import PgwardenError
from pgwarden.fingerprint import Fingerprint, describe_parts, fingerprint
from pgwarden.hooks import ApplyHooks
from pgwarden.plan import Phase, Plan, Step

if TYPE_CHECKING:
    import psycopg

    from pgwarden.apply import ApplyResult
    from pgwarden.policy import Policy
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot

#: The plan file's format; bumped only on incompatible changes (schemas/planfile.json).
FORMAT = 1

REPLAN_HINT = "run `pgwarden plan --out FILE` again, have the new plan reviewed, and apply that one"


class PlanChanged(PgwardenError):
    """The reviewed plan no longer holds: server, database, policy or catalog state differ."""


def policy_digest(policies: Sequence[Policy]) -> str:
    """The policy as pgwarden reads it (every database of the file), not its text: comments and
    layout do not count, a changed grant does."""
    data = [p.model_dump(mode="json") for p in policies]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def system_identifier(conn: psycopg.Connection[Any]) -> str:
    """The server's identity (initdb's, kept by replicas and restores of it): a plan for one
    server never runs on another."""
    import psycopg

    try:
        row = conn.execute("SELECT system_identifier::text FROM pg_catalog.pg_control_system()").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback() if not conn.autocommit else None
        raise PgwardenError(
            "the admin may not read the server's identity (pg_control_system())",
            hint="grant it pg_monitor, or EXECUTE ON FUNCTION pg_control_system() (read-only)",
        ) from None
    return str(row[0]) if row else ""


def step_signature(step: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two steps the same step: phase, action, object, role and the SQL as shown
    (passwords are psql variables there, so a fresh SCRAM salt is the same step)."""
    return (str(step["phase"]), str(step["action"]), str(step["object"]), str(step["role"]), str(step["sql"]))


def _signatures(steps: Sequence[Step] | Sequence[Mapping[str, Any]], phases: set[str]) -> list[tuple[str, ...]]:
    dicts = [s.to_dict() if isinstance(s, Step) else s for s in steps]
    return [step_signature(d) for d in dicts if d["phase"] in phases]


@dataclass(frozen=True)
class PlannedDatabase:
    """One database's reviewed plan: its steps and the state they were computed from."""

    database: str
    fingerprint: Fingerprint
    plan: dict[str, Any]  # Plan.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "fingerprint": self.fingerprint.to_dict(), "plan": self.plan}


@dataclass(frozen=True)
class PlanFile:
    system_identifier: str
    server_version: str
    policy_digest: str
    databases: tuple[PlannedDatabase, ...]
    created_at: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": FORMAT,
            "kind": "pgwarden-plan",
            "pgwarden_version": __version__,
            "created_at": self.created_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "server": {"system_identifier": self.system_identifier, "version": self.server_version},
            "policy_digest": self.policy_digest,
            "databases": [d.to_dict() for d in self.databases],
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def entry(self, database: str) -> PlannedDatabase:
        for d in self.databases:
            if d.database == database:
                return d
        raise PlanChanged(
            f"{self.source or 'the plan file'} has no plan for database {database}",
            hint=f"apply it without -d, or with -d naming one of {', '.join(d.database for d in self.databases)}",
        )


def load(path: str | Path) -> PlanFile:
    """Read a plan file; a file that is not one is an error (exit 2), never a traceback."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("kind") != "pgwarden-plan":
            raise ValueError('it is not a pgwarden plan file (no "kind": "pgwarden-plan")')
        if data.get("schema_version") != FORMAT:
            raise ValueError(f"its format {data.get('schema_version')!r} is not {FORMAT}")
        databases = tuple(
            PlannedDatabase(d["database"], Fingerprint(dict(d["fingerprint"]["parts"])), dict(d["plan"]))
            for d in data["databases"]
        )
        return PlanFile(
            str(data["server"]["system_identifier"]),
            str(data["server"]["version"]),
            str(data["policy_digest"]),
            databases,
            str(data.get("created_at", "")),
            where,
        )
    except OSError as exc:
        raise PgwardenError(
            f"cannot read plan file {where}: {exc.strerror}", hint="give the file `plan --out` wrote"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = exc if isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError) else "malformed"
        raise PgwardenError(
            f"{where} is not a usable plan file: {detail}",
            hint="write it with `pgwarden plan --out FILE` (docs/change-control.md)",
        ) from None


def check_origin(plan_file: PlanFile, policies: Sequence[Policy], identifier: str) -> None:
    """Refuse a plan made on another server or from another policy (before anything is read or locked)."""
    if identifier != plan_file.system_identifier:
        raise PlanChanged(
            f"{plan_file.source} was planned on another server (system identifier "
            f"{plan_file.system_identifier}, this one is {identifier}); nothing was applied",
            hint=REPLAN_HINT,
        )
    digest = policy_digest(policies)
    if digest != plan_file.policy_digest:
        raise PlanChanged(
            f"the policy changed since {plan_file.source} was planned (digest {plan_file.policy_digest[:19]}..., "
            f"now {digest[:19]}...); nothing was applied",
            hint=REPLAN_HINT,
        )


@dataclass
class PlanGuard(ApplyHooks):
    """apply's hooks for a reviewed plan: under the cluster lock, the state and the steps must be
    the file's; in the database part's transaction, under its lock, once more (what changed in
    between by hand is caught there, and rolled back). `shared_roles`: an earlier database of the
    same run applied the cluster's role steps already (so this one's role state moved, by us)."""

    entry: PlannedDatabase
    source: str
    secrets: Mapping[str, str] | None = None
    shared_roles: bool = False
    ran_roles: bool = field(default=False, init=False)
    _roles_moved: bool = field(default=False, init=False)

    def before(self, session: Session, first: Plan) -> None:
        from pgwarden.retirement import with_retirements

        snap = session.snapshot(secrets=self.secrets)
        now = with_retirements(session, snap, session.plan(snap, self.secrets))
        self._roles_moved = self.shared_roles
        self._compare(fingerprint(snap), now.steps, {"roles", "create_database", "database", "retire"}, kept=())
        if [r.to_dict() for r in now.retirements] != list(self.entry.plan.get("retired", [])):
            self._refuse("the retirements it plans differ", ())
        self.ran_roles = bool(first.phase(Phase.ROLES))

    def in_transaction(self, conn: psycopg.Connection[Any], snap: Snapshot, current: Plan, result: ApplyResult) -> None:
        # a database we created a moment ago from template1 has a state of its own: its steps say enough
        created = any(s.phase == Phase.CREATE_DATABASE for s in result.executed)
        now = None if created else fingerprint(snap)
        self._roles_moved = self.ran_roles or self.shared_roles
        self._compare(now, current.steps, {"database"}, kept=result.executed)

    def _compare(
        self, now: Fingerprint | None, steps: Sequence[Step], phases: set[str], *, kept: Sequence[Step]
    ) -> None:
        if now is not None:
            changed = now.changed(self.entry.fingerprint.parts, roles=not self._roles_moved)
            if changed:
                self._refuse(f"the state changed: {describe_parts(changed)}", kept)
        planned = self.entry.plan.get("steps", [])
        if self.shared_roles:  # the cluster's role steps ran with an earlier database: what is left of them
            phases = phases - {"roles"}
            extra = set(_signatures(steps, {"roles"})) - set(_signatures(planned, {"roles"}))
            if extra:
                self._refuse("it would run role steps the file does not have", kept)
        if _signatures(steps, phases) != _signatures(planned, phases):
            self._refuse("its steps differ from the file's", kept)

    def _refuse(self, why: str, kept: Sequence[Step]) -> None:
        from pgwarden.apply import _describe

        done = f"; {_describe(kept)} had been committed before and stays" if kept else ""
        raise PlanChanged(
            f"database {self.entry.database} no longer matches {self.source}: {why}; "
            f"nothing of the database part was applied{done}",
            hint=REPLAN_HINT,
        )


class PlanRecorder:
    """Collects each database's plan as `plan` computes it (from several threads), then writes the file."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        import threading

        self.digest = policy_digest(policies)
        self.identity: tuple[str, str] | None = None
        self.planned: dict[str, PlannedDatabase] = {}
        self._lock = threading.Lock()

    @staticmethod
    def entry(session: Session, snap: Snapshot, the_plan: Plan) -> tuple[tuple[str, str], PlannedDatabase]:
        """What the file records of one database, made where its plan is (a fleet's worker process):
        small and picklable, so that the caller can `record` it."""
        identity = (system_identifier(session.admin), snap.server.version)
        return identity, PlannedDatabase(the_plan.database, fingerprint(snap), the_plan.to_dict())

    def record(self, made: tuple[tuple[str, str], PlannedDatabase]) -> None:
        identity, entry = made
        with self._lock:
            self.identity = identity
            self.planned[entry.database] = entry

    def add(self, session: Session, snap: Snapshot, the_plan: Plan) -> None:
        self.record(self.entry(session, snap, the_plan))

    def write(self, path: str | Path) -> str:
        """Write the file; the sentence that says so."""
        identifier, version = self.identity or ("", "")
        databases = tuple(self.planned[name] for name in sorted(self.planned))
        PlanFile(identifier, version, self.digest, databases).write(path)
        return (
            f"plan of {len(databases)} database(s) written to {path}: "
            f"after review, `pgwarden apply --plan {path}` runs exactly it"
        )
