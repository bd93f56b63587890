"""Charts for the report: inline SVG drawn by matplotlib (its SVG backend), no network.

matplotlib rather than hand-drawn SVG: axes, ticks, legends and text layout are its job, and
its SVG output keeps text as text (`svg.fonttype: none`), so it stays small, searchable and
readable by screen readers. Every chart has a title, axis labels with units and a text
alternative (`Chart.alt`); series differ by marker shape and label as well as colour.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",
        "svg.hashsalt": "imagejourney",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
ACTIONS = ("generate", "reroll", "edit", "repeat")
COLOURS = {"click_to_preview_ms": "#1a5fb4", "click_to_final_ms": "#c64600"}
MARKERS = {"click_to_preview_ms": "o", "click_to_final_ms": "s"}
STRIP_POINTS = 300  # per row: more points hide each other; the box summarises every sample


@dataclass
class Chart:
    svg: str
    alt: str  # the text alternative: what the chart shows, in words


def to_svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF about the file, not the chart
    return text[text.index("<svg") :]  # inline: no XML prolog or doctype


def distributions(steps: pd.DataFrame) -> Chart | None:
    """Click to preview and click to final per action: each action a strip of every sample
    over a box (median, quartiles), N in the label."""
    ok = steps[(steps["status"] == "ok") & steps["action"].isin(ACTIONS)]
    rows = [
        (action, metric, ok.loc[ok["action"] == action, metric].dropna().to_numpy(float))
        for action in ACTIONS
        for metric in ("click_to_preview_ms", "click_to_final_ms")
    ]
    rows = [r for r in rows if len(r[2])]
    if not rows:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.0))
    rng = np.random.default_rng(0)
    for y, (_action, metric, values) in enumerate(rows):
        axes.boxplot(
            values,
            positions=[y],
            orientation="horizontal",
            widths=0.5,
            showfliers=False,
            medianprops={"color": "#1d1d1f"},
            boxprops={"color": "#888"},
            whiskerprops={"color": "#888"},
            capprops={"color": "#888"},
        )
        shown = values if len(values) <= STRIP_POINTS else rng.choice(values, STRIP_POINTS, replace=False)
        axes.scatter(
            shown,
            y + rng.uniform(-0.15, 0.15, len(shown)),
            s=14,
            alpha=0.75,
            color=COLOURS[metric],
            marker=MARKERS[metric],
            zorder=3,
        )
    axes.set_yticks(
        range(len(rows)), [f"{a} · {m.removeprefix('click_to_').removesuffix('_ms')} (N={len(v)})" for a, m, v in rows]
    )
    axes.invert_yaxis()
    axes.set_xlabel("ms after the click (page timeline)")
    axes.set_title("Click to preview (circles) and click to final (squares), per action")
    axes.set_xlim(left=0)
    medians = "; ".join(
        f"{a} {m.removeprefix('click_to_').removesuffix('_ms')} median {np.median(v):.0f} ms (N={len(v)})"
        for a, m, v in rows
    )
    sampled = (
        " Each strip shows at most 300 samples, drawn at random; the boxes use every sample."
        if any(len(v) > STRIP_POINTS for _, _, v in rows)
        else ""
    )
    return Chart(to_svg(figure), f"Distribution of click-to-preview and click-to-final per action: {medians}.{sampled}")


WATERFALL_PARTS = [  # (name, start column, end column, colour, hatch)
    ("to the server", "click_ts_ms", "server_received_ts_ms", "#c0bfbc", ""),
    ("queue", "server_received_ts_ms", "server_inference_start_ts_ms", "#e5a50a", "//"),
    ("inference", "server_inference_start_ts_ms", "server_final_ts_ms", "#1a5fb4", ""),
    ("delivery", "server_final_ts_ms", "final_paint_ts_ms", "#26a269", ".."),
]


def waterfall(steps: pd.DataFrame, prompt_id: str) -> Chart | None:
    """One journey run, one row per step: click → request received → queue → inference →
    final produced → final painted (from the server's times where it gives them, else one
    bar click → final), the first preview as a tick, gaps (think time, the harness) left
    blank, failed steps marked ✕."""
    mine = steps[steps["prompt_id"] == prompt_id].sort_values("step_index")
    timed = mine[mine["click_ts_ms"].notna()]
    if timed.empty:
        return None
    origin = float(timed["click_ts_ms"].min())
    figure, axes = plt.subplots(figsize=(7.5, 0.42 * len(mine) + 1.2))
    used = set()
    labels = []
    reached = 0.0  # where the journey run had got to: a failed step with no click is drawn there, not at 0 ms
    for y, (_, step) in enumerate(mine.iterrows()):
        labels.append(f"{int(step['step_index'])}: {step['action']}")
        ends = [step[c] - origin for c in ("final_paint_ts_ms", "click_ts_ms") if not pd.isna(step[c])]
        if step["action"] == "export" and not pd.isna(step["click_to_export_ms"]):
            ends.append(step["click_ts_ms"] - origin + step["click_to_export_ms"])
        if step["status"] != "ok":
            x = (step["click_ts_ms"] - origin) if not pd.isna(step["click_ts_ms"]) else reached
            axes.scatter(
                [x],
                [y],
                marker="x",
                color="#c01c28",
                s=50,
                zorder=4,
                label="failed step" if "failed" not in used else None,
            )
            used.add("failed")
            reached = max([reached, *ends])
            continue
        reached = max([reached, *ends])
        if step["action"] == "export":
            axes.barh(
                y,
                step["click_to_export_ms"],
                left=step["click_ts_ms"] - origin,
                color="#613583",
                height=0.5,
                label="export (click → file saved)" if "export" not in used else None,
            )
            used.add("export")
            continue
        parts = [
            (name, step[a], step[b], colour, hatch)
            for name, a, b, colour, hatch in WATERFALL_PARTS
            if not pd.isna(step[a]) and not pd.isna(step[b])
        ]
        if not parts:
            parts = [("click → final paint", step["click_ts_ms"], step["final_paint_ts_ms"], "#5e5c64", "")]
        for name, start, end, colour, hatch in parts:
            axes.barh(
                y,
                end - start,
                left=start - origin,
                color=colour,
                hatch=hatch,
                height=0.5,
                edgecolor="white",
                label=name if name not in used else None,
            )
            used.add(name)
        if not pd.isna(step["first_preview_paint_ts_ms"]):
            axes.scatter(
                [step["first_preview_paint_ts_ms"] - origin],
                [y],
                marker="|",
                s=160,
                color="#1d1d1f",
                zorder=4,
                label="first preview painted" if "preview" not in used else None,
            )
            used.add("preview")
    axes.set_yticks(range(len(labels)), labels)
    axes.invert_yaxis()
    axes.set_xlabel("ms since the journey run's first click")
    axes.set_title(f"Waterfall of journey run {prompt_id}")
    axes.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.5 / max(len(mine), 2) - 0.12), ncol=4, fontsize=7, frameon=False
    )
    total = float(timed[["final_paint_ts_ms", "click_ts_ms"]].max().max()) - origin
    failed = int((mine["status"] != "ok").sum())
    return Chart(
        to_svg(figure),
        f"Waterfall of journey run {prompt_id}: {len(mine)} steps over {total:.0f} ms"
        f"{f', {failed} failed' if failed else ''}; bars split the time after each click into "
        "the way to the server, queue, inference and delivery where the server reports them.",
    )


def comparison(result: dict) -> Chart | None:
    """Per metric, the ratio NEW/BASELINE of medians with its 95 % interval; a line at 1."""
    rows = [m for m in result["metrics"] if m["ci_low"] is not None]
    if not rows:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.2))
    style = {"slower": ("#c01c28", "^"), "faster": ("#26a269", "v"), "no change": ("#5e5c64", "o")}
    used = set()
    for y, m in enumerate(rows):
        colour, marker = style[m["verdict"]]
        axes.errorbar(
            [m["ratio"]],
            [y],
            xerr=[[m["ratio"] - m["ci_low"]], [m["ci_high"] - m["ratio"]]],
            fmt=marker,
            color=colour,
            capsize=3,
            label=m["verdict"] if m["verdict"] not in used else None,
        )
        used.add(m["verdict"])
    axes.axvline(1.0, color="#1d1d1f", linewidth=0.8)
    axes.set_yticks(range(len(rows)), [m["metric"] for m in rows])
    axes.invert_yaxis()
    axes.set_xlabel("new median ÷ baseline median (95 % interval); right of 1 is slower")
    axes.set_title("Compared with the baseline")
    axes.legend(loc="lower right", fontsize=7, frameon=False)
    slower = [m["metric"] for m in rows if m["verdict"] == "slower"]
    return Chart(
        to_svg(figure),
        f"Ratios of medians against the baseline for {len(rows)} metrics; "
        f"{len(slower)} slower{': ' + ', '.join(slower) if slower else ''}.",
    )


def trend(points: list[dict], this_run: str, baseline: str | None) -> Chart | None:
    """Headline metrics over the stored nights: TTUI p50 and generate click-to-final p50, this
    run and the baseline marked."""
    if len(points) < 2:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 2.8))
    x = np.arange(len(points))
    for key, label, marker in (
        ("ttui_p50", "TTUI p50", "o"),
        ("generate_final_p50", "generate click-to-final p50", "s"),
    ):
        values = [np.nan if p[key] is None else p[key] for p in points]
        axes.plot(x, values, marker=marker, label=label)
    for i, p in enumerate(points):
        if p["run_id"] == this_run:
            axes.axvline(i, color="#1a5fb4", linestyle="--", linewidth=0.8)
            axes.annotate("this run", (i, axes.get_ylim()[1]), fontsize=7, ha="center", va="bottom")
        if p["run_id"] == baseline:
            axes.axvline(i, color="#5e5c64", linestyle=":", linewidth=0.8)
            axes.annotate("baseline", (i, axes.get_ylim()[0]), fontsize=7, ha="center", va="top")
    axes.set_xticks(x, [p["started_at"][:10] if p["started_at"] else "?" for p in points], rotation=30, fontsize=7)
    axes.set_ylabel("ms")
    axes.set_xlabel("stored runs of this journey, oldest first")
    axes.set_title("Trend over the history store")
    axes.legend(fontsize=7, frameon=False)
    return Chart(to_svg(figure), f"Trend of TTUI p50 and generate click-to-final p50 over {len(points)} stored runs.")


def load_curve(load: dict) -> Chart | None:
    """The sweep (--creators 1,2,4,8): click-to-final p50/p95 and queue wait p50 against the
    number of creators (left), throughput in finals per minute (right): where the knee is."""
    levels = [level for level in load["sweep"] if level["click_to_final_ms"]["n"]]
    if not levels:
        return None
    x = [level["creators"] for level in levels]
    figure, (times, rate) = plt.subplots(1, 2, figsize=(7.5, 2.8))
    for key, part, label, marker in (
        ("click_to_final_ms", "p50", "click-to-final p50", "s"),
        ("click_to_final_ms", "p95", "click-to-final p95", "^"),
        ("queue_wait_ms", "p50", "queue wait p50", "o"),
    ):
        values = [np.nan if level[key][part] is None else level[key][part] for level in levels]
        times.plot(x, values, marker=marker, label=label)
    times.set_xlabel("creators at once")
    times.set_ylabel("ms")
    times.set_ylim(bottom=0)
    times.legend(fontsize=7, frameon=False)
    times.set_title("Time per action")
    rate.plot(x, [level["throughput_finals_per_min"] or np.nan for level in levels], marker="D", color="#26a269")
    rate.set_xlabel("creators at once")
    rate.set_ylabel("finals per minute")
    rate.set_ylim(bottom=0)
    rate.set_title("Throughput")
    for axes in (times, rate):
        axes.set_xticks(x)
    points = "; ".join(
        f"{level['creators']} creators: click-to-final p50 {level['click_to_final_ms']['p50']:.0f} ms, "
        f"p95 {level['click_to_final_ms']['p95']:.0f} ms, {level['throughput_finals_per_min'] or 0:.1f} finals/min"
        for level in levels
    )
    return Chart(to_svg(figure), f"Click-to-final and throughput against the number of creators at once: {points}.")
