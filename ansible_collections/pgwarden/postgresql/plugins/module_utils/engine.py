# -*- coding: utf-8 -*-
# MIT License (see LICENSE in the pgwarden repository)
"""Every call the collection makes into the pgwarden library, in one place."""

from __future__ import absolute_import, division, print_function

import json
import os
import traceback

__metaclass__ = type

try:
    from pgwarden.apply import apply as _apply
    from pgwarden.check import run_check as _run_check
    from pgwarden.elevate import expire_all as _expire_all
    from pgwarden.errors import PgwardenError
    from pgwarden.multi import select_in_file as _select_in_file
    from pgwarden.policy import check_duration as _check_duration
    from pgwarden.policy import load_policies as _load_policies
    from pgwarden.policy import parse_policies as _parse_policies
    from pgwarden.report import build_report as _build_report
    from pgwarden.session import Session as _Session

    IMPORT_ERROR = None
except ImportError:  # reported by the module as one message, with the Python that lacks it
    IMPORT_ERROR = traceback.format_exc()

    class PgwardenError(Exception):  # type: ignore[no-redef]
        message = ""
        hint = None


class EngineError(Exception):
    """One line for Ansible's `msg`: what went wrong, then (`hint`) what to do."""

    def __init__(self, message, hint=None):
        super(EngineError, self).__init__(message)
        self.message = message
        self.hint = hint

    def line(self, extra=""):
        return self.message + extra + ("; hint: " + self.hint if self.hint else "")

    def __str__(self):
        return self.line()


def _guard(fn, *args, **kwargs):
    import psycopg

    try:
        return fn(*args, **kwargs)
    except PgwardenError as exc:
        raise EngineError(exc.message or str(exc), exc.hint) from None
    except psycopg.Error as exc:
        # pgwarden turns the errors it expects into PgwardenError; this is the server going away mid-run
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EngineError(
            "the server failed the request: %s" % first,
            "check the server, then re-run the task (pgwarden plans again from what is there)",
        ) from None


# -- arguments ---------------------------------------------------------------------------------


def _toml_value(value, where):
    """A YAML value as a TOML inline value: JSON strings, numbers and booleans are TOML too."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = ", ".join(
            "%s = %s" % (json.dumps(str(k), ensure_ascii=False), _toml_value(v, where + "." + str(k)))
            for k, v in value.items()
        )
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    raise EngineError("policy: %s: a %s cannot be written in a policy" % (where, type(value).__name__))


def mapping_to_toml(data):
    """The policy given as a YAML mapping, as TOML text for pgwarden's own parser and validation."""
    return "".join(
        "%s = %s\n" % (json.dumps(str(k), ensure_ascii=False), _toml_value(v, str(k))) for k, v in data.items()
    )


def load_policies(value):
    """The `policy` argument: a mapping, inline TOML text (it has a newline) or a path on the host
    the module runs on; the policy of each database of the file (one for version 1)."""
    if isinstance(value, dict):
        return _guard(_parse_policies, mapping_to_toml(value), "policy (mapping)")
    if not isinstance(value, str) or not value.strip():
        raise EngineError("policy: give a path to a policy file, its TOML text, or a mapping")
    if "\n" in value.strip():
        return _guard(_parse_policies, value, "policy (inline)")
    return _guard(_load_policies, os.path.expanduser(value))


def conninfo(params):
    """The admin connection: `dsn`, else the login_* fields, else None (libpq's PG* environment)."""
    if params.get("dsn"):
        return params["dsn"]
    fields = {
        "host": params.get("login_host"),
        "port": params.get("login_port"),
        "user": params.get("login_user"),
        "password": params.get("login_password"),
        "dbname": params.get("login_db"),
    }
    fields = {k: str(v) for k, v in fields.items() if v not in (None, "")}
    if not fields:
        return None
    from psycopg.conninfo import make_conninfo

    return make_conninfo("", **fields)


def secrets_for(policy, passwords, environ=None):
    """The `secrets` mapping pgwarden takes (password variable -> password) from the `passwords`
    argument (keyed by role name or by the policy's password_env name), else the environment."""
    env = os.environ if environ is None else environ
    by_role = {role: var for role, var in policy.login_roles() if var}
    names = set(by_role.values())
    out = {}
    for key, password in (passwords or {}).items():
        var = by_role.get(key, key if key in names else None)
        if var is None:
            raise EngineError(
                "passwords: %r is neither a login role of the policy with a password_env nor a password_env name" % key,
                "the policy names: %s" % (", ".join(sorted(by_role)) or "none"),
            )
        out[var] = str(password)
    for var in names - set(out):
        if env.get(var) is not None:
            out[var] = env[var]
    return out


def check_lock_timeout(value):
    if value is None:
        return None
    try:
        return _check_duration(value)
    except ValueError as exc:
        raise EngineError("lock_timeout: %s" % exc) from None


def targets(policies, dsn, database):
    """database name -> its policy, as `pgwarden -d` selects them: a version 2 file's databases (a
    [[databases]] name that is a glob covers every matching database of the cluster), narrowed by
    `database` (a name or glob among them); a version 1 file's policy on its database, or on the
    cluster's databases `database` names or matches."""
    return _guard(_select_in_file, policies, dsn, [database] if database else [])


# -- what the modules do, per database -----------------------------------------------------------


def _steps(steps):
    return [s.to_dict() for s in steps]


def _sql(database, steps):
    lines = ["-- database %s" % database]
    for step in steps:
        lines.append("-- %s" % step.reason)
        lines.append(step.render().rstrip(";") + ";")
    return "\n".join(lines) + "\n"


def plan_one(dsn, policy, secrets):
    """What `apply` would change (check mode): the plan's steps, no change made."""

    def run():
        with _Session.open(dsn, policy) as session:
            # the session's verifiers (libpq, the server's scram_iterations): the plan is the one apply makes
            the_plan = session.plan(session.snapshot(secrets=secrets), secrets)
        return {
            "database": policy.database.name,
            "server_version": the_plan.server_version,
            "changed": not the_plan.empty,
            "steps": _steps(the_plan.steps),
            "notes": list(the_plan.notes),
            "sql": _sql(policy.database.name, the_plan.steps) if the_plan.steps else "",
        }

    return _guard(run)


def apply_one(dsn, policy, secrets, lock_timeout):
    """Make one database match the policy; the steps are those that ran."""

    def run():
        with _Session.open(dsn, policy) as session:
            result = _apply(session, secrets, lock_timeout=lock_timeout)
        return {
            "database": policy.database.name,
            "server_version": result.plan.server_version,
            "changed": result.changed,
            "steps": _steps(result.executed),
            "skipped": _steps(result.skipped),
            "notes": list(result.notes),
            "sql": _sql(policy.database.name, result.executed) if result.executed else "",
        }

    return _guard(run)


def check_one(dsn, policy, secrets, fail_on):
    """Drift and hazards of one database as findings; `failed` when any is at or above `fail_on`."""

    def run():
        with _Session.open(dsn, policy) as session:
            result = _run_check(session, secrets)
        failing = [f for f in result.findings if f.at_least(fail_on)]
        data = result.to_json(fail_on)
        data.update(
            {
                "database": result.database,
                "server_version": result.server_version,
                "changed": False,
                "failed": result.failed(fail_on),
                "failing": len(failing),
                "failing_rules": sorted({f.rule for f in failing}),
                "steps": _steps(result.plan.steps),
            }
        )
        return data

    return _guard(run)


def report_one(dsn, policy, secrets):
    """The privilege report of one database, as `pgwarden report --format json` prints it."""

    def run():
        with _Session.open(dsn, policy) as session:
            report = _build_report(session, secrets=secrets)
        return report.to_json()

    return _guard(run)


def expire_one(dsn, policy, check_mode=False):
    """`pgwarden expire` in one database: what ended (elevations, [[temporary]], break-glass) is revoked,
    recorded in the ledger, and its role's sessions ended. Check mode changes nothing."""

    def run():
        with _Session.open(dsn, policy) as session:
            if not session.target_exists() or check_mode:
                return {"database": policy.database.name, "changed": False, "ended": []}
            with session.connect_target(autocommit=False) as conn:
                ended = _expire_all(conn, policy.temporary)
        return {
            "database": policy.database.name,
            "changed": bool(ended),
            "ended": [
                {
                    "kind": e.grant.kind,
                    "role": e.grant.role,
                    "group": e.grant.group,
                    "until": e.grant.until,
                    "statements": list(e.statements),
                    "sessions_ended": e.terminated,
                }
                for e in ended
            ],
        }

    return _guard(run)
