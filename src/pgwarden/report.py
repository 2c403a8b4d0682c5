"""`build_report(session) -> Report`: who holds what, where it differs from the policy; text/JSON/Markdown/HTML.

Library use (the demo calls it):

    with Session.open(dsn, policy) as session:
        report = build_report(session)
    render_report(report, "html")   # or "text", "json", "markdown"; returns a str
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgwarden.findings import Finding
from pgwarden.findings import render_text as findings_text
from pgwarden.plan import PROFILES

if TYPE_CHECKING:
    from pgwarden.policy import Policy
    from pgwarden.session import Session
    from pgwarden.snapshot import Snapshot

KINDS = ("table", "sequence", "routine")


@dataclass(frozen=True)
class Cell:
    """How many of the `total` objects of (schema, kind) `role` holds `privilege` on, vs. the policy."""

    role: str
    level: str  # owner | readwrite | readonly | public
    schema: str
    kind: str
    privilege: str
    held: int
    total: int
    expected: int

    @property
    def deviation(self) -> bool:
        return self.held != self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "level": self.level,
            "schema": self.schema,
            "kind": self.kind,
            "privilege": self.privilege,
            "held": self.held,
            "total": self.total,
            "expected": self.expected,
            "deviation": self.deviation,
        }


@dataclass(frozen=True)
class Report:
    database: str
    server_version: str
    roles: tuple[tuple[str, str], ...]  # (role, level) in display order; PUBLIC last
    schemas: tuple[str, ...]
    cells: tuple[Cell, ...]
    owners: tuple[dict[str, Any], ...]
    default_privileges: tuple[dict[str, Any], ...]
    memberships: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...]

    @property
    def deviations(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.deviation)

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "server_version": self.server_version,
            "roles": [{"role": r, "level": lvl} for r, lvl in self.roles],
            "schemas": list(self.schemas),
            "privileges": [c.to_dict() for c in self.cells],
            "deviations": len(self.deviations),
            "owners": list(self.owners),
            "default_privileges": list(self.default_privileges),
            "memberships": list(self.memberships),
            "findings": [f.to_dict() for f in self.findings],
        }


def _expected(policy: Policy, level: str, kind: str, privilege: str, owner_privs: tuple[str, ...], total: int) -> int:
    if level == "owner":
        return total if privilege in owner_privs else 0
    if level == "public":
        allowed = kind == "routine" and privilege == "EXECUTE" and not policy.hardening.revoke_public_execute
        return total if allowed else 0
    return total if privilege in PROFILES[level][kind] else 0


def build_report(session: Session) -> Report:
    """Read the target database through `session` (one snapshot, the hazard queries, one privilege
    query) and summarise it; `findings` are those of `run_check`."""
    from pgwarden.check import findings_for
    from pgwarden.connect import secrets_from_env
    from pgwarden.errors import ConnectError
    from pgwarden.hazards import read_hazards
    from pgwarden.snapshot import _rows

    policy = session.policy
    if not session.target_exists():
        raise ConnectError(f"database {policy.database.name} does not exist", hint="run `pgwarden apply` first")
    with session.inspection_connection() as conn:
        snap = session.snapshot(conn)
        hz = read_hazards(conn, policy, snap)
        roles: list[tuple[str, str]] = [(policy.owner.name, "owner")] + [(a.name, a.level) for a in policy.access]
        oids = {snap.role_by_name[r].oid: (r, lvl) for r, lvl in roles if r in snap.role_by_name}
        schema_oids = {s.oid: s.name for s in snap.schemas if s.name in policy.database.schemas}
        rows = _rows(
            conn,
            "report_privileges",
            {
                "schemas": list(schema_oids),
                "roles": list(oids),
                "table_privs": list(snap.caps.table_owner_privileges),
            },
        )
    secrets = secrets_from_env([env for _, env in policy.login_roles()])
    findings = findings_for(policy, snap, hz, session.plan(snap, secrets))
    cells = []
    for r in rows:
        role, level = ("PUBLIC", "public") if r["role"] == 0 else oids[int(r["role"])]
        total = int(r["total"])
        cells.append(
            Cell(
                role,
                level,
                schema_oids[r["schema"]],
                r["kind"],
                r["privilege"],
                int(r["held"]),
                total,
                _expected(policy, level, r["kind"], r["privilege"], snap.caps.owner_privileges(r["kind"]), total),
            )
        )
    order = {name: i for i, (name, _) in enumerate([*roles, ("PUBLIC", "public")])}
    cells.sort(key=lambda c: (order.get(c.role, 99), c.schema, KINDS.index(c.kind), c.privilege))
    return Report(
        policy.database.name,
        snap.server.version,
        tuple([*[(r, lvl) for r, lvl in roles if r in snap.role_by_name], ("PUBLIC", "public")]),
        tuple(s for s in policy.database.schemas if s in schema_oids.values()),
        tuple(cells),
        _owners(snap, schema_oids),
        _defaults(snap),
        _memberships(policy, snap, hz.member_of),
        tuple(findings),
    )


def _owners(snap: Snapshot, schema_oids: dict[int, str]) -> tuple[dict[str, Any], ...]:
    counts: dict[tuple[str, str, str], int] = {}
    for g in snap.objects:
        if g.schema in schema_oids:
            key = (schema_oids[g.schema], g.kind, snap.role_name(g.owner) or "?")
            counts[key] = counts.get(key, 0) + g.count
    return tuple({"schema": s, "kind": k, "owner": o, "count": n} for (s, k, o), n in sorted(counts.items()))


_OBJTYPE = {"r": "tables", "S": "sequences", "f": "routines", "T": "types", "n": "schemas", "L": "large objects"}


def _defaults(snap: Snapshot) -> tuple[dict[str, Any], ...]:
    schemas = {s.oid: s.name for s in snap.schemas}
    out = []
    for d in snap.default_acls:
        grants: dict[str, list[str]] = {}
        for g in sorted(d.acl, key=lambda g: (g.grantee, g.privilege)):
            grants.setdefault(snap.role_name(g.grantee) or "PUBLIC", []).append(
                g.privilege + ("*" if g.grantable else "")
            )
        out.append(
            {
                "for_role": snap.role_name(d.role),
                "schema": schemas.get(d.schema) if d.schema else None,
                "objects": _OBJTYPE.get(d.objtype, d.objtype),
                "grants": grants,
            }
        )
    return tuple(out)


def _memberships(policy: Policy, snap: Snapshot, closure: dict[int, frozenset[int]]) -> tuple[dict[str, Any], ...]:
    names = set(policy.role_names)
    out = []
    for m in snap.memberships:
        member, role = snap.role_name(m.member), snap.role_name(m.role)
        if member in names or role in names:
            out.append(
                {"member": member, "role": role, "admin": m.admin, "inherit": m.inherit, "set": m.set, "direct": True}
            )
    direct = {(x["member"], x["role"]) for x in out}
    for member_oid, targets in closure.items():
        for t in targets:
            pair = (snap.role_name(member_oid), snap.role_name(t))
            if pair not in direct:
                out.append(
                    {"member": pair[0], "role": pair[1], "admin": False, "inherit": None, "set": None, "direct": False}
                )
    return tuple(sorted(out, key=lambda x: (str(x["member"]), str(x["role"]))))


# --- rendering ------------------------------------------------------------------------------------------------


def _grouped(report: Report) -> dict[tuple[str, str], list[Cell]]:
    """Cells by (role, schema), for the matrix."""
    out: dict[tuple[str, str], list[Cell]] = {}
    for c in report.cells:
        out.setdefault((c.role, c.schema), []).append(c)
    return out


def _cell_text(c: Cell) -> str:
    return f"{c.held}/{c.total}" + (f" (want {c.expected})" if c.deviation else "")


def _columns(report: Report) -> list[tuple[str, str]]:
    seen = dict.fromkeys((c.kind, c.privilege) for c in report.cells)
    return sorted(seen, key=lambda kp: (KINDS.index(kp[0]), kp[1]))


def render_text(report: Report) -> str:
    lines = [f"database {report.database} (PostgreSQL {report.server_version})", ""]
    for (role, schema), cells in _grouped(report).items():
        held = ", ".join(f"{c.kind} {c.privilege} {_cell_text(c)}" for c in cells if c.held or c.deviation)
        lines.append(f"{role} on schema {schema}: {held or 'nothing'}")
    lines += ["", "owners:"]
    lines += [f"  {o['schema']} {o['kind']}s: {o['count']} owned by {o['owner']}" for o in report.owners] or [
        "  (no objects)"
    ]
    lines += ["", "default privileges:"]
    for d in report.default_privileges:
        where = f" in schema {d['schema']}" if d["schema"] else ""
        grants = "; ".join(f"{g}: {','.join(p)}" for g, p in d["grants"].items())
        lines.append(f"  for {d['for_role']} on {d['objects']}{where}: {grants}")
    lines += ["", "memberships:"]
    for m in report.memberships:
        lines.append(
            f"  {m['member']} is member of {m['role']}"
            + ("" if m["direct"] else " (indirectly)")
            + (" with admin" if m["admin"] else "")
        )
    lines += ["", f"{len(report.deviations)} deviation(s) from the policy in the privilege matrix", ""]
    lines.append(findings_text(report.findings))
    return "\n".join(lines).rstrip() + "\n"


def render_markdown(report: Report) -> str:
    cols = _columns(report)
    out = [
        f"# Privileges in database `{report.database}`",
        "",
        f"PostgreSQL {report.server_version}. "
        f"Cells: objects on which the role holds the privilege / objects of that kind; "
        f"**bold** where the policy wants another number.",
        "",
    ]
    out.append("| role | schema | " + " | ".join(f"{k} {p}" for k, p in cols) + " |")
    out.append("|---|---|" + "---|" * len(cols))
    for (role, schema), cells in _grouped(report).items():
        by = {(c.kind, c.privilege): c for c in cells}
        row = []
        for kp in cols:
            c = by.get(kp)
            row.append("" if c is None else (f"**{_cell_text(c)}**" if c.deviation else f"{c.held}/{c.total}"))
        out.append(f"| {role} | {schema} | " + " | ".join(row) + " |")
    out += ["", "## Owners", "", "| schema | kind | owner | objects |", "|---|---|---|---|"]
    out += [f"| {o['schema']} | {o['kind']} | {o['owner']} | {o['count']} |" for o in report.owners]
    out += ["", "## Default privileges", "", "| for role | schema | objects | grants |", "|---|---|---|---|"]
    for d in report.default_privileges:
        grants = "; ".join(f"{g}: {','.join(p)}" for g, p in d["grants"].items())
        out.append(f"| {d['for_role']} | {d['schema'] or '(all)'} | {d['objects']} | {grants} |")
    out += ["", "## Memberships", "", "| member | role | direct | admin |", "|---|---|---|---|"]
    out += [f"| {m['member']} | {m['role']} | {m['direct']} | {m['admin']} |" for m in report.memberships]
    out += ["", "## Findings", ""]
    if not report.findings:
        out.append("None: the database matches the policy and no hazard was found.")
    for f in report.findings:
        out.append(f"- **{f.severity}** `{f.rule}` {f.object}: {f.message}" + (f" Fix: `{f.fix}`" if f.fix else ""))
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:center}
th{background:#f4f4f4}
td.role,td.schema{text-align:left;font-weight:600}
td.none{color:#aaa}
td.deviation{background:#ffd7d7;color:#900;font-weight:700}
.critical,.high{color:#900}.medium{color:#a60}.low{color:#555}
"""


def render_html(report: Report) -> str:
    """One self-contained HTML page (inline CSS, no script, no external resource)."""
    e = html.escape
    cols = _columns(report)
    head = "".join(f"<th>{e(k)}<br>{e(p)}</th>" for k, p in cols)
    rows = []
    for (role, schema), cells in _grouped(report).items():
        by = {(c.kind, c.privilege): c for c in cells}
        tds = []
        for kp in cols:
            c = by.get(kp)
            if c is None:
                tds.append("<td></td>")
                continue
            cls = "deviation" if c.deviation else ("held" if c.held else "none")
            title = f' title="policy: {c.expected}/{c.total}"' if c.deviation else ""
            attrs = f'class="{cls}" data-role="{e(role)}" data-privilege="{e(kp[0])} {e(kp[1])}"{title}'
            tds.append(f"<td {attrs}>{c.held}/{c.total}</td>")
        rows.append(f'<tr><td class="role">{e(role)}</td><td class="schema">{e(schema)}</td>{"".join(tds)}</tr>')
    owners = "".join(
        f"<tr><td>{e(o['schema'])}</td><td>{e(o['kind'])}</td><td>{e(str(o['owner']))}</td><td>{o['count']}</td></tr>"
        for o in report.owners
    )
    defaults = "".join(
        f"<tr><td>{e(str(d['for_role']))}</td><td>{e(d['schema'] or '(all)')}</td><td>{e(d['objects'])}</td>"
        f"<td>{e('; '.join(f'{g}: {chr(44).join(p)}' for g, p in d['grants'].items()))}</td></tr>"
        for d in report.default_privileges
    )
    members = "".join(
        f"<tr><td>{e(str(m['member']))}</td><td>{e(str(m['role']))}</td><td>{'yes' if m['direct'] else 'no'}</td></tr>"
        for m in report.memberships
    )
    findings = (
        "".join(
            f'<li class="{e(f.severity)}"><b>{e(f.severity)}</b> <code>{e(f.rule)}</code> '
            f"{e(f.object)}: {e(f.message)}</li>"
            for f in report.findings
        )
        or "<li>None: the database matches the policy and no hazard was found.</li>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pgwarden report: {e(report.database)}</title>
<style>{_CSS}</style></head><body>
<h1>Privileges in database {e(report.database)}</h1>
<p>PostgreSQL {e(report.server_version)}. Each cell: objects on which the role holds the privilege / objects
of that kind in the schema. <span class="deviation">Highlighted</span> cells differ from the policy
({len(report.deviations)} deviation(s)).</p>
<table id="matrix"><thead><tr><th>role</th><th>schema</th>{head}</tr></thead><tbody>
{"".join(rows)}
</tbody></table>
<h2>Findings</h2><ul id="findings">{findings}</ul>
<h2>Owners</h2><table id="owners"><tr><th>schema</th><th>kind</th><th>owner</th><th>objects</th></tr>{owners}</table>
<h2>Default privileges</h2><table id="defaults">
<tr><th>for role</th><th>schema</th><th>objects</th><th>grants</th></tr>{defaults}</table>
<h2>Memberships</h2><table id="memberships"><tr><th>member</th><th>role</th><th>direct</th></tr>{members}</table>
</body></html>
"""


def render_report(report: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    return render_text(report)
