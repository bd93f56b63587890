"""REPORT: render report.html into a run directory, from the run directory alone.

Autoescape is on: prompts, labels and page text are untrusted input. The page uses no CDN
and links images relatively, so the run directory can be zipped and opened anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

from jinja2 import Environment, PackageLoader, Undefined, select_autoescape

from .audit import FEW_SAMPLES, load_run, summarize


def fmt_ms(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.0f} ms" if abs(value) >= 100 else f"{value:.1f} ms"


def fmt_num(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def missing(value) -> bool:
    """None, NaN (an empty CSV cell) or a column that older run directories lack."""
    return value is None or isinstance(value, Undefined) or (isinstance(value, float) and math.isnan(value))


def environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["ms"] = fmt_ms
    env.filters["num"] = fmt_num
    env.tests["missing"] = missing
    return env


def render_report(run_dir: Path) -> tuple[Path, list[str]]:
    """Write report.html; return its path and one sentence per breached budget."""
    run = load_run(run_dir)
    summary = summarize(run)
    html = environment().get_template("report.html.j2").render(summary=summary, run_dir=run.path.name, few=FEW_SAMPLES)
    out = run.path / "report.html"
    out.write_text(html)
    breaches = [
        f"{b['budget']} = {fmt_ms(b['value_ms'])} > {fmt_ms(b['limit_ms'])} (N={b['n']}, {run.manifest['journey']['name']})"
        for b in summary["budgets"] if not b["ok"]
    ]
    return out, breaches
