#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE in the pgwarden repository)
"""Ansible module: the privilege report of a database as data (who can do what, and the findings)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: report
short_description: Read who can do what in a PostgreSQL database, against a pgwarden policy
description:
  - Returns the privilege report of each database of the policy (for a glob entry, of every matching one), as
    C(pgwarden report --format json) prints it, for a fleet-wide summary or an audit. Changes nothing.
  - Uses pgwarden as a library (no subprocess). pgwarden must be installed for the Python that runs the module.
version_added: "0.1.0"
author: pgwarden developers (@pgwarden)
requirements:
  - python >= 3.11
  - pgwarden (which brings psycopg 3)
options:
  login_db:
    description: Database of the admin connection (not the reported database).
    type: str
    default: postgres
    aliases: [login_database]
  passwords:
    description:
      - Passwords of the policy's login roles, keyed by role name or C(password_env) name (else the environment).
      - The report's drift findings take them into account once pgwarden's report accepts them; until
        then the report reads them from the environment variables the policy names.
    type: dict
    default: {}
extends_documentation_fragment:
  - pgwarden.postgresql.connection
notes:
  - Supports check mode (it changes nothing either way).
seealso:
  - module: pgwarden.postgresql.policy
"""

EXAMPLES = r"""
# tenant.toml is a version 2 file whose [[databases]] entry is named "tenant_*"
- name: Who can do what in every tenant database
  pgwarden.postgresql.report:
    policy: "{{ lookup('file', 'tenant.toml') }}"
    login_host: "{{ inventory_hostname }}"
    login_user: postgres
    login_password: "{{ vault_pg_admin_password }}"
  register: privileges
  delegate_to: localhost
"""

RETURN = r"""
reports:
  description: One privilege report per database (see docs/json-output.md in pgwarden, C(report)).
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: The database.
      type: str
    privileges:
      description: Held versus expected counts per role, schema, kind and privilege.
      type: list
      elements: dict
    deviations:
      description: How many cells differ from the policy.
      type: int
    findings:
      description: Drift and hazards, as C(pgwarden check) finds them.
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pgwarden.postgresql.plugins.module_utils import engine
from ansible_collections.pgwarden.postgresql.plugins.module_utils.common import (
    CONNECTION_ARGS,
    MUTUALLY_EXCLUSIVE,
    missing_library,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(CONNECTION_ARGS),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    if engine.IMPORT_ERROR:
        missing_library(module, engine.IMPORT_ERROR)
    p = module.params
    try:
        policies = engine.load_policies(p["policy"])
        dsn = engine.conninfo(p)
        secrets = engine.secrets_for(policies[0], p["passwords"])  # roles: the same in every database
        reports = [engine.report_one(dsn, t, secrets) for t in engine.targets(policies, dsn, p["database"]).values()]
    except engine.EngineError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, reports=reports)


if __name__ == "__main__":
    main()
