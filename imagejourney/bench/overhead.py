"""`imagejourney bench overhead`: what the harness itself costs, per step and per creator.

The page under test answers at once: imagejourney/bench/fidelity_page.html with ?delay=0 puts a new,
already decoded image on screen in the first animation frame after the click and records
that frame's timestamp (its own record, `window.truth`). Creators walk one journey run of a
generate and `--steps` − 1 rerolls on it, through the same runner and load code as
`pytest e2e/ --creators N`, at N = 1, 2, 4, 8. One creator (the goal's figure) and the
baseline walk `--walks` times, each in a fresh browser, and their percentiles are over all
those steps: one walk's p50 moves by about as much as the goal's margin.

  overhead_ms       per step: wall time from the previous step's record to this one's
                    (time.time() in events.jsonl) − the page's own click → painted frame.
                    What the harness adds to each step: telling the probe, Playwright's click
                    (actionability checks), waiting for the done condition, reading the
                    record, saving the image, appending and fsyncing the event.
  baseline          the same page driven by a bare Playwright loop (click, wait until the page
                    has recorded the image): the least any Playwright harness adds.
  timing_error_ms   the probe's click_to_final_ms − the page's own click → painted frame:
                    whether in-page timing stays valid with N creators on the machine.
  memory, CPU       per creator: proportional set size (PSS, shared pages split between the
                    processes sharing them) of its Chromium processes and of its Playwright
                    driver (node), peak over the level; CPU seconds of both while walking ÷
                    the level's wall time = cores busy.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import chromium_launch_args, launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.load import run_level
from imagejourney.journeys.pack import JourneyPack, Prompt, Step
from imagejourney.journeys.plan import LoadPlan
from imagejourney.journeys.profile import load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.reports.run import load_run
from imagejourney.reports.stats import percentile, rounded
from imagejourney.reports.stats import rounded_distribution as stats

from . import BenchFailed
from .fidelity import serve_fidelity_page

LEVELS = (1, 2, 4, 8)
GOAL_MS = 20.0  # p50 of overhead_ms with one creator, on the 2-core CI machine
SAMPLE_EVERY_S = 1.0
PROFILE = """
name: instant-page
path: /fidelity_page.html?delay=0
ready: "#show"
fields: {prompt: "#idea"}
controls: {generate: "#show", reroll: "#show"}
output: "#stage"
final_image: img
done:
  - visible: "#stage img"
"""


def instant_pack(steps: int) -> JourneyPack:
    return JourneyPack(
        name="bench-overhead",
        description="a generate and rerolls on a page that answers at once",
        cohort=[],
        settings={},
        prompts=[Prompt("instant", "an image at once", 1)],
        steps=[Step("prompt"), Step("generate"), *[Step("reroll")] * (steps - 1)],
        acceptance={"rule": "not_blank", "min_pixel_std": 1.0},
        budgets={},
        think_time_ms=0,
        action_timeout_s=10,
        source="imagejourney bench overhead",
        raw={"name": "bench-overhead"},
    )


class ProcessSampler:
    """Peak PSS and CPU seconds of this process's descendants (drivers and browsers), sampled
    every second on a thread; CPU counts from `start_cpu()` on."""

    def __init__(self):
        self.peak = {"browser": 0.0, "driver": 0.0}
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.counting = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY_S):
            self.sample()

    def sample(self) -> None:
        total = {"browser": 0.0, "driver": 0.0}
        for process in psutil.Process().children(recursive=True):
            try:
                kind = "driver" if process.name().startswith("node") else "browser"  # Linux names it node-MainThread
                total[kind] += process.memory_full_info().pss / 2**20
                cpu = sum(process.cpu_times()[:2])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if self.counting:
                self.cpu_first.setdefault(process.pid, cpu)
                self.cpu_last[process.pid] = cpu
        for kind in total:
            self.peak[kind] = max(self.peak[kind], total[kind])

    def start_cpu(self) -> None:
        self.counting = True
        self.cpu_started = time.monotonic()
        self.sample()

    def cores_busy(self) -> float:
        """CPU seconds of the descendants since start_cpu() ÷ the wall time since then."""
        self.sample()
        cpu = sum(self.cpu_last[pid] - first for pid, first in self.cpu_first.items())
        return cpu / (time.monotonic() - self.cpu_started)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()


@dataclass
class Walk:
    """One walk of the instant page by N creators at once, as measured."""

    creators: int
    steps: int
    overhead_ms: list[float]
    timing_error_ms: list[float]
    browser_pss_mb: float  # peak, all creators together
    driver_pss_mb: float
    cores_busy: float


def walk(creators: int, steps: int, url: str, launch: dict, context_args: dict, work: Path) -> Walk:
    """N creators walk the instant page once, each in a fresh browser; the harness's cost from their records."""
    pack = instant_pack(steps)
    profile_path = work / "instant-page.yaml"
    profile_path.write_text(PROFILE)
    profile = load_profile(str(profile_path))
    run = RunDirectory.create(work, {"journey": {"name": f"overhead-{creators}"}, "config_hash": f"n{creators}"})
    truth: dict[int, list[dict]] = {}
    plan = LoadPlan((creators,), ramp_s=0.0, time_limit_s=600.0)
    with ProcessSampler() as sampler:
        failures = run_level(
            creators,
            plan=plan,
            pack=pack,
            profile=profile,
            base_url=url,
            run=run,
            open_browser=lambda p: launch_chromium(p, launch),
            context_args=context_args,
            on_start=sampler.start_cpu,
            on_walked=lambda page, creator: truth.__setitem__(creator.index, page.evaluate("window.truth")),
        )
        cores = sampler.cores_busy()
    if failures:
        raise BenchFailed(f"{len(failures)} steps failed on the instant page, e.g. {failures[0]}")
    records = load_run(run.path)
    overhead, error = [], []
    for index, shown in truth.items():
        mine = [e for e in records.events if e.get("event") == "action" and e.get("creator") == index]
        rows = records.steps[records.steps["creator"] == index]
        if len(mine) != len(shown):
            raise BenchFailed(f"creator {index}: {len(mine)} actions recorded, the page showed {len(shown)} images")
        page_ms = [t["painted_frame"] - t["click"] for t in shown]
        overhead += [
            (later["wall_time"] - earlier["wall_time"]) * 1000 - page
            for earlier, later, page in zip(mine, mine[1:], page_ms[1:])
        ]
        error += [measured - page for measured, page in zip(rows["click_to_final_ms"], page_ms)]
    return Walk(creators, steps, overhead, error, sampler.peak["browser"], sampler.peak["driver"], cores)


def level(walks: list[Walk]) -> dict:
    """One level's figures from one or more walks at it: percentiles over all their steps,
    memory at the highest peak, CPU on average; with several walks, each walk's own p50 too
    (how much a single walk can say)."""
    creators = walks[0].creators
    overhead = [ms for w in walks for ms in w.overhead_ms]
    error = [ms for w in walks for ms in w.timing_error_ms]
    figures = {
        "creators": creators,
        "overhead_ms": stats(overhead),
        "timing_error_ms": {**stats(error), "abs_p95": rounded(percentile([abs(e) for e in error], 95))},
        "browser_pss_mb_per_creator": round(max(w.browser_pss_mb for w in walks) / creators, 1),
        "driver_pss_mb_per_creator": round(max(w.driver_pss_mb for w in walks) / creators, 1),
        "cpu_cores_per_creator": round(sum(w.cores_busy for w in walks) / len(walks) / creators, 3),
        "steps_per_creator": walks[0].steps,
        "walks": len(walks),
    }
    if len(walks) > 1:
        figures["overhead_ms_p50_by_walk"] = [rounded(percentile(w.overhead_ms, 50)) for w in walks]
    return figures


def bare_playwright(steps: int, url: str, launch: dict, context_args: dict) -> list[float]:
    """The baseline, one walk in a fresh browser: click and wait until the page recorded the
    image, nothing else. Returns each step's overhead."""
    with sync_playwright() as p:
        browser = launch_chromium(p, launch)
        page = browser.new_context(**context_args).new_page()
        page.goto(url + "fidelity_page.html?delay=0")
        ends = []
        for n in range(1, steps + 1):
            page.click("#show")
            page.wait_for_function("(n) => window.truth.length >= n", arg=n)
            ends.append(time.time() * 1000)
        shown = page.evaluate("window.truth")
        browser.close()
    page_ms = [t["painted_frame"] - t["click"] for t in shown]
    return [b - a - page for a, b, page in zip(ends, ends[1:], page_ms[1:])]


def run(steps: int, config_path: Path, walks_alone: int, progress=print) -> dict:
    """`walks_alone`: how many times one creator, and the bare loop, walk (each in a fresh
    browser): a single walk's p50 moved by about ±0.5 ms here, the goal's whole margin."""
    config = load_config(config_path)
    work = Path(tempfile.mkdtemp(prefix="imagejourney-bench-overhead-"))
    server = serve_fidelity_page()
    url = f"http://127.0.0.1:{server.server_port}/"
    context_args = {"viewport": config["BROWSER"]["viewport"]}
    with sync_playwright() as p:
        launch, source = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
    try:
        bare = [ms for _ in range(walks_alone) for ms in bare_playwright(steps, url, launch, context_args)]
        bare_ms = stats(bare)
        baseline = {"overhead_ms": bare_ms, "walks": walks_alone}
        progress(f"bare Playwright, {walks_alone} walks: {bare_ms['p50']} ms per step (p50)")
        alone = []
        for number in range(1, walks_alone + 1):
            alone.append(walk(1, steps, url, launch, context_args, work))
            progress(
                f"1 creator, walk {number} of {walks_alone}: "
                f"{rounded(percentile(alone[-1].overhead_ms, 50))} ms per step (p50)"
            )
        levels = [level(alone)]
        progress(f"1 creator: {levels[0]['overhead_ms']['p50']} ms per step (p50)")
        for creators in LEVELS[1:]:
            levels.append(level([walk(creators, steps, url, launch, context_args, work)]))
            progress(f"{creators} creators: {levels[-1]['overhead_ms']['p50']} ms per step (p50)")
    finally:
        server.shutdown()
    one = levels[0]
    largest = levels[-1]
    per_creator_mb = largest["browser_pss_mb_per_creator"] + largest["driver_pss_mb_per_creator"]
    machine = {"cpu_count": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}
    return {
        "overhead_ms_p50": one["overhead_ms"]["p50"],
        "goal_ms": GOAL_MS,
        "baseline_bare_playwright": baseline,
        "levels": levels,
        "machine": machine,
        "browser": source,
        "estimate_1000_creators": paper_estimate(largest["cpu_cores_per_creator"], per_creator_mb, machine),
        "work_dir": str(work),
    }


def paper_estimate(cores_per_creator: float, mb_per_creator: float, machine: dict) -> dict:
    """1,000 creators at the largest level's measured cost, acting back to back (a real
    creator waits on a model for seconds, so this bounds CPU from above)."""
    cores = 1000 * cores_per_creator
    memory_gb = 1000 * mb_per_creator / 1024
    machines = max(cores / machine["cpu_count"], memory_gb / machine["memory_gb"])
    return {
        "cores": round(cores, 1),
        "memory_gb": round(memory_gb, 1),
        "machines_like_this_one": int(-(-machines // 1)),
        "bound_by": "CPU" if cores / machine["cpu_count"] >= memory_gb / machine["memory_gb"] else "memory",
    }


def format_table(result: dict) -> str:
    base = result["baseline_bare_playwright"]["overhead_ms"]
    lines = [
        f"harness overhead per step on a page that answers at once ({result['machine']['cpu_count']} cores, "
        f"{result['machine']['memory_gb']} GB, {result['browser']} Chromium)",
        f"{'':28}{'N':>5}{'overhead p50':>14}{'p95':>9}{'timing err p50':>16}{'|err| p95':>11}"
        f"{'browser MB':>12}{'driver MB':>11}{'CPU cores':>11}",
        f"{'bare Playwright (baseline)':28}{base['n']:>5}{base['p50']:>14}{base['p95']:>9}",
    ]
    for lv in result["levels"]:
        e = lv["timing_error_ms"]
        lines.append(
            f"{'imagejourney, ' + str(lv['creators']) + ' creator' + ('s' if lv['creators'] > 1 else ''):28}"
            f"{lv['overhead_ms']['n']:>5}{lv['overhead_ms']['p50']:>14}{lv['overhead_ms']['p95']:>9}"
            f"{e['p50']:>16}{e['abs_p95']:>11}{lv['browser_pss_mb_per_creator']:>12}"
            f"{lv['driver_pss_mb_per_creator']:>11}{lv['cpu_cores_per_creator']:>11}"
        )
    met = result["overhead_ms_p50"] <= result["goal_ms"]
    estimate = result["estimate_1000_creators"]
    one = result["levels"][0]
    lines.append(
        f"overhead_ms_p50 (1 creator, {one.get('walks', 1)} walks, {one['overhead_ms']['n']} steps): "
        f"{result['overhead_ms_p50']} ms; goal ≤ {result['goal_ms']:g} ms: {'met' if met else 'NOT met'}"
    )
    by_walk = one.get("overhead_ms_p50_by_walk")
    if by_walk:
        over = sum(p50 > result["goal_ms"] for p50 in by_walk)
        lines.append(
            f"  each walk's own p50: {', '.join(str(p50) for p50 in by_walk)} ms"
            + (f" ({over} of {len(by_walk)} over the goal)" if over else "")
        )
    lines += [
        "memory and CPU are per creator (PSS of its Chromium processes and of its Playwright driver; CPU cores busy "
        "while walking)",
        f"paper estimate for 1,000 creators acting back to back: {estimate['cores']} cores, {estimate['memory_gb']} GB "
        f"= {estimate['machines_like_this_one']} machines like this one (bound by {estimate['bound_by']})",
    ]
    return "\n".join(lines)
