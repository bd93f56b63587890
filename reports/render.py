"""REPORT: render report.html into a run directory, from the run directory alone.

Autoescape is on: prompts, labels and page text are untrusted input. The page uses no CDN
and links images relatively, so the run directory can be zipped and opened anywhere.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, Undefined, select_autoescape
from PIL import Image

from . import charts
from .compare import Side, compare, resolve_side
from .filmstrips import filmstrips
from .history import DEFAULT_STORE, HistoryStore, StoreError
from .images import image_facts
from .records import recorded_steps_path
from .run import load_run
from .stats import FEW_SAMPLES
from .summary import summarize, summary_json


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


# Metric and judge names as the report says them; summary.json and the CSVs keep the names.
WORDS = {
    "click_to_preview_ms": "click to preview",
    "click_to_final_ms": "click to final",
    "click_to_export_ms": "click to export",
    "previews_painted": "previews painted",
    "time_to_recognisable_preview_ms": "time to recognisable preview",
    "generation_speed_index_ms": "generation speed index",
    "pixel_std": "pixel std",
    "clip_score": "CLIP score",
    "same_seed_lpips": "same-seed LPIPS",
    "edit_outside_mask_max": "largest change outside the mask",
}


def in_words(name: str) -> str:
    """A metric or judge name as a person reads it: "time_to_recognisable_preview_ms" → "time to recognisable preview"."""
    return WORDS.get(name) or name.removesuffix("_ms").replace("_", " ").replace(":", ": ")


def fmt_judged(value, name: str) -> str:
    """A judge's value in its unit: times in ms, the rest (probabilities, distances) to 2 decimals."""
    return fmt_ms(value) if name.endswith("_ms") else fmt_num(value, 2)


def missing(value) -> bool:
    """None, NaN or pandas' NA (an empty cell) or a column that older run directories lack."""
    return (
        value is None
        or value is pd.NA
        or isinstance(value, Undefined)
        or (isinstance(value, float) and math.isnan(value))
    )


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("imagejourney.reports", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    env.filters["ms"] = fmt_ms
    env.filters["num"] = fmt_num
    env.filters["usd"] = fmt_usd
    env.filters["words"] = in_words
    env.filters["judged"] = fmt_judged
    env.tests["missing"] = missing
    return env


def write_steps_csv(run) -> None:
    """steps.csv, the audit's step table as a convenience export. A run of record format 1
    wrote its own steps.csv; that file is kept once as steps.recorded.csv, its raw record."""
    steps_csv = run.path / "steps.csv"
    if run.manifest.get("record_format", 1) == 1 and steps_csv.is_file() and not recorded_steps_path(run.path).exists():
        steps_csv.rename(recorded_steps_path(run.path))
    run.steps.to_csv(steps_csv, index=False)


WATERFALLS_DRAWN = 5  # journey runs with a waterfall: those with a failed step first, then in order
FILMSTRIPS_SHOWN = 24  # actions with a filmstrip
SHEET_OPEN = 6  # journey runs whose contact sheet is open; the rest are collapsed (their images load when opened)


def report_charts(run, summary: dict, store: str | None) -> dict:
    """The report's charts (inline SVG + text alternative): distributions, a waterfall per
    journey run, the comparison, and the trend when a history store holds earlier runs."""
    drawn = [j["prompt_id"] for j in summary["journeys"] if j["failed_steps"]][:WATERFALLS_DRAWN]
    drawn += [j["prompt_id"] for j in summary["journeys"] if j["prompt_id"] not in drawn][
        : WATERFALLS_DRAWN - len(drawn)
    ]
    found = {
        "distributions": charts.distributions(run.steps),
        "waterfalls": {prompt_id: charts.waterfall(run.steps, prompt_id) for prompt_id in drawn},
        "waterfalls_left_out": len(summary["journeys"]) - len(drawn),
        "comparison": charts.comparison(summary["comparison"]) if summary.get("comparison") else None,
        "load": charts.load_curve(summary["load"]) if summary.get("load") else None,
        "trend": None,
    }
    if store or os.environ.get("IMAGEJOURNEY_STORE") or Path(DEFAULT_STORE.removeprefix("sqlite:///")).is_file():
        try:
            stored = HistoryStore(store).runs(journey=run.manifest["journey"].get("name"))
        except StoreError:
            stored = []
        points = [
            {
                "run_id": r.run_id,
                "started_at": r.started_at,
                "ttui_p50": r.summary["ttui_ms"]["p50"],
                "generate_final_p50": r.summary["actions"].get("generate", {}).get("click_to_final_ms", {}).get("p50"),
            }
            for r in stored
        ]
        this = run.manifest.get("run_id")
        if this not in {p["run_id"] for p in points}:
            points.append(
                {
                    "run_id": this,
                    "started_at": summary["started_at"],
                    "ttui_p50": summary["ttui"]["p50"],
                    "generate_final_p50": next(
                        (
                            row["metrics"]["click_to_final_ms"]["p50"]
                            for row in summary["action_stats"]
                            if row["action"] == "generate"
                        ),
                        None,
                    ),
                }
            )
        baseline = (summary.get("comparison") or {}).get("baseline")
        found["trend"] = charts.trend(points, this, baseline)
    return found


THUMBNAIL_SIDE = 256  # px


def thumbnail(run_path: Path, image: str | None, side: int) -> str | None:
    """A 256-px WebP of a final larger than that, made once and kept in thumbnails/ of the run
    directory; smaller finals are shown as they are (None)."""
    if not image or side <= THUMBNAIL_SIDE:
        return None
    source = run_path / image
    target = run_path / "thumbnails" / Path(image).with_suffix(".webp")
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target.relative_to(run_path).as_posix()
    with Image.open(source) as opened:
        opened.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        target.parent.mkdir(parents=True, exist_ok=True)
        opened.convert("RGB").save(target, format="WEBP", quality=80)
    return target.relative_to(run_path).as_posix()


def contact_sheet(candidates: list[dict], judgements: pd.DataFrame) -> list[dict]:
    """Candidates grouped per journey run, in the order run, each with what the prompt_match
    judge saw of the attributes its prompt named ("asked red hair · saw blond"; "all seen")."""
    said = judgements[judgements["judge"] == "prompt_match"].dropna(subset=["value"])
    seen = {row.image: str(row.model).split(": ", 1)[-1] for row in said.itertuples()}
    groups: dict[str, list[dict]] = {}
    for candidate in candidates:
        groups.setdefault(candidate["prompt_id"], []).append({**candidate, "seen": seen.get(candidate["image"])})
    return [
        {"prompt_id": prompt_id, "candidates": group, "accepted": sum(c["accepted"] for c in group)}
        for prompt_id, group in groups.items()
    ]


HEADLINE = [
    ("TTUI p50", "ttui_ms", "p50"),
    ("TTUI p95", "ttui_ms", "p95"),
    ("reroll click-to-final p50", "reroll.click_to_final_ms", "p50"),
    ("edit click-to-final p50", "edit.click_to_final_ms", "p50"),
]


def headline(summary: dict) -> dict:
    """The one-minute summary: headline figures, each with its change against the baseline,
    budgets, and one sentence."""
    by_action = {row["action"]: row["metrics"] for row in summary["action_stats"]}
    compared = {m["metric"]: m for m in (summary.get("comparison") or {}).get("metrics", [])}
    items = []
    for label, metric, stat in HEADLINE:
        if metric == "ttui_ms":
            value = summary["ttui"][stat]
        else:
            action, name = metric.split(".")
            value = by_action.get(action, {}).get(name, {}).get(stat)
        if value is None:
            continue
        items.append({"label": label, "value": value, "change": compared.get(metric) if stat == "p50" else None})
    comparison = summary.get("comparison")
    budgets = summary["budgets"]
    breached = [b for b in budgets if not b["ok"]]
    if comparison:
        ttui = compared.get("ttui_ms", {}).get("verdict", "not compared")
        ttui_words = {"no change": "TTUI unchanged", "slower": "TTUI slower", "faster": "TTUI faster"}.get(
            ttui, f"TTUI {ttui}"
        )
        sentence = f"{len(comparison['regressions'])} of {len(comparison['metrics'])} metrics slower than baseline, {ttui_words}"
        worse = comparison.get("quality_regressions", [])
        if comparison.get("quality"):
            sentence += "; quality " + (
                "worse: " + ", ".join(in_words(metric) for metric in worse) if worse else "not worse"
            )
    else:
        sentence = f"{summary['ttui_reached']} of {len(summary['journeys'])} journey runs reached a useful image; not compared with a baseline"
    if budgets:
        sentence += f"; {len(budgets) - len(breached)} of {len(budgets)} budgets held"
    if summary["failures"]:
        sentence += f"; {len(summary['failures'])} failed step(s)"
    return {"items": items, "sentence": sentence + "."}


def render_report(
    run_dir: Path,
    gpu_hour_usd: float | None = None,
    baseline: str | Side | None = None,
    store: str | None = None,
    alpha: float = 0.05,
    min_effect: float = 5.0,
) -> tuple[Path, list[str]]:
    """Audit the run directory (compared with `baseline` when given: a run directory or a
    history-store reference) and write steps.csv, summary.json and report.html into it;
    return the report's path and one sentence per breached budget."""
    run = load_run(run_dir)
    summary = summarize(run, gpu_hour_usd)
    if baseline is not None:
        base = (
            baseline
            if isinstance(baseline, Side)
            else resolve_side(
                str(baseline), store, journey=run.manifest["journey"].get("name"), exclude=run.manifest.get("run_id")
            )
        )
        summary["comparison"] = compare(base, Side(str(run.path), [run]), alpha, min_effect)
    write_steps_csv(run)
    facts = image_facts(run.path, [c["image"] for c in summary["candidates"] if c["image"]])
    for candidate in summary["candidates"]:
        side = facts[candidate["image"]]["side"] if candidate["image"] else 0
        candidate["thumbnail"] = thumbnail(run.path, candidate["image"], side)
    (run.path / "summary.json").write_text(json.dumps(summary_json(summary), indent=2, allow_nan=False))
    html = (
        environment()
        .get_template("report.html.j2")
        .render(
            summary=summary,
            run_dir=run.path.name,
            few=FEW_SAMPLES,
            charts=report_charts(run, summary, store),
            filmstrips=filmstrips(run, FILMSTRIPS_SHOWN),
            headline=headline(summary),
            sheet_open=SHEET_OPEN,
            sheet=contact_sheet(summary["candidates"], run.judgements),
        )
    )
    out = run.path / "report.html"
    out.write_text(html)
    breaches = [
        f"{b['budget']} = {fmt_ms(b['value_ms'])} > {fmt_ms(b['limit_ms'])} (N={b['n']}, {run.manifest['journey']['name']})"
        for b in summary["budgets"]
        if not b["ok"]
    ]
    return out, breaches


BUNDLED_FILES = ("report.html", "summary.json", "steps.csv", "judgements.csv", "labels.csv", "manifest.json")
BUNDLED_DIRS = ("images", "thumbnails")


def write_bundle(run_dir: Path, with_traces: bool = False) -> Path:
    """One zip of the rendered report and what it shows (images, thumbnails, steps.csv,
    summary.json, judgements and labels when present), which opens anywhere once unzipped;
    traces only when asked (they are large). Written next to the run directory."""
    run_dir = Path(run_dir)
    target = run_dir.parent / f"{run_dir.name}-report.zip"
    dirs = BUNDLED_DIRS + (("traces",) if with_traces else ())
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in BUNDLED_FILES:
            if (run_dir / name).is_file():
                bundle.write(run_dir / name, f"{run_dir.name}/{name}")
        for folder in dirs:
            for path in sorted((run_dir / folder).rglob("*")):
                if path.is_file() and not path.is_symlink():
                    bundle.write(path, f"{run_dir.name}/{path.relative_to(run_dir).as_posix()}")
    return target
