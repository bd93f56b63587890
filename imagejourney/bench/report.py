"""`imagejourney bench report`: does the report hold up at 10,000 steps?

Writes a synthetic run directory in the current record format — journey runs of generate,
two rerolls, an edit and an export (5 steps each) until `--steps` is reached, each image action
with two kept previews, the server's times and small PNG finals — then times
`imagejourney report` on it (audit + HTML) and opens the report in headless Chromium to read
its first contentful paint. Prints build seconds, HTML size, image count and first render.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import chromium_launch_args, launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.reports.render import render_report

ACTIONS = ("generate", "reroll", "reroll", "edit", "export")
GOALS = {"build_s": 5.0, "html_mb": 10.0, "chromium_first_render_ms": 2000.0}


def synthetic_run(root: Path, steps: int, judged: bool = True) -> Path:
    """`judged`: with judgements.csv holding each final's pixel_std, as a pytest session's judges
    leave a run (the LPIPS judges are left out: they are not part of building the report)."""
    manifest = {
        "journey": {
            "name": "bench-report",
            "prompts": [],
            "steps": list(ACTIONS),
            "acceptance": {"rule": "not_blank", "min_pixel_std": 8.0},
            "cohort": ["portrait"],
        },
        "config_hash": "benchreport",
        "target": {"name": "reference", "url": "http://127.0.0.1:1/"},
        "ui_profile": {"name": "reference"},
        "browser": {
            "name": "chromium",
            "version": "bench",
            "source": "system",
            "viewport": {"width": 1280, "height": 900},
        },
        "hardware": {"cpu": "bench", "cpu_count": 2},
        "versions": {},
        "degraded": [],
    }
    journeys = -(-steps // len(ACTIONS))
    manifest["journey_runs"] = [f"p{n:05d}" for n in range(journeys)]
    run = RunDirectory.create(root, manifest)
    (run.images / "previews").mkdir()
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 255, (128, 128, 3), np.uint8) for _ in range(8)]
    sources = []
    for k, p in enumerate(pixels):  # a few distinct files, copied: writing is not what is timed
        path = root / f"source-{k}.png"
        Image.fromarray(p).save(path)
        sources.append(path)
    preview = root / "preview.jpg"
    Image.fromarray(pixels[0][::2, ::2]).save(preview, quality=80)
    stds = [float(np.asarray(Image.fromarray(p).convert("L"), dtype=np.float32).std()) for p in pixels]
    judgements = []
    written = 0
    for n, prompt_id in enumerate(manifest["journey_runs"]):
        for index, action in enumerate(ACTIONS, start=1):
            if written == steps:
                break
            written += 1
            name = f"{prompt_id}-{index:02d}-{action}"
            click = 1000.0 * index
            identity = {
                "attempt": 1,
                "journey": "bench-report",
                "prompt_id": prompt_id,
                "prompt": f"portrait {n}",
                "seed": n,
                "step_index": index,
                "action": action,
                "mask": None,
            }
            if action == "export":
                shutil.copyfile(sources[n % len(sources)], run.images / f"{name}.png")
                run.event("export", **identity, click=click, saved_at=click + 20, image=f"images/{name}.png")
                continue
            shutil.copyfile(sources[(n + index) % len(sources)], run.images / f"{name}.png")
            judgements.append(
                {
                    "image": f"images/{name}.png",
                    "judge": "pixel_std",
                    "value": stds[(n + index) % len(sources)],
                    "model": "grey-level standard deviation",
                    "calibrated": "yes",
                }
            )
            kept = []
            for k in range(2):
                shutil.copyfile(preview, run.images / "previews" / f"{name}-{k:02d}.jpg")
                kept.append({"t": click + 80 + 60 * k, "image": f"images/previews/{name}-{k:02d}.jpg"})
            paints = [{"t": p["t"], "method": "element-timing", "url": ""} for p in kept]
            paints.append({"t": click + 300 + (n % 50), "method": "element-timing", "url": ""})
            times = {
                "request_received": click + 30,
                "inference_start": click + 31,
                "previews_produced": [click + 70, click + 130],
                "final_produced": click + 260,
            }
            run.event(
                "action",
                **identity,
                image=f"images/{name}.png",
                previews=kept,
                time_origin=0.0,
                probe={"click": click, "final": paints[-1], "paints": paints},
                server={"job": str(n), "times": times},
            )
    run.event("run_finished")
    if judged:
        pd.DataFrame(judgements).to_csv(run.path / "judgements.csv", index=False)
    return run.path


def first_render_ms(report: Path, config: dict) -> tuple[float, float]:
    """(first contentful paint, load event end) of the report in headless Chromium, ms."""
    with sync_playwright() as p:
        launch, _ = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)
        page = browser.new_page(viewport=config["BROWSER"]["viewport"])
        page.goto(report.as_uri(), wait_until="load", timeout=120_000)
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0", timeout=60_000)
        fcp, load = page.evaluate(
            "[performance.getEntriesByName('first-contentful-paint')[0].startTime, "
            "performance.getEntriesByType('navigation')[0].loadEventEnd]"
        )
        browser.close()
    return float(fcp), float(load)


def run(steps: int, config_path: Path, progress=print) -> dict:
    config = load_config(config_path)
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-report-"))
    progress(f"writing two synthetic run directories of {steps} steps (judged as a pytest session leaves one, and not)")
    run_dir = synthetic_run(work / "judged", steps)
    unjudged = synthetic_run(work / "unjudged", steps, judged=False)

    def build(path: Path) -> tuple[Path, float]:
        start = time.perf_counter()
        report, _ = render_report(path)
        return report, time.perf_counter() - start

    progress(
        "imagejourney report (audit + HTML): judged run, then again (cached thumbnails and image facts), then unjudged"
    )
    report, build_s = build(run_dir)
    _, again_s = build(run_dir)
    _, unjudged_s = build(unjudged)
    progress("opening the report in headless Chromium")
    images = sum(1 for _ in run_dir.glob("images/**/*") if _.is_file())
    fcp, load = first_render_ms(report, config)
    return {
        "steps": steps,
        "build_s": round(build_s, 2),
        "build_again_s": round(again_s, 2),
        "build_unjudged_s": round(unjudged_s, 2),
        "html_mb": round(report.stat().st_size / 1e6, 2),
        "images": images,
        "chromium_first_render_ms": round(fcp, 1),
        "chromium_load_ms": round(load, 1),
        "run_dir": str(run_dir),
    }


def format_table(result: dict) -> str:
    lines = [
        f"{result['steps']} steps, {result['images']} images in the run directory ({result['run_dir']})",
        f"build again (thumbnails, image facts cached): {result['build_again_s']} s; a run never judged "
        f"(every final decoded for blank detection): {result['build_unjudged_s']} s; Chromium load event: "
        f"{result.get('chromium_load_ms', '—')} ms",
    ]
    for key, unit in (("build_s", "s"), ("html_mb", "MB"), ("chromium_first_render_ms", "ms")):
        value, goal = result[key], GOALS[key]
        lines.append(f"{key:26} {value:>9} {unit:2}  (goal ≤ {goal:g}: {'met' if value <= goal else 'NOT met'})")
    return "\n".join(lines)
