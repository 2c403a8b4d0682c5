"""Probe's refresh attempts: each materialized view a role of the policy may refresh, and one it may not,
refreshed as the role (REFRESH on 17+, its refresh routine before), rolled back (pgwarden.refresh)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from psycopg import sql

from pgwarden.caps import Capabilities
from pgwarden.policy import split_qualified
from pgwarden.probe.actions import Action
from pgwarden.refresh import routine_name

if TYPE_CHECKING:
    from pgwarden.probe.prober import Prober
    from pgwarden.probe.targets import Target

#: Not a row of the action table: tried only where the policy declares a refresh.
REFRESH = Action("refresh", "readables", "table", "MAINTAIN", None)


def try_refreshes(prober: Prober) -> None:
    """Nothing when the policy declares no refresh, or for the owner (it owns the views)."""
    refresh = prober.rights.scopes.refresh
    if not refresh or prober.rights.owner:
        return
    declared = frozenset().union(*refresh.values())
    matviews = [t for t in prober.targets.readables if t.subkind == "m"]
    chosen = [t for t in matviews if f"{t.schema}.{t.name}" in declared]
    chosen += [t for t in matviews if f"{t.schema}.{t.name}" not in declared][:1]  # one it may not refresh
    maintain = Capabilities(prober.conn.info.server_version).has_maintain
    holders = prober.rights.holders
    for target in chosen:
        qualified = f"{target.schema}.{target.name}"
        allowed = any(qualified in refresh.get(h, ()) for h in holders)
        prober.attempt(REFRESH, target.label, _statement(target, refresh, holders, maintain), allowed)


def _statement(
    target: Target, refresh: Mapping[str, frozenset[str]], holders: tuple[str, ...], maintain: bool
) -> sql.Composed:
    """REFRESH itself on 17+ (MAINTAIN); before, the routine of a holder that refreshes views of the
    target's schema (which must refuse a view not declared), else REFRESH itself (only the owner may)."""
    view = sql.Identifier(target.schema, target.name)
    if not maintain:
        mine = [h for h in holders if any(split_qualified(v)[0] == target.schema for v in refresh.get(h, ()))]
        if f"{target.schema}.{target.name}" in {v for h in mine for v in refresh[h]}:
            mine = [h for h in mine if f"{target.schema}.{target.name}" in refresh[h]]
        if mine:
            routine = sql.Identifier(target.schema, routine_name(mine[0]))
            return sql.SQL("SELECT {}({}::regclass)").format(routine, sql.Literal(view.as_string(None)))
    return sql.SQL("REFRESH MATERIALIZED VIEW {}").format(view)
