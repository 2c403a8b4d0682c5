"""Ownership transfer: move the database and every object in it from one role to the owner, in batches."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pgwarden.command_rows import DefaultGrantRow, OwnedObjectRow
from pgwarden.connect import scrub
from pgwarden.errors import ApplyError, PgwardenError
from pgwarden.executor import cluster_lock, run_steps, set_lock_timeout
from pgwarden.fetch import fetch
from pgwarden.kinds import defacl_word
from pgwarden.ledger import record_adoption
from pgwarden.plan import Action, Phase, Step
from pgwarden.snapshot import inspect

if TYPE_CHECKING:
    import psycopg

    from pgwarden.session import Session

#: An operator name is made only of these characters (the server refuses anything else at CREATE),
#: so it can be placed in a statement as is; it cannot be quoted like an identifier.
_OPERATOR_NAME = re.compile(r"^[-+*/<>=~!@#%^&|`?]{1,63}$")

#: Kinds that can never be moved to a non-superuser owner: reported, not attempted.
REPORT_REASONS = {
    "FOREIGN DATA WRAPPER": "the owner of a foreign-data wrapper must be a superuser",
    "EVENT TRIGGER": "the owner of an event trigger must be a superuser",
    "SUBSCRIPTION": "a subscription's owner needs superuser or replication privileges; move it by hand if wanted",
    "EXTENSION": "PostgreSQL has no ALTER EXTENSION ... OWNER; its member objects stay with their owner",
}

ProgressHandler = Callable[[str, int, int], None]

#: Objects per transaction. Each ALTER ... OWNER takes an ACCESS EXCLUSIVE lock until its batch
#: commits; 100 statements sent in one pipeline hold them for milliseconds.
DEFAULT_BATCH_SIZE = 100


@dataclass(frozen=True)
class OwnedObject:
    """An object owned by the role being adopted from, with what is needed to name it in SQL."""

    catalog: str
    objid: int
    kind: str  # the SQL word: TABLE, FUNCTION, OPERATOR CLASS, ...
    schema: str | None
    name: str
    args: str | None  # server-rendered: routine identity arguments, operator operand types, access method
    action: str  # "alter" or "report"

    @property
    def label(self) -> str:
        qual = f"{self.schema}.{self.name}" if self.schema else self.name
        if self.kind in ("FUNCTION", "PROCEDURE", "AGGREGATE", "OPERATOR"):
            qual += f"({self.args or ''})"
        elif self.args:
            qual += f" USING {self.args}"
        return f"{self.kind.lower()} {qual}"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.lower(),
            "schema": self.schema,
            "name": self.name,
            "args": self.args,
            "object": self.label,
        }


def _qualified(obj: OwnedObject) -> sql.Composable:
    if obj.schema is None:
        return sql.Identifier(obj.name)
    return sql.Identifier(obj.schema, obj.name)


def alter_owner_sql(obj: OwnedObject, new_owner: str) -> sql.Composed:
    """ALTER <kind> <name> OWNER TO <new_owner>, names from the catalogs through sql.Identifier.

    Two fragments are server-rendered text rather than identifiers, and are safe to embed: routine
    identity arguments (pg_get_function_identity_arguments) and operand types (format_type) are
    produced by PostgreSQL's own deparser, which quotes every name it prints (quote_identifier), so
    they are valid SQL whatever the names contain; an operator name can only contain operator
    characters (checked here again), and an access method name goes through sql.Identifier.
    """
    owner = sql.Identifier(new_owner)
    kind = obj.kind
    if kind == "LARGE OBJECT":
        return sql.SQL("ALTER LARGE OBJECT {} OWNER TO {}").format(sql.Literal(int(obj.name)), owner)
    if kind in ("FUNCTION", "PROCEDURE", "AGGREGATE"):
        args = obj.args or ""
        if kind == "AGGREGATE" and not args:
            args = "*"  # count(*)-style aggregates have no arguments
        return sql.SQL("ALTER {} {}({}) OWNER TO {}").format(sql.SQL(kind), _qualified(obj), sql.SQL(args), owner)
    if kind == "OPERATOR":
        if not _OPERATOR_NAME.match(obj.name):
            raise PgwardenError(f"unexpected operator name {obj.name!r}; not moving it")
        return sql.SQL("ALTER OPERATOR {}.{} ({}) OWNER TO {}").format(
            sql.Identifier(obj.schema or "public"), sql.SQL(obj.name), sql.SQL(obj.args or ""), owner
        )
    if kind in ("OPERATOR CLASS", "OPERATOR FAMILY"):
        return sql.SQL("ALTER {} {} USING {} OWNER TO {}").format(
            sql.SQL(kind), _qualified(obj), sql.Identifier(obj.args or ""), owner
        )
    return sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), _qualified(obj), owner)


def owner_step(obj: OwnedObject, new_owner: str) -> Step:
    """The ALTER ... OWNER TO of one object as a step, for the executor."""
    reason = f"adopt: {new_owner} takes over {obj.label}"
    return Step(Phase.DATABASE, Action.ALTER_OWNER, obj.label, reason, alter_owner_sql(obj, new_owner), new_owner)


@dataclass(frozen=True)
class DefaultPrivilege:
    """A default privilege the old role defined, and the statement giving the same for the owner."""

    schema: str | None
    objtype: str
    grantee: str | None  # None: PUBLIC
    privileges: tuple[str, ...]
    grantable: bool
    statement: str

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": self.schema,
            "objects": defacl_word(self.objtype).lower(),
            "grantee": self.grantee or "PUBLIC",
            "privileges": list(self.privileges),
            "grantable": self.grantable,
            "equivalent": self.statement,
        }


@dataclass
class AdoptPlan:
    """What adopt would do: statements to run, objects it only reports, default privileges to redo."""

    database: str
    from_role: str
    to_role: str
    objects: list[OwnedObject]
    reported: list[OwnedObject]
    default_privileges: list[DefaultPrivilege]
    #: the policy's roles that do not exist yet, created first the way apply creates them
    roles: list[Step] = field(default_factory=list)

    def statements(self) -> list[sql.Composed]:
        return [alter_owner_sql(o, self.to_role) for o in self.objects]


@dataclass
class AdoptResult:
    plan: AdoptPlan
    moved: list[OwnedObject] = field(default_factory=list)
    batches: int = 0
    retries: int = 0


def _role_oid(conn: psycopg.Connection[Any], role: str) -> int:
    row = conn.execute("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone()
    if row is None:
        raise PgwardenError(f"role {role} does not exist", hint="check the role name (it is case-sensitive)")
    return int(row[0])


def enumerate_owned(conn: psycopg.Connection[Any], from_role: str) -> tuple[list[OwnedObject], list[OwnedObject]]:
    """(objects to move, objects to report) owned by `from_role` in the connected database."""
    rows = fetch(conn, "adopt_objects", OwnedObjectRow, {"role": _role_oid(conn, from_role)})
    objs = [OwnedObject(r.catalog, r.objid, r.kind, r.schema, r.name, r.args, r.action) for r in rows]
    return [o for o in objs if o.action == "alter"], [o for o in objs if o.action == "report"]


def _default_privileges(conn: psycopg.Connection[Any], from_role: str, to_role: str) -> list[DefaultPrivilege]:
    rows = fetch(conn, "adopt_default_acls", DefaultGrantRow, {"role": _role_oid(conn, from_role)})
    grouped: dict[tuple[str | None, str, str | None, bool], list[str]] = {}
    for r in rows:
        grouped.setdefault((r.schema, r.objtype, r.grantee, r.grantable), []).append(r.privilege)
    out = []
    for (schema, objtype, grantee, grantable), privs in grouped.items():
        stmt = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} GRANT {} ON {} TO {}{}").format(
            sql.Identifier(to_role),
            sql.SQL(" IN SCHEMA {}").format(sql.Identifier(schema)) if schema else sql.SQL(""),
            sql.SQL(", ").join(sql.SQL(p) for p in sorted(privs)),
            sql.SQL(defacl_word(objtype)),
            sql.Identifier(grantee) if grantee else sql.SQL("PUBLIC"),
            sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
        )
        out.append(DefaultPrivilege(schema, objtype, grantee, tuple(sorted(privs)), grantable, stmt.as_string(conn)))
    return out


def plan_adopt(session: Session, from_role: str, secrets: Mapping[str, str] | None = None) -> AdoptPlan:
    """Enumerate what adopt would do in the target database (reads only): the policy's roles to
    create first (as apply creates them: SCRAM verifiers from `secrets`, never clear text), then
    the objects to move."""
    to_role = session.policy.owner.name
    if from_role == to_role:
        raise PgwardenError(f"role {from_role} is already the owner named in the policy", hint="pass --from OLD_ROLE")
    if not session.target_exists():
        raise PgwardenError(f"database {session.target} does not exist", hint="adopt moves an existing database")
    roles = _missing_roles(session, secrets)
    conn = session.connect_target()
    try:
        objects, reported = enumerate_owned(conn, from_role)
        defaults = _default_privileges(conn, from_role, to_role)
    finally:
        conn.close()
    return AdoptPlan(session.target, from_role, to_role, objects, reported, defaults, roles)


def _missing_roles(session: Session, secrets: Mapping[str, str] | None) -> list[Step]:
    """The plan's CREATE ROLE steps for the policy's roles the cluster lacks; none is read or planned
    when they all exist (adopt is about objects: the usual case costs one lookup)."""

    names = list(session.policy.role_names)
    found = {
        r[0] for r in session.admin.execute("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)", (names,))
    }
    if found == set(names):
        return []
    p = session.policy
    with session.inspection_connection() as conn:
        # roles only: with no managed schema the snapshot reads no object, whatever the database's size
        light = inspect(conn, p.database.name, (), p.owner.name, p.role_names)
    return [s for s in session.plan(light, secrets, resolve=False).phase(Phase.ROLES) if s.action == Action.CREATE_ROLE]


def create_roles(session: Session, steps: Sequence[Step]) -> None:
    """CREATE ROLE for the policy's missing roles, in one transaction under apply's cluster lock."""
    import psycopg

    blocked = [s for s in steps if not s.allowed]
    if blocked:
        needs = "; ".join(sorted({str(s.needs) for s in blocked}))
        raise PgwardenError(
            f"the policy's roles {', '.join(s.role or '' for s in blocked)} do not exist and the connected "
            f"role may not create them (needs {needs}); nothing was changed",
            hint="connect as a superuser or a CREATEROLE admin, or create them with `pgwarden apply` first",
        )
    admin = session.admin
    try:
        with cluster_lock(session), admin.transaction():
            run_steps(admin, steps)
    except psycopg.Error as exc:
        first = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise ApplyError(
            f"adopt: creating the policy's roles failed: {first}; nothing was changed",
            hint="fix the cause and re-run adopt",
        ) from None


def _batches(items: Sequence[OwnedObject], size: int) -> list[list[OwnedObject]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class _BatchFailed(Exception):
    """A batch failed; carries the server's error and which objects the batch held."""

    def __init__(self, error: Exception, where: str) -> None:
        super().__init__(str(error))
        self.error, self.where = error, where


def _move_batch(conn: psycopg.Connection[Any], batch: Sequence[OwnedObject], to_role: str, timeout: str) -> None:
    """One batch in one transaction, sent in one pipeline (one round trip, not one per object)."""
    import psycopg

    with conn.transaction():
        set_lock_timeout(conn, timeout)
        try:
            run_steps(conn, [owner_step(obj, to_role) for obj in batch], pipeline=True)
            record_adoption(conn, [o.label for o in batch], to_role)  # the ledger: committed with the batch
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as exc:
            where = batch[0].label if len(batch) == 1 else f"{batch[0].label} .. {batch[-1].label}"
            raise _BatchFailed(exc, where) from exc


def _batch_error(conn: psycopg.Connection[Any], failed: _BatchFailed | Exception, moved: int, total: int) -> ApplyError:
    import psycopg

    exc = failed.error if isinstance(failed, _BatchFailed) else failed
    where = f" ({failed.where})" if isinstance(failed, _BatchFailed) else ""
    message = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if conn.closed or isinstance(exc, psycopg.OperationalError):
        # the server went away (restart, crash, network): nothing about privileges
        hint = "the connection to the server was lost; when it is back, re-run adopt: it resumes"
    elif isinstance(exc, psycopg.errors.InsufficientPrivilege):
        hint = "connect as a superuser (or a member of both roles); re-running resumes"
    else:
        hint = "fix the cause, then re-run adopt: it resumes where it stopped"
    return ApplyError(
        f"adopt: {message}{where}; {moved} of {total} objects were moved (each batch is all or nothing)", hint=hint
    )


def adopt(
    session: Session,
    from_role: str,
    *,
    lock_timeout: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    retries: int = 5,
    backoff: float = 0.5,
    on_progress: ProgressHandler | None = None,
    secrets: Mapping[str, str] | None = None,
) -> AdoptResult:
    """Move ownership from `from_role` to the policy's owner, batch by batch, each batch one transaction.

    A batch that hits lock_timeout is rolled back and retried after a growing pause; live traffic
    therefore never waits on adopt for longer than lock_timeout plus one batch. Interrupting is safe:
    committed batches stay done, and a re-run enumerates again what is still owned by `from_role`.
    The policy's roles that do not exist yet are created first, with passwords from `secrets`.
    """
    import psycopg

    if batch_size < 1:
        raise PgwardenError("--batch-size must be at least 1")
    timeout = lock_timeout or session.policy.apply.lock_timeout
    adopt_plan = plan_adopt(session, from_role, secrets)
    if adopt_plan.roles:
        create_roles(session, adopt_plan.roles)
    result = AdoptResult(adopt_plan)
    emit = on_progress or (lambda _what, _done, _total: None)
    total = len(adopt_plan.objects)
    emit("start", 0, total)
    conn = session.connect_target(autocommit=False)
    try:
        for batch in _batches(adopt_plan.objects, batch_size):
            attempt = 0
            while True:
                try:
                    _move_batch(conn, batch, adopt_plan.to_role, timeout)
                    break
                except psycopg.errors.LockNotAvailable:
                    attempt += 1
                    if attempt > retries:
                        raise ApplyError(
                            f"adopt: a lock could not be taken within lock_timeout {timeout} after {retries} "
                            f"retries; {len(result.moved)} of {total} objects were moved",
                            hint="live traffic holds the lock: re-run later (adopt resumes where it stopped), "
                            "or raise --lock-timeout",
                        ) from None
                    result.retries += 1
                    emit("retry", len(result.moved), total)
                    time.sleep(backoff * 2 ** (attempt - 1))
                except (_BatchFailed, psycopg.Error) as exc:
                    raise _batch_error(conn, exc, len(result.moved), total) from None
            result.batches += 1
            result.moved.extend(batch)
            emit("batch", len(result.moved), total)
    finally:
        conn.close()
    return result
