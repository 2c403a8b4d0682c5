"""docs/rules.md is written from the rule catalog: the page in the repository is what the rules' modules say."""

from __future__ import annotations

import os
from pathlib import Path

from pgwarden.render.rules_doc import rules_markdown
from pgwarden.rules import CATALOG, DRIFT_CATALOG, REGISTERED
from pgwarden.rules.catalog import Registered, Rule

PAGE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def test_docs_rules_md_is_generated_from_the_catalog() -> None:
    """With PGWARDEN_REGEN_DOCS=1 the page is written instead of compared (then review the diff)."""
    page = rules_markdown()
    if os.environ.get("PGWARDEN_REGEN_DOCS") == "1":
        PAGE.write_text(page, encoding="utf-8")
    assert PAGE.read_text(encoding="utf-8") == page, (
        "docs/rules.md is stale: a rule's text changed in src/pgwarden/rules/; "
        "PGWARDEN_REGEN_DOCS=1 pytest tests/test_rules_doc.py writes it"
    )


def test_the_page_has_every_rule_with_its_text_in_catalog_order() -> None:
    page = rules_markdown()
    at = [page.index(f"### `{rule.id}`\n") for rule in CATALOG]
    assert at == sorted(at)
    for rule in CATALOG:
        assert f"**Severity:** {rule.severity}. **{rule.title}.**" in page and rule.why in page and rule.how in page
        assert rule.doc in page
    assert all(f"| `{rule.id}` | {rule.severity}" in page for rule in DRIFT_CATALOG)
    assert page.index("## Hazards") < at[0] and at[-1] < page.index("## Drift") < page.index("## Change control")


def test_a_rule_a_module_registers_is_on_the_page() -> None:
    """The page follows the registrations: a new check's rule, its intro and its docs text appear (and the
    comparison above then fails until the page is written again)."""
    new = Rule("example.new", "low", "A new rule", "Why.", "How.", doc="More about it.")

    def check_new() -> None: ...

    page = rules_markdown((*REGISTERED, Registered(check_new, (new,), intro="New checks:")), DRIFT_CATALOG)  # type: ignore[arg-type]
    assert "New checks:\n\n### `example.new`\n\n**Severity:** low. **A new rule.**" in page
    assert "*How to fix:* How.\n\nMore about it.\n" in page
    assert page != rules_markdown()
