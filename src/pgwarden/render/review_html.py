"""`review` as one self-contained HTML page (inline CSS, no script): fits 1400 px, usable at 1024 px."""

from __future__ import annotations

import html
from collections.abc import Sequence

from pgwarden.access.paths import Access
from pgwarden.access.review import Review, sections

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;padding:0 1rem;color:#222;max-width:1368px}
h1{font-size:1.5rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1rem;margin:1.2rem 0 .3rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.meta dt{font-weight:600}
dl.meta dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{border:1px solid #ccc;padding:.25rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f4f4f4}
col.role{width:14%}col.priv{width:9%}col.column{width:13%}col.path{width:auto}
section.labelled h3{color:#8a1c1c}
.appeared{background:#e6f6e6}.disappeared{background:#fde4e4;text-decoration:line-through}
code{font-size:.9em}
nav ul{columns:3;padding-left:1.2rem}
@media (max-width:1100px){nav ul{columns:2}col.role{width:18%}col.column{width:15%}}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(paths: Sequence[Access], with_column: bool, classes: Sequence[str] = ()) -> str:
    cols = (
        '<col class="role"><col class="priv">' + ('<col class="column">' if with_column else "") + '<col class="path">'
    )
    head = "<tr><th>role</th><th>privilege</th>" + ("<th>column</th>" if with_column else "") + "<th>path</th></tr>"
    rows = []
    for i, a in enumerate(paths):
        cls = f' class="{classes[i]}"' if classes else ""
        column = f"<td>{_e(a.column or '(all)')}</td>" if with_column else ""
        rows.append(
            f'<tr{cls} data-role="{_e(a.role)}"><td>{_e(a.role)}</td><td>{_e(a.privilege)}</td>{column}'
            f"<td>{_e(a.chain())}</td></tr>"
        )
    return f"<table><colgroup>{cols}</colgroup><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def review_html(review: Review) -> str:
    meta = [
        ("database", review.database),
        ("server", f"PostgreSQL {review.server_version}"),
        ("system identifier", review.system_identifier or "not readable by this login"),
        ("policy digest", review.policy_digest),
        ("generated at", review.generated_at),
        ("paths", str(len(review.accesses))),
    ]
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Access review: {_e(review.database)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Access review: database {_e(review.database)}</h1>",
        '<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta) + "</dl>",
    ]
    if review.changes is not None:
        c = review.changes
        changed = [*c.appeared, *c.disappeared]
        classes = ["appeared"] * len(c.appeared) + ["disappeared"] * len(c.disappeared)
        parts.append(f'<section id="changes"><h2>Changes since {_e(c.since)}</h2>')
        parts.append(_table(changed, True, classes) if changed else "<p>No access appeared or disappeared.</p>")
        parts.append("</section>")
    every = list(sections(review))
    labelled = [s for s in every if s[0] == "labelled"]
    if labelled:
        parts.append('<section class="labelled" id="labelled"><h2>Labelled columns</h2>')
        parts += [f"<h3>{_e(title)}</h3>{_table(paths, False)}" for _, title, paths in labelled]
        parts.append("</section>")
    parts.append('<section id="objects"><h2>Every object</h2>')
    parts += [f"<h3>{_e(title)}</h3>{_table(paths, True)}" for kind, title, paths in every if kind == "object"]
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"
