"""REPORT: render report.html into a run directory, from the run directory alone.

Autoescape is on: prompts, labels and page text are untrusted input. The page uses no CDN
and links images relatively, so the run directory can be zipped and opened anywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, Undefined, select_autoescape

from .audit import FEW_SAMPLES, load_run, summarize, summary_json
from .compare import Side, compare, resolve_side
from .records import recorded_steps_path


def fmt_ms(value) -> str:
    if missing(value):
        return "—"
    return f"{value:,.0f} ms" if abs(value) >= 100 else f"{value:.1f} ms"


def fmt_num(value, digits: int = 1) -> str:
    if missing(value):
        return "—"
    return f"{value:.{digits}f}"


def fmt_usd(value) -> str:
    if missing(value):
        return "—"
    return f"${value:.3g}" if value < 1 else f"${value:,.2f}"


def missing(value) -> bool:
    """None, NaN or pandas' NA (an empty cell) or a column that older run directories lack."""
    return (value is None or value is pd.NA or isinstance(value, Undefined)
            or (isinstance(value, float) and math.isnan(value)))


def environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["ms"] = fmt_ms
    env.filters["num"] = fmt_num
    env.filters["usd"] = fmt_usd
    env.tests["missing"] = missing
    return env


def write_steps_csv(run) -> None:
    """steps.csv, the audit's step table as a convenience export. A run of record format 1
    wrote its own steps.csv; that file is kept once as steps.recorded.csv, its raw record."""
    steps_csv = run.path / "steps.csv"
    if run.manifest.get("record_format", 1) == 1 and steps_csv.is_file() and not recorded_steps_path(run.path).exists():
        steps_csv.rename(recorded_steps_path(run.path))
    run.steps.to_csv(steps_csv, index=False)


def render_report(run_dir: Path, gpu_hour_usd: float | None = None, baseline: str | None = None, store: str | None = None,
                  alpha: float = 0.05, min_effect: float = 5.0) -> tuple[Path, list[str]]:
    """Audit the run directory (compared with `baseline` when given: a run directory or a
    history-store reference) and write steps.csv, summary.json and report.html into it;
    return the report's path and one sentence per breached budget."""
    run = load_run(run_dir)
    summary = summarize(run, gpu_hour_usd)
    if baseline is not None:
        base = resolve_side(str(baseline), store, journey=run.manifest["journey"].get("name"), exclude=run.manifest.get("run_id"))
        summary["comparison"] = compare(base, Side(str(run.path), [run]), alpha, min_effect)
    write_steps_csv(run)
    (run.path / "summary.json").write_text(json.dumps(summary_json(summary), indent=2, allow_nan=False))
    html = environment().get_template("report.html.j2").render(summary=summary, run_dir=run.path.name, few=FEW_SAMPLES)
    out = run.path / "report.html"
    out.write_text(html)
    breaches = [
        f"{b['budget']} = {fmt_ms(b['value_ms'])} > {fmt_ms(b['limit_ms'])} (N={b['n']}, {run.manifest['journey']['name']})"
        for b in summary["budgets"] if not b["ok"]
    ]
    return out, breaches
