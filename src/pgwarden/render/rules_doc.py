"""docs/rules.md, written from the rule catalog: each rule's entry comes from the module that registers it."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.rules import DRIFT_CATALOG, REGISTERED, Rule
from pgwarden.rules.catalog import Registered

_HEAD = """\
# Rule catalog

<!-- Generated from src/pgwarden/rules/ (each rule's text is in the module that registers its check):
     edit it there, then PGWARDEN_REGEN_DOCS=1 pytest tests/test_rules_doc.py writes this page. -->

Every finding of [`pgwarden check`](check.md) has a stable rule id. Ids never change meaning; new
rules get new ids. Severities: `critical` (the split is broken: an access role can act as the owner
or bypass every check), `high` (a direct way around the split), `medium` (a weakening, or drift that
withholds rights), `low` (cosmetic drift). `--fail-on` picks the lowest severity that fails the run.

## Hazards

Hazards are rules over the catalogs that no policy line states. They are read in a fixed number of
queries (`src/pgwarden/queries/hazard_*.sql`), using `pg_has_role` and `has_*_privilege` where the
effective right matters (memberships and PUBLIC included).
"""

_DRIFT = """\
## Drift

Every step [`pgwarden plan`](plan.md) would take is a finding `drift.<action>`; its `fix` is the
step's SQL (passwords redacted) and `pgwarden apply` runs it.

| rule | severity |
|---|---|
"""

_CHANGE_CONTROL = """\
## Change control

Read from the database's ledger ([change-control.md](change-control.md)), in one query, and only
when the database has one. (Changes made outside pgwarden since its last recorded change are said
next to the findings, as `outside_pgwarden`, not as a rule.)

| rule | severity | what |
|---|---|---|
| `elevation.expired` | high | an elevation (`pgwarden elevate`) past its end whose membership is still there: `pgwarden expire` |
| `break-glass.expired` | high | a break-glass window past its end whose role still has `LOGIN` (the server refuses its logins already): `pgwarden expire` |
"""  # noqa: E501


def _rule(rule: Rule) -> str:
    text = (
        f"### `{rule.id}`\n\n**Severity:** {rule.severity}. **{rule.title}.**\n\n"
        f"*Why it matters:* {rule.why}\n\n*How to fix:* {rule.how}\n"
    )
    return text + (f"\n{rule.doc}\n" if rule.doc else "")


def _drift_row(rule: Rule) -> str:
    return f"| `{rule.id}` | {rule.severity}{f' ({rule.doc})' if rule.doc else ''} |\n"


def rules_markdown(registered: Iterable[Registered] = REGISTERED, drift: Iterable[Rule] = DRIFT_CATALOG) -> str:
    """The page: the hazard rules in the catalog's order (a check's intro before its rules), then drift."""
    parts = [_HEAD]
    for entry in registered:
        if entry.intro:
            parts.append(entry.intro + "\n")
        parts.extend(_rule(rule) for rule in entry.rules)
    parts.append(_DRIFT + "".join(_drift_row(rule) for rule in drift))
    parts.append(_CHANGE_CONTROL)
    return "\n".join(parts)
