"""The report's cells and sentences, shared by its text (report_text), Markdown and HTML renderers."""

from __future__ import annotations

from pgwarden.report import KINDS, Cell, Report, ScopeCell


def grouped(report: Report) -> dict[tuple[str, str], list[Cell]]:
    """Cells by (role, schema), for the matrix."""
    out: dict[tuple[str, str], list[Cell]] = {}
    for c in report.cells:
        out.setdefault((c.role, c.schema), []).append(c)
    return out


def columns(report: Report) -> list[tuple[str, str]]:
    seen = dict.fromkeys((c.kind, c.privilege) for c in report.cells)
    return sorted(seen, key=lambda kp: (KINDS.index(kp[0]), kp[1]))


def scope_columns(report: Report) -> list[tuple[str, str, str]]:
    """(kind, name, privilege): the database's privileges first, then each schema's."""
    return list(dict.fromkeys((c.kind, c.name, c.privilege) for c in report.scope))


def scope_by_role(report: Report) -> dict[str, dict[tuple[str, str, str], ScopeCell]]:
    """Database and schema cells by role, keyed like scope_columns."""
    out: dict[str, dict[tuple[str, str, str], ScopeCell]] = {}
    for c in report.scope:
        out.setdefault(c.role, {})[(c.kind, c.name, c.privilege)] = c
    return out


def cell_text(c: Cell) -> str:
    return f"{c.held}/{c.total}" + (f" (want {c.expected})" if c.deviation else "")


def scope_short(c: ScopeCell) -> str:
    held = "yes" if c.held else "-"
    return held + (f"→{'yes' if c.want == 'yes' else 'no'}" if c.deviation else "")


EMPTY_MATRIX = "No tables, sequences or routines in the managed schemas: nothing to count."


def grant_lines(report: Report) -> list[str]:
    """Each grant of the policy as a sentence: `analysts: readonly on schemas app, except columns
    app.customers (email)`; then each member under its groups."""
    out = []
    for g in report.grants:
        scope = []
        if g["schemas"]:
            scope.append("schema(s) " + ", ".join(g["schemas"]))
        if g["tables"]:
            scope.append("table(s) " + ", ".join(g["tables"]))
        text = f"{g['role']}: {g['profile']} on {' and '.join(scope)}"
        if g["except_tables"]:
            text += ", except table(s) " + ", ".join(g["except_tables"])
        if g["except_columns"]:
            cols = "; ".join(f"{t} ({', '.join(c)})" for t, c in g["except_columns"].items())
            text += ", except column(s) " + cols
        out.append(text)
    return out


def member_lines(report: Report) -> list[str]:
    out = []
    for m in report.members:
        groups = []
        for g in m["groups"]:
            how = [] if g["inherit"] else ["SET ROLE first" if g["set"] else "neither inherits nor may SET ROLE"]
            if g["inherit"] and not g["set"]:
                how.append("may not SET ROLE")
            groups.append(g["role"] + (f" ({', '.join(how)})" if how else ""))
        out.append(f"{m['member']} gets the rights of {', '.join(groups)}")
    return out


def labelled_lines(report: Report) -> list[str]:
    """One line per labelled column: who can read or write it, and by how many paths."""
    out = []
    for c in report.labelled:
        who = ", ".join(f"{r['role']} ({','.join(r['privileges'])}; {r['paths']} path(s))" for r in c["roles"])
        out.append(f"{c['column']} [{', '.join(c['labels'])}]: {who or 'no role'}")
    return out


def summary_sentence(report: Report) -> str:
    """The counts at the top of every format and in `-o`'s message, from Report.summary (one source)."""
    s = report.summary
    n = s["deviations"]
    text = f"{n} deviation(s) from the policy"
    if n:
        text += (
            f" ({s['object_deviations']} in object privileges, {s['scope_deviations']} in database/schema privileges)"
        )
    found = ", ".join(f"{count} {sev}" for sev, count in s["findings_by_severity"].items())
    text += f"; {s['findings']} finding(s)" + (f": {found}" if found else "")
    if s["dangerous_paths"]:
        text += f"; {s['dangerous_paths']} dangerous path(s) to the owner or a powerful role"
    return text + "."
