"""Render the benchmark results as a Markdown table (readable in a terminal, pasteable into RESULTS.md)."""

from __future__ import annotations

from typing import Any

from bench.measure import Row


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def render_table(header: dict[str, Any], rows: list[Row]) -> str:
    by_work = {(r.work, r.tables): r for r in rows}
    lines = [
        f"date: {header['date']}; PostgreSQL {header['postgresql']}; pgwarden {header['pgwarden_commit']}",
        f"machine: {header['machine']}",
        f"command: {header['command']}",
        "sizes: "
        + "; ".join(f"{s['tables']} tables in {s['schemas']} schemas {s['objects']}" for s in header["sizes"]),
        "",
        "| work | tables | median s | x floor | statements | server SQL s | peak MB | runs | goal | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.work} | {row.tables} | - | - | - | - | - | 0 | {row.goal} | {row.skipped} |")
            continue
        floor = by_work.get((row.floor, row.tables)) if row.floor else None
        ratio = row.seconds / floor.seconds if floor and floor.seconds and row.seconds is not None else None
        lines.append(
            "| {work} | {tables} | {sec} | {ratio} | {stm} | {sql} | {mem} | {runs} | {goal} | {note} |".format(
                work=row.work,
                tables=row.tables,
                sec=_fmt(row.seconds, ".3f"),
                ratio=_fmt(ratio, ".1f"),
                stm="" if row.statements is None else row.statements,
                sql=_fmt(row.sql_seconds, ".3f"),
                mem=_fmt(row.max_rss_mb, ".0f"),
                runs=len(row.samples),
                goal=row.goal,
                note=row.note.replace("|", "/"),
            )
        )
    lines.append(f"\ntotal bench time {header['total_seconds']} s (includes building missing databases)")
    return "\n".join(lines)
