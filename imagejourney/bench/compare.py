"""`imagejourney bench compare`: how often is `compare`'s verdict wrong?

Real measurements first: four reference apps (tiny model, CPU) run side by side — two as they
are (A1, A2: two starts of the same build) and two with `--fault-latency-ms` sized to add about
10 % and about 25 % to A1's median reroll click-to-final — and the journey runner times rerolls
against each in headless Chromium, in rounds of ten that take turns (A1, A2, +10 %, +25 %, A1 …),
so that a slow minute on the machine falls on every pool alike.

Then resampling: each trial draws N actions per side without replacement from two pools and
runs the same verdict `imagejourney compare` gives (reports/compare.py):
- false-positive rate: A1 vs A2 trials called `slower` or `faster` (goal ≤ 0.05);
- detection rate: A1 vs the +10 % and +25 % pools called `slower`, at N = 30 (goal ≥ 0.8 at 25 %);
- the N per side at which a 10 % slowdown is detected in at least 80 % of trials (pools are
  resampled with replacement where N exceeds them).
Two separate app starts for A/A keep the run-to-run variation a nightly comparison meets.

The quality case (`quality_case`) asks the same of compare's quality verdict on the acceptance
rate (Fisher's exact test, reports/compare.py `compare_quality`), on simulated candidates: each
candidate accepted with a known probability, so the truth is known. At baseline acceptance rates
of 90 %, 75 % and 60 %:
- false-positive rate: two sides at the same rate called `better` or `worse` (goal ≤ 0.05);
- detection rate: a drop of 20 points (90 → 70 %, 75 → 55 %, 60 → 40 %) called `worse`
  (goal ≥ 0.8), by candidates per side; and the N per side where it first reaches 0.8. A drop
  from 60 % to 40 % is the hardest of all 20-point drops (the variance of a share is largest
  around one half), so its N holds for any baseline rate.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import chromium_launch_args, launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.pack import JourneyPack, Prompt, Step
from imagejourney.journeys.profile import load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.journeys.runner import JourneyRunner, install_probe
from imagejourney.journeys.target import ReferenceApp
from imagejourney.reports.compare import compare_metric, compare_quality
from imagejourney.reports.run import load_run

N_PER_SIDE = 30
TRIALS = 400
SLOWDOWNS = (10, 25)  # percent
N_CANDIDATES = (10, 20, 30, 45, 60, 90, 120)
GOALS = {"false_positive_rate": 0.05, "detection_rate_25": 0.8}


def reroll_pack(actions: int) -> JourneyPack:
    settings = {"steps": 4, "size": 128, "guidance": 0.0}
    return JourneyPack(
        name="bench-compare",
        description="rerolls",
        cohort=[],
        settings=settings,
        prompts=[Prompt("bench", "a portrait in soft light", 1)],
        steps=[Step("prompt"), Step("generate"), *[Step("reroll")] * actions],
        acceptance={"rule": "not_blank", "min_pixel_std": 0.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=120,
        source="imagejourney bench compare",
        raw={"name": "bench-compare", "settings": settings},
    )


ROUND = 10  # rerolls per pool per round: the pools take turns, so a slow minute hits every pool alike


def reroll_times(browser, config, profile, app, work: Path, name: str, actions: int) -> list[float]:
    """Reroll click-to-final (ms) of `actions` rerolls against a running app."""
    page = browser.new_page(viewport=config["BROWSER"]["viewport"])
    install_probe(page, profile.output, profile.final_image, profile.preview_image)
    pack = reroll_pack(actions)
    run_dir = RunDirectory.create(work, {"journey": {"name": name}, "config_hash": name})
    JourneyRunner(page, base_url=app.url, profile=profile, pack=pack, prompt=pack.prompts[0], run=run_dir).run()
    page.close()
    steps = load_run(run_dir.path).steps
    return steps[(steps["action"] == "reroll") & (steps["status"] == "ok")]["click_to_final_ms"].tolist()


def verdict_rate(
    base: np.ndarray, new: np.ndarray, n: int, verdicts: tuple[str, ...], rng, trials: int = TRIALS
) -> float:
    hits = 0
    for _ in range(trials):
        a = rng.choice(base, n, replace=n > len(base))
        b = rng.choice(new, n, replace=n > len(new))
        hits += compare_metric("reroll.click_to_final_ms", a, b, 0.05, 5.0)["verdict"] in verdicts
    return hits / trials


QUALITY_BASE_RATES = (0.9, 0.75, 0.6)  # acceptance of the baseline
QUALITY_DROP = 0.2  # points of acceptance, on the 0–1 scale
QUALITY_N = (24, 48, 72, 96, 120, 160, 200)  # candidates per side (the portrait pack makes 24 per run)
QUALITY_GOALS = {"false_positive_rate": 0.05, "detection_rate": 0.8}


def quality_rate(base_rate: float, new_rate: float, n: int, verdicts: tuple[str, ...], rng, trials: int) -> float:
    """Share of trials in which compare's acceptance verdict on n simulated candidates per side is
    one of `verdicts`."""
    hits = 0
    for _ in range(trials):
        base = (rng.random(n) < base_rate).astype(float)
        new = (rng.random(n) < new_rate).astype(float)
        hits += compare_quality("acceptance_rate", base, new, 0.05, 5.0)["verdict"] in verdicts
    return hits / trials


QUALITY_AA_TRIALS = 2000  # A/A trials at the N found: the false-positive rate judged there, to ±0.01


def quality_case(trials: int = TRIALS, seed: int = 0, progress=print, aa_trials: int = QUALITY_AA_TRIALS) -> dict:
    """The quality verdict's false-positive and detection rates, by candidates per side; then,
    at the N per side that detects the drop in 80 % of trials at every baseline rate, the A/A
    false-positive rate again with `aa_trials` trials per baseline rate."""
    rng = np.random.default_rng(seed)
    rates: dict[str, dict] = {}
    for base_rate in QUALITY_BASE_RATES:
        progress(f"quality: {trials} trials per N at baseline acceptance {base_rate:.0%}")
        false_positive = {
            str(n): quality_rate(base_rate, base_rate, n, ("better", "worse"), rng, trials) for n in QUALITY_N
        }
        detection = {
            str(n): quality_rate(base_rate, base_rate - QUALITY_DROP, n, ("worse",), rng, trials) for n in QUALITY_N
        }
        needed = next((int(n) for n, rate in detection.items() if rate >= QUALITY_GOALS["detection_rate"]), None)
        rates[f"{base_rate:.2f}"] = {
            "false_positive_rate_by_n": false_positive,
            "detection_rate_by_n": detection,
            "n_per_side_for_0_8": needed,
        }
    found = [r["n_per_side_for_0_8"] for r in rates.values()]
    needed = None if None in found else max(found)
    at = needed or max(QUALITY_N)
    progress(f"quality: {aa_trials} A/A trials per baseline rate at N={at}")
    false_positive_at = {
        base: quality_rate(float(base), float(base), at, ("better", "worse"), rng, aa_trials) for base in rates
    }
    curve = [r for b in rates.values() for r in b["false_positive_rate_by_n"].values()]
    return {
        "by_baseline_rate": rates,
        "drop_points": round(QUALITY_DROP * 100),
        "n_per_side_for_0_8": needed,
        "detection_rate_at_n": None
        if needed is None
        else min(r["detection_rate_by_n"][str(needed)] for r in rates.values()),
        "false_positive_n": at,
        "false_positive_rate_at_n": false_positive_at,
        "false_positive_rate": max(false_positive_at.values()),
        "false_positive_rate_pooled": sum(curve) / len(curve),
        "conditions": {
            "samples": "simulated candidates, each accepted with the stated probability",
            "test": "Fisher's exact test (two-sided) with compare's bootstrap interval and minimum effect",
            "trials_per_point": trials,
            "aa_trials_at_n": aa_trials,
            "alpha": 0.05,
            "min_effect_points": 5.0,
        },
    }


def format_quality(quality: dict) -> str:
    lines = [f"quality case: acceptance rate, a {quality['drop_points']}-point drop (simulated candidates)"]
    for base, rates in quality["by_baseline_rate"].items():
        low = float(base) - quality["drop_points"] / 100
        lines.append(
            f"  baseline {float(base):.0%} → {low:.0%}: detection by N per side: "
            + ", ".join(f"N={n}: {r:.2f}" for n, r in rates["detection_rate_by_n"].items())
        )
        lines.append(
            "    false-positive rate by N: "
            + ", ".join(f"N={n}: {r:.3f}" for n, r in rates["false_positive_rate_by_n"].items())
        )
    needed = quality["n_per_side_for_0_8"]
    if needed is None:
        lines.append(
            f"  a {quality['drop_points']}-point drop is detected in 80 % of trials at no N up to {max(QUALITY_N)} "
            "per side (goal NOT met)"
        )
    else:
        lines.append(
            f"  N per side for 0.8 detection of a {quality['drop_points']}-point drop at every baseline rate: "
            f"{needed} candidates (detection there ≥ {quality['detection_rate_at_n']:.2f}; goal ≥ 0.8: met)"
        )
    fp, goal = quality["false_positive_rate"], QUALITY_GOALS["false_positive_rate"]
    at = ", ".join(f"{float(b):.0%}: {r:.3f}" for b, r in quality["false_positive_rate_at_n"].items())
    lines.append(
        f"  false-positive rate (A/A) at N={quality['false_positive_n']}: {at}; worst {fp:.3f} "
        f"(goal ≤ {goal}: {'met' if fp <= goal else 'NOT met'}); pooled over the curves above "
        f"{quality['false_positive_rate_pooled']:.3f}"
    )
    return "\n".join(lines)


def run(trials: int, config_path: Path, progress=print) -> dict:
    """`trials`: rerolls measured per pool."""
    config = load_config(config_path)
    profile = load_profile("reference")
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-compare-"))
    with sync_playwright() as p, ExitStack() as apps:
        launch, source = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)
        running = {name: apps.enter_context(ReferenceApp("tiny", work / f"{name}.log")) for name in ("A1", "A2")}
        progress(f"sizing the slowdowns: {ROUND} rerolls against A1 (not kept)")
        median = float(np.median(reroll_times(browser, config, profile, running["A1"], work, "sizing", ROUND)))
        latencies = {pct: round(median * pct / 100) for pct in SLOWDOWNS}
        for pct, latency in latencies.items():
            running[str(pct)] = apps.enter_context(
                ReferenceApp("tiny", work / f"slow{pct}.log", extra_args=("--fault-latency-ms", str(latency)))
            )
        measured: dict[str, list[float]] = {name: [] for name in running}
        rounds = -(-trials // ROUND)
        for number in range(1, rounds + 1):
            progress(f"round {number} of {rounds}: {ROUND} rerolls against each of A1, A2, +10 %, +25 %")
            for name, app in running.items():
                measured[name] += reroll_times(browser, config, profile, app, work, f"{name}-{number}", ROUND)
        browser.close()
    pools = {name: np.asarray(values, dtype=float) for name, values in measured.items()}
    rng = np.random.default_rng(0)
    progress(f"resampling: {TRIALS} trials per comparison")
    false_positive = verdict_rate(pools["A1"], pools["A2"], N_PER_SIDE, ("slower", "faster"), rng)
    detection = {
        str(pct): verdict_rate(pools["A1"], pools[str(pct)], N_PER_SIDE, ("slower",), rng) for pct in SLOWDOWNS
    }
    by_n = {n: verdict_rate(pools["A1"], pools["10"], n, ("slower",), rng) for n in N_CANDIDATES}
    needed = next((n for n, rate in by_n.items() if rate >= 0.8), None)
    return {
        "false_positive_rate": false_positive,
        "detection_rate": detection,
        "n_per_side": N_PER_SIDE,
        "n_per_side_for_0_8_at_10": needed,
        "detection_rate_10_by_n": {str(n): rate for n, rate in by_n.items()},
        "pool_medians_ms": {name: round(float(np.median(pool)), 1) for name, pool in pools.items()},
        "pool_sizes": {name: int(len(pool)) for name, pool in pools.items()},
        "injected_latency_ms": {str(pct): ms for pct, ms in latencies.items()},
        # What the latency did to the median: the verdict's test is against this, not the nominal share.
        "achieved_slowdown_percent": {
            str(pct): round((np.median(pools[str(pct)]) / np.median(pools["A1"]) - 1) * 100, 1) for pct in SLOWDOWNS
        },
        "quality": quality_case(progress=progress),
        "conditions": {
            "browser_source": source,
            "model": "tiny (random weights), CPU",
            "trials_per_comparison": TRIALS,
            "alpha": 0.05,
            "min_effect_percent": 5.0,
            "work_dir": str(work),
        },
    }


def format_table(result: dict) -> str:
    medians = result["pool_medians_ms"]
    lines = [
        "pools (reroll click-to-final, median ms / N): "
        + ", ".join(f"{name} {medians[name]} / {result['pool_sizes'][name]}" for name in medians)
    ]
    achieved = result.get("achieved_slowdown_percent", {})
    lines.append(
        "injected latency: "
        + ", ".join(
            f"+{p} % → {ms} ms (median moved {achieved.get(p, '?')} %)"
            for p, ms in result["injected_latency_ms"].items()
        )
    )
    fp, d25 = result["false_positive_rate"], result["detection_rate"]["25"]
    lines.append(
        f"false-positive rate (A1 vs A2, N={result['n_per_side']} per side): {fp:.3f}  "
        f"(goal ≤ {GOALS['false_positive_rate']}: {'met' if fp <= GOALS['false_positive_rate'] else 'NOT met'})"
    )
    for pct, rate in result["detection_rate"].items():
        goal = f"  (goal ≥ 0.8: {'met' if d25 >= GOALS['detection_rate_25'] else 'NOT met'})" if pct == "25" else ""
        lines.append(f"detection rate of +{pct} % at N={result['n_per_side']}: {rate:.3f}{goal}")
    curve = ", ".join(f"N={n}: {r:.2f}" for n, r in result["detection_rate_10_by_n"].items())
    lines.append(f"detection of +10 % by N per side: {curve}")
    needed = result["n_per_side_for_0_8_at_10"]
    lines.append(
        f"N per side for 0.8 detection of +10 %: {needed if needed else 'more than ' + str(max(N_CANDIDATES))}"
    )
    if result.get("quality"):
        lines.append(format_quality(result["quality"]))
    return "\n".join(lines)
