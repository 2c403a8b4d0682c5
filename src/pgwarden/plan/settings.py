"""Planners for role settings: the deploy logins' `role` (pgwarden's own) and what a policy declares
(`settings` for every database, `database_settings` for this one)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from psycopg import sql

from pgwarden.plan.context import PlanContext
from pgwarden.plan.model import Action, Need, Phase, Requirement, Step
from pgwarden.policy.model import SettingValue
from pgwarden.snapshot import Role

R = Requirement

#: Parameters whose value is a list of names the server quotes one by one (GUC_LIST_QUOTE): a
#: policy's "app, public" is two names, and must be sent as two (one literal would be one schema
#: named "app, public", which is what the server stores for `SET search_path = 'app, public'`).
LIST_QUOTED = frozenset({"search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries"})

#: Parameters of context `superuser` on PostgreSQL 14-18 (pg_settings): setting one on a role takes a
#: superuser. The snapshot's superuser_settings leaves out the logging and statistics ones.
SUPERUSER_PARAMETERS = frozenset(
    """allow_in_place_tablespaces allow_system_table_mods backtrace_functions commit_delay compute_query_id
    deadlock_timeout debug_discard_caches dynamic_library_path event_triggers extension_control_path
    ignore_checksum_failure jit_dump_bitcode lc_messages lo_compat_privileges log_duration log_error_verbosity
    log_executor_stats log_lock_failures log_lock_waits log_min_duration_sample log_min_duration_statement
    log_min_error_statement log_min_messages log_parameter_max_length log_parser_stats log_planner_stats
    log_replication_commands log_statement log_statement_sample_rate log_statement_stats log_temp_files
    log_transaction_sample_rate max_stack_depth output_plugin_libraries session_preload_libraries
    session_replication_role temp_file_limit track_activities track_cost_delay_timing track_counts
    track_functions track_io_timing track_wal_io_timing update_process_title wal_compression
    wal_consistency_checking wal_init_zero wal_recycle zero_damaged_pages""".split()
)


def setting_text(value: SettingValue) -> str:
    """A TOML value as the text PostgreSQL stores for it (booleans as on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def split_names(text: str) -> list[str]:
    """The names of a list value as the server reads them: unquoted ones trimmed and lowercased,
    double-quoted ones as they are ("" inside is a quote)."""
    names: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\n,":
            i += 1
        if i >= n:
            break
        if text[i] == '"':
            j, out = i + 1, []
            while j < n and not (text[j] == '"' and text[j + 1 : j + 2] != '"'):
                out.append(text[j])
                j += 2 if text[j] == '"' else 1
            names.append("".join(out))
            i = j + 1
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            names.append(text[i:j].strip().lower())
            i = j
    return names


def value_sql(param: str, text: str) -> sql.Composable:
    if param.lower() in LIST_QUOTED:
        names = split_names(text)
        return sql.SQL(", ").join(sql.Identifier(s) for s in names) if names else sql.Literal("")
    return sql.Literal(text)


def same_value(param: str, stored: str, text: str) -> bool:
    if param.lower() in LIST_QUOTED:
        return split_names(stored) == split_names(text) or (not split_names(text) and stored == '""')
    return stored == text


def stored_settings(ctx: PlanContext, role: Role | None, database: int | None) -> dict[str, tuple[str, str]]:
    """lowercased name -> (name, value) of what the role has in `database` (0: every database)."""
    if role is None or database is None:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for s in ctx.snap.role_settings:
        if s.role == role.oid and s.database == database:
            for setting in s.settings:
                name, _, value = setting.partition("=")
                out[name.strip().lower()] = (name.strip(), value)
    return out


def declared_settings(ctx: PlanContext, role: str, in_database: bool) -> Mapping[str, SettingValue] | None:
    """What the policy says `role` has for every database, or (`in_database`) for this one; None: nothing."""
    spec = dict(ctx.policy.attribute_specs()).get(role)
    if spec is None:
        return None
    if not in_database:
        return spec.settings
    if spec.database_settings is None:
        return None
    return spec.database_settings.get(ctx.policy.database.name)


def plan_declared_settings(ctx: PlanContext, *, in_database: bool) -> Iterator[Step]:
    """Declared settings: each is set to its value and, for a role that declares them, every other
    setting there is RESET (but those plan/outside.py resets: superuser-only ones and `role`)."""
    for name, _ in ctx.policy.attribute_specs():
        declared = declared_settings(ctx, name, in_database)
        if declared is not None:
            yield from _plan_role(ctx, name, declared, in_database)
        elif in_database:
            yield from _plan_overrides(ctx, name)


def _plan_overrides(ctx: PlanContext, name: str) -> Iterator[Step]:
    """A role that declares settings for every database, and none for this one: a setting stored for
    it in this database (ALTER ROLE ... IN DATABASE ... SET) takes precedence over its own (role in
    database > role > database > every role > server), so a declared one that it overrides is RESET
    there. A database-wide setting (ALTER DATABASE ... SET) does not override a role's: it is left."""
    declared = declared_settings(ctx, name, False)
    snap = ctx.snap
    role = snap.role_by_name.get(name)
    if not declared or role is None or snap.database is None:
        return
    stored = stored_settings(ctx, role, snap.database.oid)
    for key, (param, text) in sorted((k.lower(), (k, setting_text(v))) for k, v in declared.items()):
        current = stored.get(key)
        if current is None or same_value(key, current[1], text) or _reset_elsewhere(ctx, name, role, key):
            continue
        reason = (
            f"the policy sets {param} = {text} for role {name} in every database; {current[0]} = {current[1]} "
            f"stored for it in database {ctx.policy.database.name} takes precedence there"
        )
        yield _setting_step(ctx, name, role, current[0], None, reason, True)


def _plan_role(ctx: PlanContext, name: str, declared: Mapping[str, SettingValue], in_database: bool) -> Iterator[Step]:
    snap = ctx.snap
    role = snap.role_by_name.get(name)
    database = (snap.database.oid if snap.database else None) if in_database else 0
    stored = stored_settings(ctx, role, database)
    wanted = {k.lower(): (k, setting_text(v)) for k, v in declared.items()}
    for key, (param, text) in sorted(wanted.items()):
        current = stored.get(key)
        if current is None or not same_value(key, current[1], text):
            was = "" if current is None else f" (it is {current[1]})"
            reason = f"the policy sets {param} = {text} for role {name}{_where(ctx, in_database)}{was}"
            yield _setting_step(ctx, name, role, param, value_sql(param, text), reason, in_database)
    for key, (param, value) in sorted(stored.items()):
        if key in wanted or _reset_elsewhere(ctx, name, role, key):
            continue
        reason = (
            f"role {name} must have only the settings the policy declares{_where(ctx, in_database)} ({param} = {value})"
        )
        yield _setting_step(ctx, name, role, param, None, reason, in_database)


def _where(ctx: PlanContext, in_database: bool) -> str:
    return f" in database {ctx.policy.database.name}" if in_database else " in every database"


def _reset_elsewhere(ctx: PlanContext, name: str, role: Role | None, key: str) -> bool:
    """Whether plan/outside.py resets this stored setting already (one step per problem)."""
    if role is None or role.superuser:
        return False
    if name not in {ctx.owner, *ctx.policy.owner.deploy_logins, *ctx.access_names}:
        return False
    return key in ctx.snap.superuser_settings or (key == "role" and name in {ctx.owner, *ctx.access_names})


def _setting_step(
    ctx: PlanContext,
    name: str,
    role: Role | None,
    param: str,
    value: sql.Composable | None,
    reason: str,
    in_database: bool,
) -> Step:
    """ALTER ROLE name [IN DATABASE d] SET param = value, or RESET param (value None)."""
    auth, db = ctx.auth, ctx.policy.database.name
    where = sql.SQL(" IN DATABASE {}").format(sql.Identifier(db)) if in_database else sql.SQL("")
    head = sql.SQL("ALTER ROLE {}{}").format(sql.Identifier(name), where)
    if value is None:
        statement = sql.SQL("{} RESET {}").format(head, sql.Identifier(*param.split(".")))
    else:
        statement = sql.SQL("{} SET {} = {}").format(head, sql.Identifier(*param.split(".")), value)
    superuser_only = param.lower() in SUPERUSER_PARAMETERS | ctx.snap.superuser_settings
    if superuser_only or (role is not None and role.superuser):
        ok, needs = auth.superuser, Need.superuser()
    else:
        ok, needs = auth.superuser or (auth.createrole and auth.may_alter_role(name, role is not None)), ALTER_NEED
    label = f"setting {param} of role {name}" + (f" in database {db}" if in_database else "")
    return Step(
        # every database: with the other role steps; this database: after CREATE DATABASE
        Phase.DATABASE if in_database else Phase.ROLES,
        Action.ROLE_SETTING,
        label,
        reason,
        statement,
        role=name,
        destructive=value is None,
        needs=None if ok else needs,
        allowed=ok,
        change="reset" if value is None else "set",
        subject=("setting", name, db if in_database else "", param.lower()),
    )


ALTER_NEED = Need.of(R.CREATEROLE, note="with ADMIN OPTION on the role on 16+")


def plan_role_settings(ctx: PlanContext) -> Iterator[Step]:
    snap, auth, policy, owner = ctx.snap, ctx.auth, ctx.policy, ctx.owner
    db_oid = snap.database.oid if snap.database else None
    for deploy in policy.owner.deploy_logins:
        role = snap.role_by_name.get(deploy)
        current: tuple[str, ...] = ()
        if role is not None and db_oid is not None:
            for s in snap.role_settings:
                if s.role == role.oid and s.database == db_oid:
                    current = s.settings
        if any(s in (f"role={owner}", f'role="{owner}"') for s in current):
            continue
        ok = auth.superuser or (auth.createrole and auth.may_alter_role(deploy, role is not None))
        yield Step(
            Phase.DATABASE,
            Action.ROLE_SETTING,
            f"role {deploy}",
            f"every session of deploy login {deploy} in {policy.database.name} must act as {owner}, "
            "so that what it creates is owned by the owner (works behind poolers too)",
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET role = {}").format(
                sql.Identifier(deploy), sql.Identifier(policy.database.name), sql.Literal(owner)
            ),
            role=deploy,
            needs=None if ok else Need.of(R.CREATEROLE),
            allowed=ok,
        )
