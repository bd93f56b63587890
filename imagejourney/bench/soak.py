"""`imagejourney bench soak`: does the reference app hold as a server under faults?

Starts the app with faults on (10 % of jobs fail, 10 % of finals blank, 3 % stall), and drives
it with the journey runner in headless Chromium: journey runs of a generate and 19 rerolls,
each action allowed 5 s, until `--actions` actions were tried. Reports actions done, errors
seen (failed steps), whether the app still answers at the end, and its resident memory after
the first journey run (warm) and at the end (goal: growth ≤ 10 %).
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import chromium_launch_args, launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.pack import JourneyPack, Prompt, Step
from imagejourney.journeys.profile import load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.journeys.runner import JourneyRunner, install_probe
from imagejourney.journeys.target import ReferenceApp
from imagejourney.reports.run import load_run

FAULTS = ("--fault-error-rate", "0.1", "--fault-blank-rate", "0.1", "--fault-stall-rate", "0.03", "--fault-seed", "1")
ACTIONS_PER_JOURNEY = 20
GOAL_GROWTH = 0.10
GOAL_EXTRA_ERRORS = 0.02  # errors seen beyond those injected, as a share of actions tried


def soak_pack(number: int) -> JourneyPack:
    settings = {"steps": 4, "size": 128, "guidance": 0.0}
    return JourneyPack(
        name="bench-soak",
        description="generate and rerolls under faults",
        cohort=[],
        settings=settings,
        prompts=[Prompt(f"soak-{number}", "a portrait in soft light", number)],
        steps=[Step("prompt"), Step("generate"), *[Step("reroll")] * (ACTIONS_PER_JOURNEY - 1)],
        acceptance={"rule": "not_blank", "min_pixel_std": 8.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=5,
        source="imagejourney bench soak",
        raw={"name": "bench-soak", "settings": settings},
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError(f"no resident memory figure for process {pid}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "imagejourney/info", timeout=10) as response:
            return json.loads(response.read())["app"] == "imagejourney reference app"
    except (OSError, ValueError, KeyError):
        return False


def faults_injected(url: str, first_job: int) -> tuple[int, int]:
    """Jobs the app failed or stalled on purpose from job `first_job` on, as it logged them in
    /imagejourney/jobs/N (a blank final is no error: it is shown): (count, the next job number)."""
    job, injected = first_job, 0
    while True:
        try:
            with urllib.request.urlopen(f"{url}imagejourney/jobs/{job}", timeout=10) as response:
                faults = json.loads(response.read()).get("faults") or {}
        except urllib.error.HTTPError:
            return injected, job  # no such job yet
        injected += int(bool(faults.get("error") or faults.get("stall")))
        job += 1


def run(actions: int, config_path: Path, progress=print) -> dict:
    config = load_config(config_path)
    profile = load_profile("reference")
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-soak-"))
    done = errors = tried = injected = 0
    next_job = 1
    rss_start: float | None = None
    with sync_playwright() as p, ReferenceApp("tiny", work / "app.log", extra_args=FAULTS) as app:
        process = app.process
        assert process is not None, "ReferenceApp starts its process on entering"
        launch, _ = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)
        number = 0
        while tried < actions:
            number += 1
            pack = soak_pack(number)
            run_dir = RunDirectory.create(work, {"journey": {"name": f"soak-{number}"}, "config_hash": f"soak{number}"})
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, profile.output, profile.final_image, profile.preview_image)
            JourneyRunner(page, base_url=app.url, profile=profile, pack=pack, prompt=pack.prompts[0], run=run_dir).run()
            page.close()
            steps = load_run(run_dir.path).steps
            steps = steps[steps["action"].isin(("generate", "reroll"))]
            tried += len(steps)
            done += int((steps["status"] == "ok").sum())
            errors += int((steps["status"] != "ok").sum())
            more, next_job = faults_injected(app.url, next_job)
            injected += more
            if rss_start is None:
                rss_start = rss_mb(process.pid)  # warm: the first journey run has allocated what it needs
            progress(
                f"{tried} actions tried: {done} done, {errors} failed ({injected} failures injected); "
                f"app RSS {rss_mb(process.pid):.0f} MB"
            )
        still_serving = answers(app.url)
        rss_end = rss_mb(process.pid)
        browser.close()
    assert rss_start is not None, "measured after the first journey, and actions is at least 1"
    return {
        "actions_done": done,
        "errors_seen": errors,
        "errors_injected": injected,
        "still_serving": still_serving,
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "actions_tried": tried,
        "faults": " ".join(FAULTS),
        "work_dir": str(work),
    }


def format_table(result: dict) -> str:
    growth = result["rss_end_mb"] / result["rss_start_mb"] - 1
    return "\n".join(
        [
            f"faults: {result['faults']}",
            f"actions tried {result['actions_tried']}: done {result['actions_done']}, errors seen {result['errors_seen']}, "
            f"errors injected {result['errors_injected']} (goal: seen ≤ injected + 2 % of tried = "
            f"{result['errors_injected'] + GOAL_EXTRA_ERRORS * result['actions_tried']:.0f}: "
            f"{'met' if result['errors_seen'] <= result['errors_injected'] + GOAL_EXTRA_ERRORS * result['actions_tried'] else 'NOT met'})",
            f"still serving at the end: {'yes' if result['still_serving'] else 'NO'}",
            f"app resident memory: {result['rss_start_mb']} MB warm → {result['rss_end_mb']} MB at the end "
            f"({growth * 100:+.1f} %; goal ≤ +{GOAL_GROWTH * 100:.0f} %: {'met' if growth <= GOAL_GROWTH else 'NOT met'})",
        ]
    )
