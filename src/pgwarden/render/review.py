"""`review` as JSON, Markdown and CSV (the HTML page is render/review_html.py)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from pgwarden.access.paths import Access
from pgwarden.access.review import Review, sections
from pgwarden.render.envelope import document
from pgwarden.render.review_html import review_html


def render_review(review: Review, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document(review.to_json()), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return review_csv([review])
    if fmt == "html":
        return review_html(review)
    return review_markdown(review)


def _md(text: str) -> str:
    """A Markdown table cell: pipes and markup characters escaped, on one line."""
    out = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for ch in "*_`<>[]":
        out = out.replace(ch, "\\" + ch)
    return out


def _table(paths: Sequence[Access], with_column: bool) -> list[str]:
    head = "| role | privilege | " + ("column | " if with_column else "") + "path |"
    rule = "|---|---|" + ("---|" if with_column else "") + "---|"
    rows = [
        f"| {_md(a.role)} | {a.privilege} | "
        + (f"{_md(a.column or '(all)')} | " if with_column else "")
        + f"{_md(a.chain())} |"
        for a in paths
    ]
    return [head, rule, *rows]


def review_markdown(review: Review) -> str:
    out = [
        f"# Access review: database {_md(review.database)}",
        "",
        f"- server: PostgreSQL {_md(review.server_version)}, system identifier "
        f"{review.system_identifier or 'not readable by this login'}",
        f"- policy digest: `{review.policy_digest}`",
        f"- generated at: {review.generated_at}",
        f"- {len(review.accesses)} paths, {len(review.labelled)} labelled column(s)",
        "",
    ]
    if review.changes is not None:
        c = review.changes
        out += [f"## Changes since {_md(c.since)}", ""]
        out += [
            f"- appeared: {_md(a.chain())} ({a.privilege}" + (f", column {_md(a.column)})" if a.column else ")")
            for a in c.appeared
        ] or ["- nothing appeared"]
        out += [
            f"- disappeared: {_md(a.chain())} ({a.privilege}" + (f", column {_md(a.column)})" if a.column else ")")
            for a in c.disappeared
        ] or ["- nothing disappeared"]
        out.append("")
    labelled = [s for s in sections(review) if s[0] == "labelled"]
    if labelled:
        out += ["## Labelled columns", ""]
        for _, title, paths in labelled:
            out += [f"### {_md(title)}", "", *_table(paths, False), ""]
    out += ["## Every object", ""]
    for kind, title, paths in sections(review):
        if kind == "object":
            out += [f"### {_md(title)}", "", *_table(paths, True), ""]
    return "\n".join(out)


CSV_HEADER = ("database", "change", "object", "kind", "column", "labels", "role", "privilege", "path")


def review_csv(reviews: Sequence[Review]) -> str:
    """One row per path (and, with --since, one per path that appeared or disappeared)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in reviews:
        rows: list[tuple[str, Access]] = [("", a) for a in r.accesses]
        if r.changes is not None:
            rows = [("appeared", a) for a in r.changes.appeared] + [("disappeared", a) for a in r.changes.disappeared]
            rows += [("", a) for a in r.accesses]
        for change, a in rows:
            labels = ";".join(r.labels_for(a))
            writer.writerow(
                (r.database, change, a.object, a.kind, a.column or "", labels, a.role, a.privilege, a.chain())
            )
    return buf.getvalue()
