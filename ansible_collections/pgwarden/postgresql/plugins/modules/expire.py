#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE in the pgwarden repository)
"""Ansible module: end time-bound access that expired, and the sessions still using it (pgwarden expire)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: expire
short_description: End expired elevations and break-glass windows in PostgreSQL databases, with their sessions
description:
  - Does what C(pgwarden expire) does in one database (or every database matching a pattern) of the policy;
    it revokes every elevation (made by C(pgwarden elevate)) and C([[temporary]]) membership whose time is up, sets
    break-glass roles whose window closed to NOLOGIN, records each in the database's ledger, and ends the
    sessions of those roles.
  - Run it on a schedule (a cron-like play, AWX schedule); every C(pgwarden apply) does it too.
  - Uses pgwarden as a library (no subprocess). pgwarden must be installed for the Python that runs the module.
version_added: "0.1.0"
author: pgwarden developers (@pgwarden)
requirements:
  - python >= 3.11
  - pgwarden (which brings psycopg 3)
options:
  database:
    description: The database, or a glob pattern matched against the cluster's databases. Default is the policy's own.
    type: str
  passwords:
    description: Not used by this module (accepted so that one set of arguments serves every module).
    type: dict
    default: {}
extends_documentation_fragment:
  - pgwarden.postgresql.connection
notes:
  - Supports check mode (nothing is revoked or ended; RV(results) is empty).
seealso:
  - module: pgwarden.postgresql.policy
"""

EXAMPLES = r"""
- name: End what expired, every five minutes from an AWX schedule
  pgwarden.postgresql.expire:
    policy: "{{ lookup('file', 'shop.toml') }}"
    login_host: "{{ inventory_hostname }}"
    login_user: postgres
    login_password: "{{ vault_pg_admin_password }}"
  delegate_to: localhost
"""

RETURN = r"""
results:
  description: One entry per database.
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: The database.
      type: str
    changed:
      description: Whether anything was ended there.
      type: bool
    ended:
      description: What was ended (kind, role, group, until, statements, sessions_ended).
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
        targets = engine.targets(policies, dsn, p["database"]).values()
        results = [engine.expire_one(dsn, t, module.check_mode) for t in targets]
    except engine.EngineError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=any(r["changed"] for r in results), results=results)


if __name__ == "__main__":
    main()
