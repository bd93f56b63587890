"""`imagejourney bench app`: the reference app's speed as a creator sees it, with its live
preview channel and stock Gradio image streaming measured side by side in one run.

Each case starts the app (`--previews live` or `--previews gradio`), opens it in headless
Chromium and runs one prompt through a generate and N−1 rerolls with the journey runner, so every
figure comes from a run directory: click-to-first-preview and click-to-final (probe), and
preview delivery = first preview painted − first preview produced on the server.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import chromium_launch_args, launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.pack import JourneyPack, Prompt, Step
from imagejourney.journeys.profile import load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.journeys.runner import JourneyRunner, install_probe
from imagejourney.journeys.target import ReferenceApp
from imagejourney.reports.run import load_run
from imagejourney.reports.stats import distribution, rounded

CASES = [("gradio", 128), ("live", 128), ("gradio", 512), ("live", 512)]
STEPS = 4
TARGETS = {"first_preview_p50_ms": 300.0, "final_p50_ms": 1000.0, "delivery_512_p50_ms": 30.0}


def bench_pack(trials: int, size: int) -> JourneyPack:
    settings = {"steps": STEPS, "size": size, "guidance": 0.0}
    return JourneyPack(
        name=f"bench-{size}",
        description="repeated generate",
        cohort=[],
        settings=settings,
        prompts=[Prompt("bench", "a portrait in soft light", 1)],
        # Rerolls: each action has a new seed, so a new image (the same seed twice gives the same
        # file, which Gradio serves at the same URL: nothing new would be painted).
        steps=[Step("prompt"), Step("generate"), *[Step("reroll")] * (trials - 1)],
        acceptance={"rule": "not_blank", "min_pixel_std": 0.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=120,
        source="imagejourney bench app",
        raw={"name": f"bench-{size}", "settings": settings},
    )


def summarize(steps: pd.DataFrame) -> dict:
    ok = steps[steps["status"] == "ok"]
    delivery = ok["first_preview_paint_ts_ms"] - ok["server_first_preview_ts_ms"]

    def pct(values: pd.Series) -> dict:
        d = distribution(values)
        return {"n": d["n"], "p50": rounded(d["p50"]), "p95": rounded(d["p95"])}

    return {
        "click_to_first_preview_ms": pct(ok["click_to_preview_ms"]),
        "click_to_final_ms": pct(ok["click_to_final_ms"]),
        "preview_delivery_ms": pct(delivery),
        "previews_produced": int(ok["previews_produced"].sum()),
        "previews_painted": int(ok["previews_painted"].sum()),
        "failed": int((steps["status"] != "ok").sum()),
    }


def run(trials: int, config_path: Path, model: str = "tiny", progress=print) -> dict:
    """`model` is the app's --model: `tiny` (the default), `sd-turbo-random` for SD-Turbo's
    compute cost, or a local diffusers directory; the app puts it on the GPU when there is one."""
    config = load_config(config_path)
    profile = load_profile("reference")
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-app-"))
    results = {}
    with sync_playwright() as p:
        launch, source = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)
        for delivery, size in CASES:
            case = f"{delivery}-{size}px"
            progress(f"{case}: generate + {trials - 1} rerolls, {STEPS} steps")
            with ReferenceApp(model, work / f"{case}.log", extra_args=("--previews", delivery)) as app:
                info = app.info
                page = browser.new_page(viewport=config["BROWSER"]["viewport"])
                install_probe(page, profile.output, profile.final_image, profile.preview_image)
                pack = bench_pack(trials, size)
                run_dir = RunDirectory.create(work, {"journey": {"name": case}, "config_hash": case})
                JourneyRunner(
                    page, base_url=app.url, profile=profile, pack=pack, prompt=pack.prompts[0], run=run_dir
                ).run()
                page.close()
            results[case] = summarize(load_run(run_dir.path).steps)
        assert info is not None, "ReferenceApp returns on entering only once /imagejourney/info answers"
        conditions = {
            "browser": f"chromium {browser.version} ({source})",
            "model": model_conditions(info),
            "steps": STEPS,
            "trials_per_case": trials,
            "targets": TARGETS,
        }
        browser.close()
    return {"conditions": conditions, "cases": results}


def model_conditions(info: dict) -> str:
    """The app's model as its /imagejourney/info states it, e.g. `sd-turbo-random (random
    weights), cuda float16, NVIDIA H100 80GB HBM3`."""
    weights = " (random weights)" if info["random_weights"] else ""
    where = f"{info['device']} {info['dtype']}" + (f", {info['gpu']}" if info.get("gpu") else "")
    return f"{info['model']}{weights}, {where}"


def format_table(result: dict) -> str:
    def cell(s):
        return f"{s['p50']:>7} {s['p95']:>7}" if s["n"] else f"{'—':>7} {'—':>7}"

    lines = [
        f"model: {result['conditions']['model']}; browser: {result['conditions']['browser']}",
        "ms, p50 and p95; delivery = first preview painted − produced on the server",
        f"{'case':12} {'N':>3} | {'first preview':>15} | {'final':>15} | {'preview delivery':>16} | painted/produced",
    ]
    for case, r in result["cases"].items():
        lines.append(
            f"{case:12} {r['click_to_final_ms']['n']:>3} | {cell(r['click_to_first_preview_ms']):>15} | "
            f"{cell(r['click_to_final_ms']):>15} | {cell(r['preview_delivery_ms']):>16} | "
            f"{r['previews_painted']}/{r['previews_produced']}" + (f"  ({r['failed']} failed)" if r["failed"] else "")
        )
    live128, live512 = result["cases"]["live-128px"], result["cases"]["live-512px"]
    t = TARGETS
    checks = [
        (
            "first preview p50 ≤ 300 ms (live, 128²)",
            live128["click_to_first_preview_ms"]["p50"],
            t["first_preview_p50_ms"],
        ),
        ("final p50 ≤ 1 s (live, 128²)", live128["click_to_final_ms"]["p50"], t["final_p50_ms"]),
        ("preview delivery p50 ≤ 30 ms (live, 512²)", live512["preview_delivery_ms"]["p50"], t["delivery_512_p50_ms"]),
    ]
    for name, value, limit in checks:
        lines.append(f"target {name}: {value} ms — {'met' if value is not None and value <= limit else 'NOT met'}")
    return "\n".join(lines)
