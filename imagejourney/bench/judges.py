"""`imagejourney bench judges`: do the judges find what they should on the reference app, and
does judging stay cheap?

1. Starts the reference app (tiny model, CPU) and runs three prompts through generate, repeat
   (the same seed again), three rerolls and a masked edit of the centre with the journey
   runner; judges the run directory as `imagejourney judge` does and reports same-seed LPIPS
   max (goal ≤ 0.01), the largest change outside the edit's mask (goal 0) and reroll diversity.
2. Times LPIPS on random image pairs at 128², 256² and 512²: batched (as the judges run it)
   beside one pair at a time (the baseline), in pairs per second (goal ≥ 20 at 256², batched).
3. Runs five rerolls with each preview method of the app — linear latent→RGB and TAESD (here
   with random weights, as no real TAESD can be downloaded) — and reports time to recognisable
   preview and generation speed index for each: computed, and labelled as random.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import chromium_launch_args, launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.pack import JourneyPack, Prompt, Step
from imagejourney.journeys.profile import load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.journeys.runner import JourneyRunner, install_probe
from imagejourney.journeys.target import ReferenceApp
from imagejourney.reports.judges import LPIPS, judge_run
from imagejourney.reports.run import load_run
from imagejourney.reports.stats import rounded
from imagejourney.reports.summary import summarize

SIZES = (128, 256, 512)
GOALS = {"same_seed_lpips_max": 0.01, "outside_mask_max": 0.0, "lpips_pairs_per_s_256": 20.0}


def judged_pack() -> JourneyPack:
    settings = {"steps": 4, "size": 128, "guidance": 0.0}
    steps = [
        Step("prompt"),
        Step("generate"),
        Step("repeat"),
        *[Step("reroll")] * 3,
        Step("edit", prompt="a red scarf", strength=1.0, mask="center"),
    ]
    return JourneyPack(
        name="bench-judges",
        description="judges on the reference app",
        cohort=[],
        settings=settings,
        prompts=[
            Prompt("fisherman", "portrait of an old fisherman", 1234),
            Prompt("dancer", "a ballet dancer", 2024),
            Prompt("astronaut", "an astronaut holding her helmet", 77),
        ],
        steps=steps,
        acceptance={"rule": "not_blank", "min_pixel_std": 8.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=120,
        source="imagejourney bench judges",
        raw={"name": "bench-judges", "settings": settings},
    )


def preview_method_pack() -> JourneyPack:
    settings = {"steps": 4, "size": 128, "guidance": 0.0}
    return JourneyPack(
        name="bench-previews",
        description="visual progress by preview method",
        cohort=[],
        settings=settings,
        prompts=[Prompt("fisherman", "portrait of an old fisherman", 1234)],
        steps=[Step("prompt"), Step("generate"), *[Step("reroll")] * 5],
        acceptance={"rule": "not_blank", "min_pixel_std": 8.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=120,
        source="imagejourney bench judges",
        raw={"name": "bench-previews", "settings": settings},
    )


def random_taesd(directory: Path) -> Path:
    """An AutoencoderTiny (TAESD) with random weights, saved as the local directory the
    reference app's --taesd takes: its previews are noise, so the comparison exercises the
    method, it does not rank the methods."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(directory)
    return directory


def visual_progress_by_method(browser, config, profile, work: Path) -> dict:
    """Time to recognisable preview and generation speed index with each preview method."""
    found = {}
    for method, extra in (
        ("latent-rgb", ()),
        ("taesd (random weights)", ("--taesd", str(random_taesd(work / "taesd")))),
    ):
        pack = preview_method_pack()
        with ReferenceApp("tiny", work / f"{method.split()[0]}.log", extra_args=extra) as app:
            run_dir = RunDirectory.create(
                work, {"journey": {**pack.raw, "acceptance": pack.acceptance}, "config_hash": method.split()[0]}
            )
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, profile.output, profile.final_image, profile.preview_image)
            JourneyRunner(page, base_url=app.url, profile=profile, pack=pack, prompt=pack.prompts[0], run=run_dir).run()
            page.close()
            run_dir.event("run_finished")
        judge_run(run_dir.path)
        stats = {row["action"]: row["metrics"] for row in summarize(load_run(run_dir.path))["action_stats"]}
        rerolls = stats.get("reroll", {})
        found[method] = {
            metric: rounded((rerolls.get(metric) or {}).get("p50"))
            for metric in ("time_to_recognisable_preview_ms", "generation_speed_index_ms", "click_to_final_ms")
        }
        found[method]["n"] = (rerolls.get("click_to_final_ms") or {}).get("n", 0)
    return found


def lpips_throughput(lpips: LPIPS, pairs: int, size: int, batch: int) -> float:
    rng = np.random.default_rng(size)
    images = [
        (
            Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)),
            Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)),
        )
        for _ in range(pairs)
    ]
    lpips.distances(images[:2], batch=batch)  # warm up
    start = time.perf_counter()
    lpips.distances(images, batch=batch)
    return pairs / (time.perf_counter() - start)


def run(trials: int, config_path: Path, progress=print) -> dict:
    """`trials`: LPIPS pairs timed per size and mode."""
    config = load_config(config_path)
    profile = load_profile("reference")
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-judges-"))
    pack = judged_pack()
    progress(f"reference app: {len(pack.prompts)} prompts × generate, repeat, 3 rerolls, masked edit")
    with sync_playwright() as p, ReferenceApp("tiny", work / "app.log") as app:
        launch, source = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)
        run_dir = RunDirectory.create(
            work, {"journey": {**pack.raw, "acceptance": pack.acceptance}, "config_hash": "bench"}
        )
        for prompt in pack.prompts:
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, profile.output, profile.final_image, profile.preview_image)
            JourneyRunner(page, base_url=app.url, profile=profile, pack=pack, prompt=prompt, run=run_dir).run()
            page.close()
        run_dir.event("run_finished")
        progress("visual progress: linear latent previews, then TAESD with random weights (5 rerolls each)")
        by_method = visual_progress_by_method(browser, config, profile, work)
        browser.close()
    judge_run(run_dir.path)
    run = load_run(run_dir.path)
    quality = summarize(run)["quality"]
    failed = int((run.steps["status"] != "ok").sum())
    lpips = LPIPS("alex")
    throughput = {}
    for size in SIZES:
        progress(f"LPIPS at {size}²: {trials} pairs batched, then one at a time")
        throughput[str(size)] = {
            "batched": round(lpips_throughput(lpips, trials, size, batch=16), 1),
            "one_at_a_time": round(lpips_throughput(lpips, trials, size, batch=1), 1),
        }
    return {
        "lpips_weights": quality["lpips_weights"],
        "lpips_model": quality["lpips_model"],
        "same_seed_lpips_max": quality["same_seed_lpips_max"],
        "outside_mask_max": quality["edit_outside_mask_max"],
        "reroll_diversity_p50": rounded(quality["reroll_diversity_p50"], 4),
        "lpips_pairs_per_s": {size: t["batched"] for size, t in throughput.items()},
        "lpips_pairs_per_s_one_at_a_time": {size: t["one_at_a_time"] for size, t in throughput.items()},
        "visual_progress_by_preview_method": by_method,
        "failed_steps": failed,
        "conditions": {
            "browser_source": source,
            "model": "tiny (random weights), CPU",
            "pairs_per_size": trials,
            "run_dir": str(run_dir.path),
        },
    }


def format_table(result: dict) -> str:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    same, outside, rate = result["same_seed_lpips_max"], result["outside_mask_max"], result["lpips_pairs_per_s"]["256"]
    lines = [
        f"LPIPS weights: {result['lpips_weights']} ({result['lpips_model']})",
        f"same-seed LPIPS max          {same}  (goal ≤ {GOALS['same_seed_lpips_max']}: "
        f"{met(same is not None and same <= GOALS['same_seed_lpips_max'])})",
        f"outside-mask change max      {outside}  (grey levels; goal 0: {met(outside == GOALS['outside_mask_max'])})",
        f"reroll diversity p50         {result['reroll_diversity_p50']}",
        "LPIPS pairs per second       batched | one at a time (baseline)",
    ]
    for size in result["lpips_pairs_per_s"]:
        lines.append(
            f"  {size + '²':>5}                      {result['lpips_pairs_per_s'][size]:>7} | "
            f"{result['lpips_pairs_per_s_one_at_a_time'][size]:>7}"
        )
    lines.append(
        f"target ≥ {GOALS['lpips_pairs_per_s_256']:g} pairs/s at 256², batched: "
        f"{met(rate >= GOALS['lpips_pairs_per_s_256'])}"
    )
    if result.get("visual_progress_by_preview_method"):
        lines.append("reroll, p50 ms (uncalibrated LPIPS)  recognisable preview | speed index | click-to-final")
        for method, row in result["visual_progress_by_preview_method"].items():
            lines.append(
                f"  {method:32} {row['time_to_recognisable_preview_ms']!s:>9} | {row['generation_speed_index_ms']!s:>11} | "
                f"{row['click_to_final_ms']!s:>9}  (N={row['n']})"
            )
    if result["failed_steps"]:
        lines.append(f"{result['failed_steps']} journey step(s) failed: see {result['conditions']['run_dir']}")
    return "\n".join(lines)
