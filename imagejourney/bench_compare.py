"""`imagejourney bench compare`: how often is `compare`'s verdict wrong?

Real measurements first: the reference app (tiny model, CPU) is started four times — twice
as it is (A1, A2: the same build), and with `--fault-latency-ms` sized to add about 10 % and
about 25 % to the median reroll click-to-final measured in A1 — and each time the journey
runner times a pool of rerolls in headless Chromium.

Then resampling: each trial draws N actions per side without replacement from two pools and
runs the same verdict `imagejourney compare` gives (reports/compare.py):
- false-positive rate: A1 vs A2 trials called `slower` or `faster` (goal ≤ 0.05);
- detection rate: A1 vs the +10 % and +25 % pools called `slower`, at N = 30 (goal ≥ 0.8 at 25 %);
- the N per side at which a 10 % slowdown is detected in at least 80 % of trials (pools are
  resampled with replacement where N exceeds them).
Two separate app starts for A/A keep the run-to-run variation a nightly comparison meets.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from journeys.browser import chromium_launch_args
from journeys.config import load_config
from journeys.pack import JourneyPack, Prompt, Step, load_profile
from journeys.rundir import RunDirectory
from journeys.runner import JourneyRunner, install_probe
from journeys.target import ReferenceApp
from reports.audit import load_run
from reports.compare import compare_metric

N_PER_SIDE = 30
TRIALS = 400
SLOWDOWNS = (10, 25)  # percent
N_CANDIDATES = (10, 20, 30, 45, 60, 90, 120)
GOALS = {"false_positive_rate": 0.05, "detection_rate_25": 0.8}


def reroll_pack(actions: int) -> JourneyPack:
    settings = {"steps": 4, "size": 128, "guidance": 0.0}
    return JourneyPack(
        name="bench-compare", description="rerolls", cohort=[], settings=settings,
        prompts=[Prompt("bench", "a portrait in soft light", 1)],
        steps=[Step("prompt"), Step("generate"), *[Step("reroll")] * actions],
        acceptance={"rule": "not_blank", "min_pixel_std": 0.0}, budgets={}, think_time_ms=0, action_timeout_s=120,
        source="imagejourney bench compare", raw={"name": "bench-compare", "settings": settings},
    )


def measure_pool(browser, config, profile, work: Path, name: str, actions: int, latency_ms: int) -> np.ndarray:
    """Reroll click-to-final (ms) of `actions` rerolls against a fresh app with this latency."""
    extra = ("--fault-latency-ms", str(latency_ms)) if latency_ms else ()
    with ReferenceApp("tiny", work / f"{name}.log", extra_args=extra) as app:
        page = browser.new_page(viewport=config["BROWSER"]["viewport"])
        install_probe(page, profile.output, profile.final_image)
        pack = reroll_pack(actions)
        run_dir = RunDirectory.create(work, {"journey": {"name": name}, "config_hash": name})
        JourneyRunner(page, base_url=app.url, profile=profile, pack=pack, prompt=pack.prompts[0], run=run_dir).run()
        page.close()
    steps = load_run(run_dir.path).steps
    return steps[(steps["action"] == "reroll") & (steps["status"] == "ok")]["click_to_final_ms"].to_numpy(float)


def verdict_rate(base: np.ndarray, new: np.ndarray, n: int, verdicts: tuple[str, ...], rng, trials: int = TRIALS) -> float:
    hits = 0
    for _ in range(trials):
        a = rng.choice(base, n, replace=n > len(base))
        b = rng.choice(new, n, replace=n > len(new))
        hits += compare_metric("reroll.click_to_final_ms", a, b, 0.05, 5.0)["verdict"] in verdicts
    return hits / trials


def run(trials: int, config_path: Path, progress=print) -> dict:
    """`trials`: rerolls measured per pool."""
    config = load_config(config_path)
    profile = load_profile("reference")
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-compare-"))
    with sync_playwright() as p:
        launch, source = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = p.chromium.launch(**launch)
        progress(f"A1: {trials} rerolls against the reference app as it is")
        pools = {"A1": measure_pool(browser, config, profile, work, "A1", trials, 0)}
        median = float(np.median(pools["A1"]))
        latencies = {pct: round(median * pct / 100) for pct in SLOWDOWNS}
        progress(f"A2: {trials} rerolls, a second start of the same build")
        pools["A2"] = measure_pool(browser, config, profile, work, "A2", trials, 0)
        for pct, latency in latencies.items():
            progress(f"+{pct} %: {trials} rerolls with --fault-latency-ms {latency}")
            pools[str(pct)] = measure_pool(browser, config, profile, work, f"slow{pct}", trials, latency)
        browser.close()
    rng = np.random.default_rng(0)
    progress(f"resampling: {TRIALS} trials per comparison")
    false_positive = verdict_rate(pools["A1"], pools["A2"], N_PER_SIDE, ("slower", "faster"), rng)
    detection = {str(pct): verdict_rate(pools["A1"], pools[str(pct)], N_PER_SIDE, ("slower",), rng) for pct in SLOWDOWNS}
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
        "conditions": {"browser_source": source, "model": "tiny (random weights), CPU", "trials_per_comparison": TRIALS,
                       "alpha": 0.05, "min_effect_percent": 5.0, "work_dir": str(work)},
    }


def format_table(result: dict) -> str:
    medians = result["pool_medians_ms"]
    lines = ["pools (reroll click-to-final, median ms / N): " + ", ".join(
        f"{name} {medians[name]} / {result['pool_sizes'][name]}" for name in medians)]
    lines.append(f"injected latency: " + ", ".join(f"+{p} % → {ms} ms" for p, ms in result["injected_latency_ms"].items()))
    fp, d25 = result["false_positive_rate"], result["detection_rate"]["25"]
    lines.append(f"false-positive rate (A1 vs A2, N={result['n_per_side']} per side): {fp:.3f}  "
                 f"(goal ≤ {GOALS['false_positive_rate']}: {'met' if fp <= GOALS['false_positive_rate'] else 'NOT met'})")
    for pct, rate in result["detection_rate"].items():
        goal = f"  (goal ≥ 0.8: {'met' if d25 >= GOALS['detection_rate_25'] else 'NOT met'})" if pct == "25" else ""
        lines.append(f"detection rate of +{pct} % at N={result['n_per_side']}: {rate:.3f}{goal}")
    curve = ", ".join(f"N={n}: {r:.2f}" for n, r in result["detection_rate_10_by_n"].items())
    lines.append(f"detection of +10 % by N per side: {curve}")
    needed = result["n_per_side_for_0_8_at_10"]
    lines.append(f"N per side for 0.8 detection of +10 %: {needed if needed else 'more than ' + str(max(N_CANDIDATES))}")
    return "\n".join(lines)
