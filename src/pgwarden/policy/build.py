"""Policies made from arguments (`init`) and from version 1 files (`policy upgrade`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from pgwarden.errors import PolicyError
from pgwarden.policy.load import format_errors, tuples
from pgwarden.policy.model import Policy
from pgwarden.policy.names import password_env_for


def build_policy(
    *,
    database: str,
    owner: str,
    app: Sequence[str] = (),
    readonly: Sequence[str] = (),
    schemas: Sequence[str] = (),
    version: int = 2,
) -> Policy:
    """Build a policy from `init`'s arguments (validated like a file): `app` roles get readwrite and
    `readonly` roles readonly on every schema."""
    levels = [(name, level) for level, names in (("readwrite", app), ("readonly", readonly)) for name in names]
    schema_list = list(schemas) or ["public"]
    data: dict[str, Any] = {
        "database": {"name": database, "schemas": schema_list},
        "owner": {"name": owner, "password_env": password_env_for(owner)},
        "access": [{"name": name, "level": level, "password_env": password_env_for(name)} for name, level in levels],
    }
    try:
        v1 = Policy.model_validate(tuples(data))
    except ValidationError as exc:
        raise PolicyError(format_errors(exc, None, None)) from None
    return v1 if version == 1 else upgrade(v1)


def upgrade(policy: Policy) -> Policy:
    """The version 2 policy that plans exactly what a version 1 policy plans: each access role's
    level becomes a grant of that profile on every managed schema."""
    if policy.version == 2:
        return policy
    database = policy.database.model_copy(update={"grants": policy.grants()})
    return Policy.model_validate({**dict(policy), "version": 2, "database": database, "databases": (database,)})
