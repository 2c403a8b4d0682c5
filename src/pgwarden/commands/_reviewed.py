"""`apply --plan FILE`: the reviewed plan, database by database (not a command: the name starts with _)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgwarden.cli import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from pgwarden.apply import ApplyResult
    from pgwarden.policy import Policy
    from pgwarden.ui import UI


def apply_reviewed(
    ui: UI,
    path: str,
    loaded: list[Policy],
    dsn: str | None,
    databases: tuple[str, ...],
    secrets: dict[str, str],
    skip_unprivileged: bool,
    lock_timeout: str | None,
    fmt: str,
) -> int:
    """Every database of the file (or those -d names), one after the other: the first refusal
    stops the run (the databases before it stay applied, and the output says which)."""
    from pgwarden.apply import apply
    from pgwarden.errors import PgwardenError
    from pgwarden.hooks import Hooks
    from pgwarden.ledger import LedgerHooks
    from pgwarden.multi import Outcome, select_in_file
    from pgwarden.planfile import PlanGuard, check_origin, load, policy_digest, system_identifier
    from pgwarden.render import apply_progress, render_applies, render_apply
    from pgwarden.session import Session

    plan_file = load(path)
    targets = select_in_file(loaded, dsn, databases or tuple(d.database for d in plan_file.databases))
    digest = policy_digest(loaded)
    outcomes: list[Outcome[ApplyResult]] = []
    shared_roles = False
    for name, policy in targets.items():
        entry = plan_file.entry(name)
        try:
            with Session.open(dsn, policy) as session:
                check_origin(plan_file, loaded, system_identifier(session.admin))
                guard = PlanGuard(entry, path, secrets, shared_roles=shared_roles)
                ledger = LedgerHooks(session, digest, detail={"plan_file": path, "reviewed": True})
                with apply_progress(ui) as on_event:
                    result = apply(
                        session,
                        secrets,
                        skip_unprivileged=skip_unprivileged,
                        lock_timeout=lock_timeout,
                        on_event=on_event,
                        hooks=Hooks(guard, ledger),
                    )
            shared_roles = shared_roles or guard.ran_roles
            outcomes.append(Outcome(name, result, None, 0.0))
        except PgwardenError as exc:
            if len(targets) == 1:
                raise
            outcomes.append(Outcome(name, None, exc, 0.0))
            break
    if len(targets) == 1:
        render_apply(ui, outcomes[0].result, fmt)  # type: ignore[arg-type]
        return EXIT_OK
    render_applies(ui, outcomes, fmt)
    return EXIT_ERROR if any(o.error for o in outcomes) else EXIT_OK
