"""`pgwarden run`: a migration command with a policy role's credentials, then a check of what it created."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from pgwarden.errors import PgwardenError
from pgwarden.policy import Policy, password_env_for

if TYPE_CHECKING:
    from pgwarden.findings import Finding
    from pgwarden.session import Session

#: Set in the command's environment when it runs as the owner: the explicit "we are migrating" switch
#: read by pgwarden.contrib.django and pgwarden.contrib.alembic.
MIGRATE_ENV = "PGWARDEN_MIGRATE"
#: The policy role the command acts as (owner or an access role), for the framework helpers.
ROLE_ENV = "PGWARDEN_ROLE"
#: The policy's owner, whatever role the command runs as: what a migration helper must act as.
OWNER_ENV = "PGWARDEN_OWNER"

#: Hazard rules about objects, which a migration command can cause (the others are about roles).
_OBJECT_RULES = ("ownership.", "access.owns-objects", "defaults.wrong-role")


@dataclass(frozen=True)
class RunAs:
    """Who the command logs in as, and which policy role its sessions act as."""

    login: str
    acts_as: str
    password_env: str | None
    is_owner: bool


def resolve_role(policy: Policy, name: str) -> RunAs:
    """`owner` (or the owner's name), else an access role; a NOLOGIN owner runs through its first deploy login."""
    owner = policy.owner
    if name in ("owner", owner.name):
        return _as_owner(policy)
    if name in owner.deploy_logins:
        return RunAs(name, owner.name, password_env_for(name), True)
    if name in ROLE_WORDS and name not in policy.role_names:
        name = role_for(policy, name)
    for access in policy.access:
        if access.name == name:
            if not access.login:
                raise PgwardenError(f"access role {name} cannot log in (login = false in the policy)")
            return RunAs(name, name, access.password_env, False)
    for member in policy.members:
        if member.name == name and member.login:
            return RunAs(name, name, member.password_env, False)
    roles = ", ".join(["owner", *policy.owner.deploy_logins, *(a.name for a in policy.access)])
    raise PgwardenError(f"role {name} is not in the policy", hint=f"--as takes one of: {roles}")


def _as_owner(policy: Policy) -> RunAs:
    owner = policy.owner
    if owner.login:
        return RunAs(owner.name, owner.name, owner.password_env, True)
    if owner.deploy_logins:
        deploy = owner.deploy_logins[0]
        return RunAs(deploy, owner.name, password_env_for(deploy), True)
    raise PgwardenError(
        f"the owner {owner.name} cannot log in and the policy names no deploy login",
        hint='add [owner] deploy_logins = ["deployer"] (docs/deploy-logins.md), or set owner.login = true',
    )


#: Words that stand for an access role: runtime and readwrite (the first login whose grants write
#: rows), readonly (the first login whose grants only read them). A role of that name wins.
ROLE_WORDS = ("runtime", "readwrite", "readonly")


def role_for(policy: Policy, word: str) -> str:
    """The access role `word` (ROLE_WORDS) stands for, judged by its grants in this database."""
    # lazy on purpose: Django's settings.py imports this module (contrib.django); the engine loads on use
    from pgwarden.probe.rights import may_write, reads_only
    from pgwarden.scopes import Scopes

    scopes = Scopes.of(policy)
    fits = reads_only if word == "readonly" else may_write
    logins = [a.name for a in policy.access if a.login and a.name in scopes.holders]
    found = next((r for r in logins if fits(scopes, r)), None)
    if found is None:
        what = "only read" if word == "readonly" else "write"
        raise PgwardenError(
            f"the policy has no access role that can log in and whose grants {what} rows, to act as `{word}`",
            hint="name the role itself",
        )
    return found


def database_url(
    user: str, password: str | None, host: str | None, port: str | None, dbname: str, sslmode: str | None = None
) -> str:
    """A postgresql:// URL (every part percent-encoded; a socket directory goes in ?host=)."""
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    netloc = auth + "@"
    query: list[str] = []
    if host and (host.startswith("/") or "," in host):
        query.append("host=" + quote(host, safe=""))
        if port:
            query.append("port=" + quote(port, safe=""))
    else:
        netloc += host or ""
        if port:
            netloc += ":" + port
    if sslmode:
        # drivers that are not libpq (Go's lib/pq and pgx, used by dbmate and golang-migrate) default
        # to sslmode=require; saying what the admin connection used keeps them on the same footing
        query.append("sslmode=" + quote(sslmode, safe=""))
    tail = "?" + "&".join(query) if query else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{tail}"


#: The parent's variables kept for the command: where libpq finds passwords (~/.pgpass) for the role.
_KEPT_PG = ("PGPASSFILE",)
#: libpq waits forever for an unreachable server unless told otherwise.
CONNECT_TIMEOUT = "10"


def command_env(
    policy: Policy,
    run_as: RunAs,
    server: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The command's environment: the parent's without PG*/DATABASE_URL, plus the role's connection to `server`."""
    parent = os.environ if environ is None else environ
    password = parent.get(run_as.password_env) if run_as.password_env else None
    env = _inherited(policy, run_as, parent)
    host, port = server.get("host"), server.get("port")
    env["PGUSER"] = run_as.login
    env["PGDATABASE"] = policy.database.name
    env["PGCONNECT_TIMEOUT"] = parent.get("PGCONNECT_TIMEOUT") or CONNECT_TIMEOUT
    if host:
        env["PGHOST"] = host
    if port:
        env["PGPORT"] = port
    for key in ("sslmode", "sslrootcert"):
        if server.get(key):
            env["PG" + key.upper()] = server[key]
    if password is not None:
        env["PGPASSWORD"] = password
    env["DATABASE_URL"] = database_url(run_as.login, password, host, port, policy.database.name, server.get("sslmode"))
    env[ROLE_ENV] = run_as.acts_as
    env[OWNER_ENV] = policy.owner.name
    if run_as.is_owner:
        env[MIGRATE_ENV] = "1"
    return env


def _inherited(policy: Policy, run_as: RunAs, parent: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without its connection (PG*, DATABASE_URL, pgwarden's own role variables)
    and without the other roles' passwords."""
    env = dict(parent)
    for key in list(env):
        if (key.startswith("PG") and not key.startswith("PGWARDEN_") and key not in _KEPT_PG) or key == "DATABASE_URL":
            del env[key]
    for key in (MIGRATE_ENV, ROLE_ENV, OWNER_ENV):
        env.pop(key, None)
    # the other roles' passwords are not this command's to see (PGWARDEN_* is otherwise passed on)
    for _, var in policy.login_roles():
        if var and var != run_as.password_env:
            env.pop(var, None)
    return env


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run `argv` (no shell) with `env`; its exit code (128+N when killed by signal N)."""
    if not argv:
        raise PgwardenError("no command given", hint="pgwarden run --as owner -- python manage.py migrate")
    try:
        proc = subprocess.run(list(argv), env=dict(env), check=False)
    except FileNotFoundError:
        raise PgwardenError(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise PgwardenError(f"command not executable: {argv[0]}") from None
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


def object_findings(session: Session, secrets: Mapping[str, str] | None = None) -> list[Finding]:
    """What a migration can get wrong: objects not owned by the owner or lacking the access roles' grants."""
    # lazy on purpose: see role_for
    from pgwarden.check import run_check
    from pgwarden.plan import OBJECT_ACTIONS, Phase

    result = run_check(session, secrets)
    # drift about objects in the database (role settings etc. are not the command's doing)
    steps = {s.key for s in result.plan.steps if s.phase == Phase.DATABASE and s.action in OBJECT_ACTIONS}
    return [f for f in result.findings if f.step in steps or f.rule.startswith(_OBJECT_RULES)]
