"""The scale bench's report: ``results/scale.json`` and ``results/scale.md``, goals marked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .report import machine_info

LIST_P99_MS = 10.0
COUNT_P99_MS = 50.0
BULK_PER_S = 50_000.0
WITHIN = 0.10
BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _mark(ok: bool, shortfall: str = "") -> str:
    return "yes" if ok else f"**no**{f' ({shortfall})' if shortfall else ''}"


def rows(result: dict[str, Any]) -> list[list[str]]:
    """The table rows of one (backend, size) run."""
    where = f"{BACKENDS[result['backend']]} {result['size']}"
    out: list[list[str]] = []
    for label, entry in result.get("queries", {}).items():
        is_count = label.startswith("count")
        bound = COUNT_P99_MS if is_count else LIST_P99_MS
        for page in ("first", "cursor"):
            if page not in entry:
                continue
            x = entry[page]
            what = (
                label
                if is_count
                else f"query {label}" + (", next page" if page == "cursor" else "")
            )
            out.append(
                [
                    where,
                    what,
                    f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms",
                    f"p99 < {bound:g} ms",
                    _mark(x["p99_ms"] < bound, f"{x['p99_ms'] / bound:.1f}x the bound"),
                ]
            )
    if "dashboard" in result:
        d = result["dashboard"]
        out.append(
            [
                where,
                "dashboard first load (3 requests)",
                f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms",
                "—",
                "—",
            ]
        )
    for op, x in result.get("bulk", {}).items():
        out.append(
            [
                where,
                f"{op} ({x['count']:,})",
                f"{x['seconds']:.2f} s = {x['per_s']:,.0f}/s",
                f"≥ {BULK_PER_S:,.0f}/s",
                _mark(x["per_s"] >= BULK_PER_S, f"{BULK_PER_S / max(x['per_s'], 1):.1f}x too slow"),
            ]
        )
    empty, full = result.get("empty_worker"), result.get("full_worker")
    if empty and full:
        for key, label, higher_better in (
            ("first_activity_p50_ms", "start → first activity p50", False),
            ("first_activity_p99_ms", "start → first activity p99", False),
            ("steps_per_s", "throughput, 200 x 5 activities (steps/s)", True),
        ):
            e, f = empty[key], full[key]
            ratio = f / e if e else float("nan")
            ok = ratio >= 1 - WITHIN if higher_better else ratio <= 1 + WITHIN
            unit = "" if higher_better else " ms"
            out.append(
                [
                    where,
                    f"{label}: full store vs empty",
                    f"{f:,.1f}{unit} vs {e:,.1f}{unit} ({ratio:.2f}x)",
                    "within 10%",
                    _mark(ok),
                ]
            )
    if "idle_cpu" in result:
        out.append([where, "idle worker CPU", f"{result['idle_cpu']:.2%} of a core", "—", "—"])
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| store | measured | p50 / p99 or value | goal | met? |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for r in rows(result):
            lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def write(results: list[dict[str, Any]], folder: Path, argv: str) -> None:
    machine = machine_info(None)
    machine["argv"] = argv
    machine["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (folder / "scale.json").write_text(
        json.dumps({"machine": machine, "results": results}, indent=1)
    )
    head = [
        "# tenuto at scale: stores of 100k and 1M instances",
        "",
        f"Run `python -m bench {argv}` ({machine['date']}, {machine.get('cpus')} CPUs).",
        "",
        "Populated stores: 10% RUNNING (the bulk-operation targets, orchestrator `waiter`), "
        "and of the rest 75% COMPLETED, 5% FAILED, 3% TERMINATED, 11% PAUSED, 6% PENDING; "
        "1-13 history events each; created over 60 days. Times are p50 / p99 of 40 calls "
        "(`limit=50`) after 3 warm-up calls.",
        "",
    ]
    for r in results:
        p = r.get("populate", {})
        if p:
            head.append(
                f"- {BACKENDS[r['backend']]} {r['size']}: {p['instances']:,} instances, "
                f"{p['history_rows']:,} history rows, built in {p['populate_s']:.0f} s"
            )
    (folder / "scale.md").write_text("\n".join(head) + "\n\n" + table(results) + "\n")
