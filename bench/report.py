"""The report: a table of both systems and their ratio, as text, markdown, PNG and JSON."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .runner import Results
from .scale import Scale

RESULTS_DIR = Path(__file__).parent / "results"
LABELS = {"sqlite": "SQLite (NORMAL)", "sqlite-full": "SQLite (FULL)", "postgres": "PostgreSQL"}


@dataclass
class Row:
    """One line of the table."""

    workload: str
    backend: str
    metric: str
    tenuto: str
    dbos: str
    ratio: str
    target: str
    met: str


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _get(results: Results, variant: str, run: str, system: str) -> dict[str, Any] | None:
    numbers = results.get(variant, {}).get(run, {}).get(system)
    return None if numbers is None or "error" in numbers else numbers


def _error(results: Results, variant: str, run: str, system: str) -> str:
    numbers = results.get(variant, {}).get(run, {}).get(system) or {}
    return "error" if "error" in numbers else "—"


def _compare(
    results: Results,
    variant: str,
    run: str,
    workload: str,
    metric: str,
    key: str,
    target: tuple[str, Callable[[float], bool]] | None,
    other: str = "dbos",
) -> Row | None:
    """A row comparing ``key`` of tenuto and ``other``, ratio tenuto ÷ ``other``."""
    if run not in results.get(variant, {}):
        return None
    t, d = _get(results, variant, run, "tenuto"), _get(results, variant, run, other)
    tv = t[key] if t else None
    dv = d[key] if d else None
    ratio = tv / dv if tv is not None and dv else None
    met = "—"
    if target is not None and ratio is not None:
        met = "yes" if target[1](ratio) else f"**no** ({_shortfall(ratio, target[0])})"
    return Row(
        workload,
        LABELS[variant],
        metric,
        _num(tv) if t else _error(results, variant, run, "tenuto"),
        _num(dv) if d else _error(results, variant, run, other),
        _num(ratio) if ratio is not None else "—",
        target[0] if target else "—",
        met,
    )


def _shortfall(value: float, target: str) -> str:
    """How far ``value`` is from a target written ``≥ N`` or ``≤ N`` (or ``< N``)."""
    bound = float(target.split()[-1].rstrip("x").replace(",", ""))
    if target.startswith("≥"):
        return f"{value / bound:.0%} of it"
    return f"{value / bound:.1f}x the bound"


def _single(
    results: Results,
    variant: str,
    run: str,
    workload: str,
    metric: str,
    fmt: Callable[[dict[str, Any]], str],
    value: Callable[[dict[str, Any]], float] | None = None,
    target: tuple[str, Callable[[float], bool]] | None = None,
    dbos: Callable[[dict[str, Any]], str] | None = None,
) -> Row | None:
    """A row of a tenuto-only measure (DBOS shown only if ``dbos`` formats it)."""
    if run not in results.get(variant, {}):
        return None
    t = _get(results, variant, run, "tenuto")
    d = _get(results, variant, run, "dbos")
    met = "—"
    if t is not None and target is not None and value is not None:
        v = value(t)
        met = "yes" if target[1](v) else f"**no** ({_shortfall(v, target[0])})"
    return Row(
        workload,
        LABELS[variant],
        metric,
        fmt(t) if t else _error(results, variant, run, "tenuto"),
        dbos(d)
        if dbos and d
        else ("n/a" if dbos is None else _error(results, variant, run, "dbos")),
        "—",
        target[0] if target else "—",
        met,
    )


def _pause_ms(x: dict[str, Any]) -> str:
    return f"{x['pause_p50_ms']:.1f} / {x['pause_p99_ms']:.1f}"


def _resume_ms(x: dict[str, Any]) -> str:
    return f"{x['resume_to_next_p50_ms']:.1f} / {x['resume_to_next_p99_ms']:.1f}"


def build_rows(results: Results, scale: Scale) -> list[Row]:
    """Every row of the table, workload by workload, backend by backend."""
    s = scale
    rows: list[Row | None] = []
    variants = list(results)
    for v in variants:
        rows.append(
            _compare(
                results,
                v,
                "a",
                "a",
                f"{s.a_workflows} x 1 activity: workflows/s",
                "workflows_per_s",
                ("≥ 10x", lambda r: r >= 10),
            )
        )
    for v in variants:
        rows.append(
            _compare(
                results,
                v,
                "b",
                "b",
                f"{s.b_workflows} x {s.b_steps} activities: steps/s",
                "steps_per_s",
                ("≥ 10x", lambda r: r >= 10),
            )
        )
    for v in variants:
        bound = 0.5 if v == "postgres" else 0.2

        def within(r: float, b: float = bound) -> bool:
            return r <= b

        rows.append(
            _compare(
                results,
                v,
                "c",
                "c",
                f"1 x {s.c_steps} sequential: ms/step",
                "ms_per_step",
                (f"≤ {bound}x", within),
            )
        )
    for v in variants:

        def drift(x: dict[str, Any]) -> str:
            return (
                f"{x['last_over_first']:.2f} ({x['first_ms_per_step']:.2f} → "
                f"{x['last_ms_per_step']:.2f} ms)"
            )

        rows.append(
            _single(
                results,
                v,
                "d",
                "d",
                f"1 x {s.d_steps}: last {s.d_window} ÷ first {s.d_window} time/step",
                drift,
                lambda x: x["last_over_first"],
                ("≤ 1.5", lambda r: r <= 1.5),
                dbos=drift,
            )
        )
    for v in variants:
        rows.append(
            _single(
                results,
                v,
                "e",
                "e",
                "pause() call p50 / p99, ms (DBOS: cancel_workflow, analogue)",
                _pause_ms,
                dbos=_pause_ms,
            )
        )
        target = ("< 20 ms", lambda r: r < 20) if v == "postgres" else None
        rows.append(
            _single(
                results,
                v,
                "e",
                "e",
                "resume → next activity start p50 / p99, ms (DBOS: resume_workflow, analogue)",
                _resume_ms,
                lambda x: x["resume_to_next_p50_ms"],
                target,
                dbos=_resume_ms,
            )
        )
    for v in variants:
        rows.append(
            _single(
                results,
                v,
                "fg",
                "f",
                f"pause_many over {s.f_instances:,} running, s",
                lambda x: f"{x['pause_many_s']:.3f}",
                lambda x: x["pause_many_s"],
                ("< 2 s", lambda r: r < 2),
            )
        )
        rows.append(
            _single(
                results,
                v,
                "fg",
                "f",
                f"resume_many over {s.f_instances:,} paused, s",
                lambda x: f"{x['resume_many_s']:.3f}",
            )
        )
    for v in variants:
        rows.append(
            _single(
                results,
                v,
                "fg",
                "g",
                f"worker peak RSS, {s.f_instances:,} paused, MB",
                lambda x: f"{x['peak_rss_mb']:.0f} (paused: {x['rss_paused_mb']:.0f})",
                lambda x: x["peak_rss_mb"],
                ("< 300 MB", lambda r: r < 300),
            )
        )
    for v in variants:
        half = ("≥ 0.5x", lambda r: r >= 0.5) if v.startswith("sqlite") else None
        rows.append(
            _compare(
                results,
                v,
                "s",
                "s",
                f"SDK path: {s.s_workflows} x {s.s_steps} activities (durabletask worker and "
                "client), activities/s; DBOS column: durabletask's in-memory backend",
                "activities_per_s",
                half,
                other="memory",
            )
        )
    return [r for r in rows if r is not None]


def machine_info(pg_version: str | None) -> dict[str, Any]:
    """What the numbers were measured on."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tenuto": f"{version('tenuto')} ({commit or 'unknown commit'}, working tree)",
        "dbos": version("dbos"),
        "sqlite": sqlite3.sqlite_version,
        "postgres": pg_version or "not used",
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


COLUMNS = (
    "workload",
    "backend",
    "metric",
    "tenuto",
    "DBOS",
    "ratio (tenuto÷DBOS)",
    "target",
    "met?",
)


def markdown(rows: list[Row], machine: dict[str, Any], scale: Scale, quick: bool) -> str:
    """The markdown report: machine, table, notes."""
    lines = [
        "# tenuto vs DBOS Transact: benchmark results",
        "",
        f"Run `python -m bench {machine.get('argv', '')}`".rstrip()
        + (" (quick: workloads scaled down, targets not meaningful)" if quick else ""),
        "",
        "| machine | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in machine.items() if k != "argv"),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
        *("| " + " | ".join(asdict(r).values()) + " |" for r in rows),
        "",
        "Ratios are tenuto ÷ DBOS: throughput targets want ≥ 10, latency targets want ≤ "
        "the bound. (d)-(g) are tenuto's own targets. DBOS has no pause: (e) shows its "
        "nearest analogue, cancel_workflow / resume_workflow (a stop and a restart from "
        "recorded steps, not a pause), without a ratio; (f) and (g) are tenuto only (n/a). "
        "(e) runs the worker (and DBOS) in a separate process, on every backend. "
        "DBOS on SQLite runs with the same journal mode (WAL) and `synchronous` level as "
        "tenuto in that row; see bench/README.md for its configuration.",
        "",
        f"Scale: `{json.dumps(scale.to_json())}`",
        "",
        "![chart](latest.png)",
        "",
    ]
    return "\n".join(lines)


def text_table(rows: list[Row]) -> str:
    """The table for the terminal."""
    data = [COLUMNS] + [tuple(asdict(r).values()) for r in rows]
    widths = [max(len(str(row[i])) for row in data) for i in range(len(COLUMNS))]
    out = []
    for n, row in enumerate(data):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def chart(results: Results, scale: Scale, path: Path) -> None:
    """A PNG of the main numbers, one panel per workload (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(results)
    labels = [LABELS[v] for v in variants]
    fig, axes = plt.subplots(2, 4, figsize=(18, 8.5))
    panels = axes.flat

    def bars(ax: Any, run: str, key: str, title: str, systems: tuple[str, ...], log: bool) -> None:
        width = 0.8 / len(systems)
        positive = False
        colors = {"tenuto": "#1f77b4", "dbos": "#ff7f0e"}
        for i, system in enumerate(systems):
            vals = []
            for v in variants:
                x = _get(results, v, run, system)
                vals.append(x[key] if x and key in x else 0.0)
            positive = positive or any(v > 0 for v in vals)
            xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(variants))]
            b = ax.bar(
                xs, vals, width, label="DBOS" if system == "dbos" else system, color=colors[system]
            )
            ax.bar_label(
                b, labels=[_num(v).replace(",", "") if v else "" for v in vals], fontsize=7
            )
        ax.set_xticks(range(len(variants)), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        if log and positive:
            ax.set_yscale("log")
        ax.legend(fontsize=8)

    both, alone = ("tenuto", "dbos"), ("tenuto",)
    bars(
        next(panels),
        "a",
        "workflows_per_s",
        f"(a) {scale.a_workflows} x 1 activity: workflows/s",
        both,
        True,
    )
    bars(
        next(panels),
        "b",
        "steps_per_s",
        f"(b) {scale.b_workflows} x {scale.b_steps}: steps/s",
        both,
        True,
    )
    bars(
        next(panels),
        "c",
        "ms_per_step",
        f"(c) 1 x {scale.c_steps}: ms/step (lower is better)",
        both,
        False,
    )
    bars(
        next(panels),
        "d",
        "last_over_first",
        f"(d) 1 x {scale.d_steps}: last/first {scale.d_window} time per step",
        both,
        False,
    )
    bars(next(panels), "e", "pause_p50_ms", "(e) pause() p50, ms (DBOS: cancel)", both, True)
    bars(
        next(panels),
        "e",
        "resume_to_next_p50_ms",
        "(e) resume → next activity p50, ms (DBOS: resume)",
        both,
        True,
    )
    bars(
        next(panels),
        "fg",
        "pause_many_s",
        f"(f) pause_many over {scale.f_instances:,}, s",
        alone,
        False,
    )
    bars(
        next(panels),
        "fg",
        "peak_rss_mb",
        f"(g) worker peak RSS, {scale.f_instances:,} paused, MB",
        alone,
        False,
    )
    fig.suptitle("tenuto vs DBOS Transact (same run, same machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    results: Results,
    scale: Scale,
    quick: bool,
    machine: dict[str, Any],
    out_dir: Path = RESULTS_DIR,
) -> tuple[list[Row], Path]:
    """Write latest.md, latest.png and latest.json into ``out_dir``; the rows and the
    markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = build_rows(results, scale)
    md = out_dir / "latest.md"
    md.write_text(markdown(rows, machine, scale, quick))
    chart(results, scale, out_dir / "latest.png")
    (out_dir / "latest.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "quick": quick,
                "scale": scale.to_json(),
                "results": results,
                "table": [asdict(r) for r in rows],
            },
            indent=2,
            sort_keys=False,
        )
        + "\n"
    )
    return rows, md
