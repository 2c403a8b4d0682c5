"""Starting policies for a provider's fixed role layout (`init --preset NAME`): TOML text, checked by loading it."""

from __future__ import annotations

from collections.abc import Sequence

from pgwarden.errors import PolicyError
from pgwarden.policy.load import parse_policy
from pgwarden.policy.model import Policy

PRESETS = ("supabase",)

_SUPABASE = """\
# Supabase (docs/managed-services.md#supabase). PostgREST logs in as authenticator and switches to
# anon, authenticated or service_role from each request's JWT; the platform's own roles
# (supabase_admin, supabase_auth_admin, ...) are detected by pgwarden and left alone.
version = 2

[owner]
# Owns the database's objects: migrations run as the admin (postgres) after SET ROLE to the owner.
name = {owner_q}
login = false

[[roles]]
# Requests without a user: what the policy gives it, under row level security.
name = "anon"
login = false

[[roles]]
# Requests of a signed-in user.
name = "authenticated"
login = false

[[roles]]
# Server-side requests with the service key (BYPASSRLS, given by Supabase).
name = "service_role"
login = false

[[roles]]
# The login PostgREST uses: it holds nothing itself and may only SET ROLE to the three roles above.
# Supabase sets and rotates its password: no password_env, so pgwarden leaves the password alone.
name = "authenticator"
member_of = [
  {{ role = "anon", inherit = false }},
  {{ role = "authenticated", inherit = false }},
  {{ role = "service_role", inherit = false }},
]

[[databases]]
name = {database_q}
schemas = [{schemas_q}]
grants = [
  {{ role = "anon", profile = "readonly", schemas = [{schemas_q}] }},
  {{ role = "authenticated", profile = "readwrite", schemas = [{schemas_q}] }},
  {{ role = "service_role", profile = "readwrite", schemas = [{schemas_q}] }},
]
"""


def _q(text: str) -> str:
    """A TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def preset(name: str, database: str, owner: str, schemas: Sequence[str]) -> tuple[str, Policy]:
    """The preset's file text and the policy it loads as (a bad name is refused before anything is written)."""
    if name not in PRESETS:
        raise PolicyError(f"no preset {name!r}", hint=f"presets: {', '.join(PRESETS)}")
    text = _SUPABASE.format(
        owner_q=_q(owner),
        database_q=_q(database),
        schemas_q=", ".join(_q(s) for s in (schemas or ("public",))),
    )
    return text, parse_policy(text, "preset " + name)
