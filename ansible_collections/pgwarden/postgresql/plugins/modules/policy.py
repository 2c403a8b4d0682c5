#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE in the pgwarden repository)
"""Ansible module: make a database match a pgwarden policy, or check it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: policy
short_description: Keep a PostgreSQL database on a pgwarden least-privilege policy
description:
  - Makes one database (or every database matching a pattern) of a cluster match a pgwarden policy
    (C(state=present)), or checks it (C(state=checked)) and fails when a finding is at or above
    O(fail_on).
  - One owner role owns the database and every object in it; access roles read and write rows
    (C(readwrite)) or only read (C(readonly)). See the pgwarden policy reference (docs/policy.md).
  - In check mode the module plans; it reports C(changed) when the plan is not empty and, with
    C(--diff), shows the plan's SQL. Passwords never appear in it, psql variables stand in for them.
  - Uses pgwarden as a library (no subprocess). pgwarden must be installed for the Python that runs the module, on
    the control node (C(delegate_to=localhost) or C(connection=local)) or on the target host.
version_added: "0.1.0"
author: pgwarden developers (@pgwarden)
requirements:
  - python >= 3.11
  - pgwarden (which brings psycopg 3)
options:
  policy:
    description:
      - The policy. A path to a policy file on the host the module runs on, the policy's TOML text
        (any value with a newline, for example C("{{ lookup('template', 'policy.toml.j2') }}")), or
        a mapping with the same keys as the TOML file.
    type: raw
    required: true
  dsn:
    description:
      - Admin connection as a libpq connection string or C(postgresql://) URL. Mutually exclusive
        with the O(login_host), O(login_port), O(login_user) and O(login_password) fields.
      - Without O(dsn) and the login fields, the libpq environment (C(PGHOST), C(PGUSER), ...) of
        the module's process is used.
    type: str
  login_user:
    description: Role of the admin connection (a superuser, or a role with CREATEROLE that owns what it manages).
    type: str
    aliases: [login, user]
  login_db:
    description: Database of the admin connection (not the managed database).
    type: str
    default: postgres
    aliases: [login_database]
  database:
    description:
      - Narrows the policy's databases to this name or glob pattern. A version 2 policy works on the
        databases its C([[databases]]) list; an entry named with a glob (C(tenant_*)) covers every
        matching database of the cluster (connectable, not a template; never created), each with
        that entry's grants.
      - A version 1 policy applies to this database, or to every database of the cluster the pattern
        matches, instead of its own. Default is every database of the policy.
    type: str
  state:
    description:
      - C(present) applies the policy (in check mode, plans it).
      - C(checked) changes nothing and fails when a finding (drift or hazard) is at or above O(fail_on).
    type: str
    choices: [present, checked]
    default: present
  fail_on:
    description: With C(state=checked), the lowest severity that fails the task.
    type: str
    choices: [critical, high, medium, low]
    default: low
  mode:
    description:
      - How the policy is applied. Only C(authoritative) exists today (grants the policy does not state
        are revoked); the option is here so that playbooks can name it.
    type: str
    choices: [authoritative]
    default: authoritative
  lock_timeout:
    description:
      - How long apply waits for a lock before giving up with nothing changed (C(5s), C(500ms)).
      - Default is the policy's C([apply] lock_timeout).
    type: str
  passwords:
    description:
      - Passwords of the policy's login roles, keyed by role name or by the policy's C(password_env)
        name. Roles not given here take theirs from the environment variable the policy names.
      - Sent to the server as SCRAM-SHA-256 verifiers; never returned or logged.
    type: dict
    default: {}
extends_documentation_fragment:
  - pgwarden.postgresql.connection
notes:
  - Supports check mode and diff mode.
  - Environment variables set with the C(environment) keyword appear in the C(-vvv) output of
    Ansible's command line; give passwords through O(passwords) (with Ansible Vault) instead.
seealso:
  - module: pgwarden.postgresql.report
"""

EXAMPLES = r"""
- name: Keep the shop database on its policy
  pgwarden.postgresql.policy:
    policy: "{{ lookup('template', 'shop.toml.j2') }}"
    login_host: "{{ pg_host }}"
    login_port: "{{ pg_port }}"
    login_user: postgres
    login_password: "{{ vault_pg_admin_password }}"
    passwords:
      shop_app: "{{ vault_shop_app_password }}"
    lock_timeout: 2s
  delegate_to: localhost

# tenant.toml: version = 2, with [[databases]] name = "tenant_*" (every tenant's database, all alike)
- name: Fail on high findings in every tenant database
  pgwarden.postgresql.policy:
    policy: /etc/pgwarden/tenant.toml
    dsn: "host=/var/run/postgresql user=postgres"
    state: checked
    fail_on: high
"""

RETURN = r"""
databases:
  description: One entry per database handled.
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: The database.
      type: str
    changed:
      description: Whether the plan was not empty (check mode) or steps were applied.
      type: bool
    steps:
      description:
        - The plan's steps (check mode, C(state=checked)) or the steps applied.
        - Each has C(sql) (passwords shown as psql variables), C(reason), C(object), C(role), C(destructive).
      type: list
      elements: dict
    findings:
      description:
        - With C(state=checked), drift and hazards.
        - Each has C(rule), C(severity), C(object), C(role), C(message), C(fix).
      type: list
      elements: dict
    failing:
      description: With C(state=checked), how many findings are at or above O(fail_on).
      type: int
    failing_rules:
      description: With C(state=checked), the rules of those findings.
      type: list
      elements: str
    failed:
      description: With C(state=checked), whether a finding is at or above O(fail_on).
      type: bool
summary:
  description: Counts over the databases handled.
  returned: always
  type: dict
  sample: {"databases": 1, "changed": 1, "failed": 0, "findings": 0}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgwarden.postgresql.plugins.module_utils import engine
from ansible_collections.pgwarden.postgresql.plugins.module_utils.common import (
    CONNECTION_ARGS,
    MUTUALLY_EXCLUSIVE,
    missing_library,
)


def _summary(results):
    return {
        "databases": len(results),
        "changed": sum(1 for r in results if r.get("changed")),
        "failed": sum(1 for r in results if r.get("failed")),
        "findings": sum(len(r.get("findings", ())) for r in results),
    }


def _run(module, results):
    """Handle every selected database, appending to `results` as each is done (kept on a failure)."""
    p = module.params
    policies = engine.load_policies(p["policy"])
    dsn = engine.conninfo(p)
    secrets = engine.secrets_for(policies[0], p["passwords"])  # roles: the same in every database
    lock_timeout = engine.check_lock_timeout(p["lock_timeout"])
    for name, target in engine.targets(policies, dsn, p["database"]).items():
        try:
            if p["state"] == "checked":
                results.append(engine.check_one(dsn, target, secrets, p["fail_on"]))
            elif module.check_mode:
                results.append(engine.plan_one(dsn, target, secrets))
            else:
                results.append(engine.apply_one(dsn, target, secrets, lock_timeout))
        except engine.EngineError as exc:
            if name not in exc.message:
                exc.message = "database %s: %s" % (name, exc.message)
            raise
        blocked = [s for s in results[-1]["steps"] if not s["allowed"]]
        if blocked and module.check_mode and p["state"] == "present":
            module.warn(
                "database %s: %d step(s) need more than the admin has (%s); apply would change nothing"
                % (name, len(blocked), "; ".join(sorted({s["needs"] or "more privileges" for s in blocked})))
            )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            CONNECTION_ARGS,
            state=dict(type="str", choices=["present", "checked"], default="present"),
            fail_on=dict(type="str", choices=["critical", "high", "medium", "low"], default="low"),
            mode=dict(type="str", choices=["authoritative"], default="authoritative"),
            lock_timeout=dict(type="str"),
        ),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    if engine.IMPORT_ERROR:
        missing_library(module, engine.IMPORT_ERROR)
    results = []
    try:
        _run(module, results)
    except engine.EngineError as exc:
        # the databases handled before the failure keep their changes: say which
        for r in results:
            r.pop("sql", None)
        done = [r["database"] for r in results if r["changed"]]
        kept = "; applied before this failure, and kept: %s" % ", ".join(done) if done and not module.check_mode else ""
        module.fail_json(msg=exc.line(kept), changed=bool(kept), databases=results, summary=_summary(results))
    sql = "".join(r.pop("sql", "") for r in results)
    out = dict(changed=any(r["changed"] for r in results), databases=results, summary=_summary(results))
    if module._diff and sql:
        out["diff"] = {"prepared": sql}
    failed = [r for r in results if r.get("failed")]
    if failed:
        counts = "; ".join(
            "%s: %d at or above %s (%s)"
            % (r["database"], r["failing"], module.params["fail_on"], ", ".join(r["failing_rules"]))
            for r in failed
        )
        module.fail_json(msg="findings in %d database(s): %s" % (len(failed), counts), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
