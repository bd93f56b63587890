"""COMPARE: is the new run slower than the baseline, or is that noise? (DESIGN.md "verdict")

In the spirit of Go's benchstat: per metric, the median of each side, the ratio NEW/BASELINE
with a bootstrap 95 % confidence interval, and a Mann–Whitney U p-value. A change is called
`slower` or `faster` only when it is significant at `alpha`, at least `min_effect` percent, and
its confidence interval lies on one side of 1;
otherwise `no change`, or `too few samples` below MIN_SAMPLES per side. Every sample comes
from the run directories' step tables (the audit), never from their HTML.

Where the baseline median is under 1 ms, or the ratio is over 10×, the change is shown as an
absolute difference of medians ("+149.9 ms") with its own bootstrap interval: a percentage of
a near-zero baseline says nothing a person can use.

Quality gets verdicts too (`better`, `worse`, `no change`, `too few samples`): the acceptance
rate of the candidate finals (two proportions, Fisher's exact test) and their prompt match
(Mann–Whitney U). A quality change is called only when p < `alpha`, it is at least
`min_effect` points on the 0–100 scale, and its bootstrap 95 % interval lies on one side of 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, mannwhitneyu

from .audits.acceptance import journey_runs, judge_candidates
from .run import CANDIDATE_ACTIONS, Run, load_run

MIN_SAMPLES = 6  # per side: fewer give no usable confidence interval (benchstat's rule too)
BOOTSTRAP_RESAMPLES = 2000
ACTION_METRICS = {
    "generate": ("click_to_preview_ms", "click_to_final_ms"),
    "reroll": ("click_to_preview_ms", "click_to_final_ms"),
    "edit": ("click_to_preview_ms", "click_to_final_ms"),
    "repeat": ("click_to_final_ms",),
    "export": ("click_to_export_ms",),
}
# The conditions that must match for two runs to be comparable, and where the manifest keeps them.
COMPARABLE = {
    "journey pack": ("journey", "name"),
    "journey settings": ("journey", "settings"),
    "steps": ("journey", "steps"),
    "UI profile": ("ui_profile", "name"),
    "model": ("model", "model"),
    "device": ("model", "device"),
    "dtype": ("model", "dtype"),
    "sampler": ("model", "sampler"),
    "app defaults (steps, size)": ("model", "defaults"),
    "fault injection": ("model", "faults"),
    "browser version": ("browser", "version"),
    "CPU": ("hardware", "cpu"),
    "GPU": ("hardware", "gpu"),
}


class CompareError(Exception):
    """One sentence: why the two sides cannot be compared."""


@dataclass
class Side:
    name: str
    runs: list[Run]

    @property
    def manifest(self) -> dict:
        return self.runs[-1].manifest


def samples(side: Side) -> dict[str, np.ndarray]:
    """metric → every sample of it on this side (runs pooled)."""
    found: dict[str, list[float]] = {}
    for run in side.runs:
        ok = run.steps[run.steps["status"] == "ok"]
        for action, metrics in ACTION_METRICS.items():
            rows = ok[ok["action"] == action]
            for metric in metrics:
                found.setdefault(f"{action}.{metric}", []).extend(rows[metric].dropna().tolist())
        images = ok[ok["action"].isin(CANDIDATE_ACTIONS) & ok["server_final_ts_ms"].notna()]
        for action, rows in images.groupby("action"):
            parts = {
                "queue_wait_ms": rows["server_inference_start_ts_ms"] - rows["server_received_ts_ms"],
                "inference_ms": rows["server_final_ts_ms"] - rows["server_inference_start_ts_ms"],
                "delivery_ms": rows["delivery_ms"],
            }
            for part, values in parts.items():
                found.setdefault(f"{action}.{part}", []).extend(values.dropna().tolist())
        ttui = [j["ttui_ms"] for j in journey_runs(run, judge_candidates(run)) if j["ttui_ms"] is not None]
        found.setdefault("ttui_ms", []).extend(ttui)
    return {metric: np.asarray(values, dtype=float) for metric, values in found.items() if values}


ABSOLUTE_BELOW_MS = 1.0  # a baseline median under this: the change is shown in ms, not in percent
ABSOLUTE_OVER_RATIO = 10.0  # a ratio over this: the same


def bootstrap_difference_ci(
    base: np.ndarray, new: np.ndarray, seed: int = 0, statistic=np.median
) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of statistic(new) − statistic(base), each side resampled."""
    rng = np.random.default_rng(seed)
    b = statistic(rng.choice(base, (BOOTSTRAP_RESAMPLES, len(base))), axis=1)
    n = statistic(rng.choice(new, (BOOTSTRAP_RESAMPLES, len(new))), axis=1)
    low, high = np.percentile(n - b, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_ratio_ci(base: np.ndarray, new: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of median(new) / median(base), each side resampled."""
    rng = np.random.default_rng(seed)
    b = np.median(rng.choice(base, (BOOTSTRAP_RESAMPLES, len(base))), axis=1)
    n = np.median(rng.choice(new, (BOOTSTRAP_RESAMPLES, len(new))), axis=1)
    ratios = n / np.where(b == 0, np.nan, b)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def compare_metric(metric: str, base: np.ndarray, new: np.ndarray, alpha: float, min_effect: float) -> dict:
    row: dict[str, Any] = {
        "metric": metric,
        "baseline": {"n": len(base), "median": float(np.median(base))},
        "new": {"n": len(new), "median": float(np.median(new))},
        "ratio": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "verdict": "too few samples",
        "difference_ms": float(np.median(new) - np.median(base)),
        "difference_ci_low_ms": None,
        "difference_ci_high_ms": None,
        "change_shown_as": "percent",
    }
    if row["baseline"]["median"] > 0:
        row["ratio"] = row["new"]["median"] / row["baseline"]["median"]
    if row["baseline"]["median"] < ABSOLUTE_BELOW_MS or (row["ratio"] or 0) > ABSOLUTE_OVER_RATIO:
        row["change_shown_as"] = "absolute"
    if min(len(base), len(new)) < MIN_SAMPLES or row["ratio"] is None:
        return row
    row["difference_ci_low_ms"], row["difference_ci_high_ms"] = bootstrap_difference_ci(base, new)
    row["ci_low"], row["ci_high"] = bootstrap_ratio_ci(base, new)
    row["p_value"] = float(mannwhitneyu(new, base, alternative="two-sided").pvalue)
    change = abs(row["ratio"] - 1) * 100
    ci_excludes_one = row["ci_low"] > 1 or row["ci_high"] < 1
    if row["p_value"] < alpha and change >= min_effect and ci_excludes_one:
        row["verdict"] = "slower" if row["ratio"] > 1 else "faster"
    else:
        row["verdict"] = "no change"
    return row


QUALITY_METRICS = {
    "acceptance_rate": "Fisher's exact test",
    "prompt_match": "Mann–Whitney U",
}
NOT_JUDGED = ("not judged", "not judged (image missing)")


def quality_samples(side: Side) -> dict[str, np.ndarray]:
    """acceptance_rate → 1 / 0 per candidate final that was judged (a final whose rule had no
    value is left out, not counted as a rejection); prompt_match → each candidate's value."""
    accepted: list[float] = []
    matches: list[float] = []
    for run in side.runs:
        candidates = judge_candidates(run)
        judged = candidates[~candidates["verdict"].isin(NOT_JUDGED)]
        accepted += judged["accepted"].astype(float).tolist()
        matches += [j["prompt_match"] for j in candidates["judges"] if j.get("prompt_match") is not None]
    found = {"acceptance_rate": accepted, "prompt_match": matches}
    return {metric: np.asarray(values, dtype=float) for metric, values in found.items() if values}


def compare_quality(metric: str, base: np.ndarray, new: np.ndarray, alpha: float, min_effect: float) -> dict:
    """One quality metric: the acceptance rate (a share of 1 / 0 samples, Fisher's exact test on
    the 2 × 2 table) or prompt match (its mean, Mann–Whitney U on the values); the difference
    new − baseline with a bootstrap 95 % interval. Higher is better for both."""
    row: dict[str, Any] = {
        "metric": metric,
        "test": QUALITY_METRICS[metric],
        "baseline": {"n": len(base), "mean": float(np.mean(base)), "median": float(np.median(base))},
        "new": {"n": len(new), "mean": float(np.mean(new)), "median": float(np.median(new))},
        "difference": float(np.mean(new) - np.mean(base)),
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "verdict": "too few samples",
    }
    if min(len(base), len(new)) < MIN_SAMPLES:
        return row
    row["ci_low"], row["ci_high"] = bootstrap_difference_ci(base, new, statistic=np.mean)
    if metric == "acceptance_rate":
        table = [[int(new.sum()), int(len(new) - new.sum())], [int(base.sum()), int(len(base) - base.sum())]]
        row["p_value"] = float(fisher_exact(table, alternative="two-sided").pvalue)
    elif np.ptp(np.concatenate([base, new])) == 0:
        row["p_value"] = 1.0  # every value the same: nothing to rank
    else:
        row["p_value"] = float(mannwhitneyu(new, base, alternative="two-sided").pvalue)
    excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
    if row["p_value"] < alpha and abs(row["difference"]) * 100 >= min_effect and excludes_zero:
        row["verdict"] = "better" if row["difference"] > 0 else "worse"
    else:
        row["verdict"] = "no change"
    return row


def metric_order(metric: str) -> tuple:
    """TTUI first, then per action (in journey order) the creator's metrics before the server's parts."""
    action, _, name = metric.partition(".")
    actions = ["ttui_ms", *ACTION_METRICS]
    names = [
        "click_to_preview_ms",
        "click_to_final_ms",
        "click_to_export_ms",
        "queue_wait_ms",
        "inference_ms",
        "delivery_ms",
    ]
    return (actions.index(action) if action in actions else 99, names.index(name) if name in names else 99)


def incomparable(base: dict, new: dict) -> list[str]:
    """One line per condition that differs between the two sides' manifests."""
    differences = []
    for name, (section, key) in COMPARABLE.items():
        a, b = (base.get(section) or {}).get(key), (new.get(section) or {}).get(key)
        if a != b:
            differences.append(f"{name} differs: baseline {short(a)}, new {short(b)}")
    return differences


def short(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def compare(baseline: Side, new: Side, alpha: float = 0.05, min_effect: float = 5.0) -> dict:
    base_samples, new_samples = samples(baseline), samples(new)
    common = sorted((m for m in base_samples if m in new_samples), key=metric_order)
    metrics = [compare_metric(m, base_samples[m], new_samples[m], alpha, min_effect) for m in common]
    for m in metrics:  # the change in words, for a page that shows it (percent, or ms near zero)
        m["change_text"] = None if m["ci_low"] is None else change_text(m)
    if not metrics:
        raise CompareError(
            f"{baseline.name} and {new.name} share no measured metric (different journeys, or nothing "
            "succeeded on one side); compare runs of the same journey pack"
        )
    base_quality, new_quality = quality_samples(baseline), quality_samples(new)
    quality = [
        compare_quality(m, base_quality[m], new_quality[m], alpha, min_effect)
        for m in QUALITY_METRICS
        if m in base_quality and m in new_quality
    ]
    for q in quality:
        q["change_text"] = None if q["ci_low"] is None else quality_change_text(q)
    only = sorted(set(base_samples) ^ set(new_samples)) + sorted(set(base_quality) ^ set(new_quality))
    warnings = incomparable(baseline.manifest, new.manifest)
    if only:
        warnings.append(f"metrics on one side only (not compared): {', '.join(only)}")
    return {
        "baseline": baseline.name,
        "new": new.name,
        "drift_vs_baseline": drift(new),
        "alpha": alpha,
        "min_effect_percent": min_effect,
        "min_samples": MIN_SAMPLES,
        "regressions": [m["metric"] for m in metrics if m["verdict"] == "slower"],
        "metrics": metrics,
        "quality": quality,
        "quality_regressions": [q["metric"] for q in quality if q["verdict"] == "worse"],
        "warnings": warnings,
    }


def drift(side: Side) -> dict | None:
    """LPIPS of the new finals against the baseline's for the same prompt, seed and action,
    where the judges computed it (`imagejourney judge --baseline`, or a pytest session with
    --baseline): a change of the images, not of the times, so it gets no verdict here."""
    rows = pd.concat([run.judgements for run in side.runs])
    rows = rows[(rows["judge"] == "drift_vs_baseline") & rows["value"].notna()]
    if rows.empty:
        return None
    return {
        "n": len(rows),
        "p50": float(np.median(rows["value"])),
        "max": float(rows["value"].max()),
        "model": rows["model"].iloc[0],
        "calibrated": bool((rows["calibrated"] == "yes").all()),
    }


def side_from_path(path: Path) -> Side:
    return Side(str(path), [load_run(path)])


def resolve_side(
    ref: str,
    store: str | None = None,
    since: str | None = None,
    journey: str | None = None,
    exclude: str | None = None,
    now: datetime | None = None,
) -> Side:
    """A run directory, or a reference into the history store: a run id, `last`,
    `last-passing`, `pinned`; with `since` (7d), every stored run of that window, pooled.
    `journey` limits the store to that journey; `exclude` leaves out the new run itself;
    `now` is the moment the window ends (default: the wall clock)."""
    from .history import HistoryStore, StoreError, parse_since

    if since is None and ("/" in ref or Path(ref).exists()):
        return side_from_path(Path(ref))  # a path: a run directory, or one sentence saying it is not
    try:
        window = parse_since(since, now) if since else None
        stored = HistoryStore(store).resolve(ref, journey=journey, since=window, before=exclude)
    except StoreError as exc:
        raise CompareError(str(exc)) from None
    missing = [r.path for r in stored if not Path(r.path).is_dir()]
    if missing:
        raise CompareError(
            f"the stored run directory {missing[0]} is gone; the store keeps summaries, the comparison "
            "needs the run directory"
        )
    name = (
        stored[0].run_id
        if len(stored) == 1
        else f"{len(stored)} runs since {since} ({stored[0].run_id} … {stored[-1].run_id})"
    )
    return Side(name, [load_run(Path(r.path)) for r in stored])


def format_comparison(result: dict) -> str:
    """A benchstat-like table: medians per side with N, the change with its interval and p."""
    lines = [f"baseline: {result['baseline']}", f"new:      {result['new']}", ""]
    lines.append(f"{'metric':34} {'baseline':>12} {'new':>12}  {'change':<34} verdict")
    footnote = False
    for m in result["metrics"]:
        base, new = m["baseline"], m["new"]
        if m["verdict"] == "too few samples":
            change, footnote = "± ∞ ¹", True
        elif m["verdict"] == "no change":
            change = f"~ (p={m['p_value']:.3f} n={base['n']}+{new['n']})"
        else:
            change = f"{change_text(m)} (p={m['p_value']:.3f})"
        lines.append(f"{m['metric']:34} {fmt(base):>12} {fmt(new):>12}  {change:<34} {m['verdict']}")
    for q in result.get("quality", []):
        if q["verdict"] == "too few samples":
            change, footnote = "± ∞ ¹", True
        elif q["verdict"] == "no change":
            change = f"~ (p={q['p_value']:.3f} n={q['baseline']['n']}+{q['new']['n']})"
        else:
            change = f"{quality_change_text(q)} (p={q['p_value']:.3f})"
        lines.append(
            f"{q['metric']:34} {quality_fmt(q, 'baseline'):>12} {quality_fmt(q, 'new'):>12}  {change:<34} {q['verdict']}"
        )
    if footnote:
        lines.append(f"¹ need >= {result['min_samples']} samples per side for a confidence interval and a verdict")
    lines.append(
        f"verdicts: slower / faster only when p < {result['alpha']} and the change is at least "
        f"{result['min_effect_percent']:g}%; medians in ms (N)"
    )
    if result.get("quality"):
        lines.append(
            f"quality: acceptance rate (Fisher's exact) and mean prompt match (Mann–Whitney U) of the candidate "
            f"finals (N); worse / better only when p < {result['alpha']} and the change is at least "
            f"{result['min_effect_percent']:g} points"
        )
    if result.get("drift_vs_baseline"):
        d = result["drift_vs_baseline"]
        lines.append(f"LPIPS drift vs baseline: p50 {d['p50']:.4f}, max {d['max']:.4f} (N={d['n']}; {d['model']})")
    for warning in result["warnings"]:
        lines.append(f"warning: {warning}")
    slower = result["regressions"]
    lines.append(
        f"{len(slower)} of {len(result['metrics'])} metrics slower than baseline"
        + (f": {', '.join(slower)}" if slower else "")
    )
    if result.get("quality"):
        worse = result["quality_regressions"]
        lines.append(
            f"{len(worse)} of {len(result['quality'])} quality metrics worse than baseline"
            + (f": {', '.join(worse)}" if worse else "")
        )
    return "\n".join(lines)


def fmt(side: dict) -> str:
    return f"{side['median']:.1f} ({side['n']})"


def quality_fmt(row: dict, side: str) -> str:
    return f"{row[side]['mean']:.2f} ({row[side]['n']})"


def change_text(m: dict) -> str:
    """The change of a compared metric with its interval: in percent, or in ms where the
    baseline median is under 1 ms or the ratio is over 10× ("+149.9 ms [+140.2, +160.0]")."""
    if m.get("change_shown_as") == "absolute" and m.get("difference_ci_low_ms") is not None:
        values = (m["difference_ms"], m["difference_ci_low_ms"], m["difference_ci_high_ms"])
        digits = 2 if max(abs(v) for v in values) < 1 else 1  # a change within a millisecond keeps its size
        low, high = (f"{v:+.{digits}f}" for v in values[1:])
        return f"{values[0]:+.{digits}f} ms [{low}, {high}]"
    return f"{(m['ratio'] - 1) * 100:+.1f}% [{(m['ci_low'] - 1) * 100:+.1f}%, {(m['ci_high'] - 1) * 100:+.1f}%]"


def quality_change_text(q: dict) -> str:
    """A quality change in points of 0–100 ("-41.7 pts [-62.5, -20.8]")."""
    return f"{q['difference'] * 100:+.1f} pts [{q['ci_low'] * 100:+.1f}, {q['ci_high'] * 100:+.1f}]"


def format_markdown(result: dict) -> str:
    """The comparison as a Markdown table (for $GITHUB_STEP_SUMMARY)."""
    slower = result["regressions"]
    worse = result.get("quality_regressions", [])
    title = f"{len(slower)} of {len(result['metrics'])} metrics slower than baseline"
    if result.get("quality"):
        title += f", {len(worse)} of {len(result['quality'])} quality metrics worse"
    lines = [
        f"### imagejourney: {title}",
        "",
        f"baseline `{result['baseline']}` · new `{result['new']}`",
        "",
        "| metric | baseline median (N) | new median (N) | change [95% CI] | p | verdict |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in result["metrics"]:
        change = "± ∞" if m["ci_low"] is None else change_text(m)
        p_value = "" if m["p_value"] is None else f"{m['p_value']:.3f}"
        verdict = f"**{m['verdict']}**" if m["verdict"] == "slower" else m["verdict"]
        lines.append(
            f"| `{m['metric']}` | {m['baseline']['median']:.1f} ({m['baseline']['n']}) | "
            f"{m['new']['median']:.1f} ({m['new']['n']}) | {change} | {p_value} | {verdict} |"
        )
    if result.get("quality"):
        lines += [
            "",
            "| quality | baseline mean (N) | new mean (N) | change [95% CI] | p | verdict |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
    for q in result.get("quality", []):
        change = "± ∞" if q["ci_low"] is None else quality_change_text(q)
        p_value = "" if q["p_value"] is None else f"{q['p_value']:.3f} ({q['test']})"
        verdict = f"**{q['verdict']}**" if q["verdict"] == "worse" else q["verdict"]
        lines.append(
            f"| `{q['metric']}` | {quality_fmt(q, 'baseline')} | {quality_fmt(q, 'new')} | {change} | {p_value} | {verdict} |"
        )
    lines += [f"> warning: {w}" for w in result["warnings"]]
    return "\n".join(lines) + "\n"
