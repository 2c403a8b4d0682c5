# -*- coding: utf-8 -*-
# MIT License (see LICENSE in the pgwarden repository)
"""Arguments shared by the collection's modules: the policy, the admin connection, the passwords."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CONNECTION_ARGS = dict(
    policy=dict(type="raw", required=True),
    dsn=dict(type="str", no_log=True),
    login_host=dict(type="str", aliases=["host"]),
    login_port=dict(type="int", aliases=["port"]),
    login_user=dict(type="str", aliases=["login", "user"]),
    login_password=dict(type="str", no_log=True),
    login_db=dict(type="str", default="postgres", aliases=["login_database"]),
    database=dict(type="str"),
    passwords=dict(type="dict", no_log=True, default={}),
)

MUTUALLY_EXCLUSIVE = [["dsn", name] for name in ("login_host", "login_port", "login_user", "login_password")]


def missing_library(module, error):
    """The module runs where pgwarden is not importable: say which Python lacks it."""
    import sys

    from ansible.module_utils.basic import missing_required_lib

    module.fail_json(
        msg=missing_required_lib("pgwarden", url="https://github.com/pgwarden/pgwarden (Python 3.11+)")
        + " (interpreter: %s)" % sys.executable,
        exception=error,
    )
