# -*- coding: utf-8 -*-
# MIT License (see LICENSE in the pgwarden repository)
"""The options every module of the collection takes (module_utils/common.py's CONNECTION_ARGS): the
policy and the admin connection. A module that says more of one declares it again, and its own wins."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  policy:
    description: The policy, as for M(pgwarden.postgresql.policy) (a path, TOML text, or a mapping).
    type: raw
    required: true
  dsn:
    description: Admin connection as a libpq connection string or C(postgresql://) URL.
    type: str
  login_host:
    description: Host of the admin connection.
    type: str
    aliases: [host]
  login_port:
    description: Port of the admin connection.
    type: int
    aliases: [port]
  login_user:
    description: Role of the admin connection.
    type: str
    aliases: [login, user]
  login_password:
    description: Password of O(login_user).
    type: str
  login_db:
    description: Database of the admin connection.
    type: str
    default: postgres
    aliases: [login_database]
  database:
    description:
      - Narrows the policy's databases to this name or glob pattern. A version 2 policy works on the
        databases its C([[databases]]) list; an entry named with a glob (C(tenant_*)) covers every
        matching database of the cluster (connectable, not a template).
      - A version 1 policy applies to this database, or to every database of the cluster the pattern
        matches, instead of its own. Default is every database of the policy.
    type: str
  passwords:
    description:
      - Passwords of the policy's login roles, keyed by role name or by the policy's C(password_env)
        name. Roles not given here take theirs from the environment variable the policy names.
    type: dict
    default: {}
"""
