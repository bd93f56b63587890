"""`imagejourney bench fidelity`: how far each timing method is from ground truth.

Two methods on the same click, side by side:
  probe  the in-page probe (action click event.timeStamp → Element Timing renderTime)
  naive  a Python stopwatch around page.click() + waiting for the result with Playwright
         (time.perf_counter before the click, after the wait returns) — the common harness

Ground truth, in every case, is when the final's pixels reached the screen, seen from outside
the browser (imagejourney/bench/screen_truth.py: Chromium headed on Xvfb, a separate process reading
a patch at the centre of the output image about every millisecond). Each trial's truth is the
last change of that patch after the click; its uncertainty (half the interval between the
reads that bracket it) is reported beside the errors.

Two kinds of case, each with several delays and at least 20 trials:
  reference-<D>ms  the reference app, holding the final until D ms after the request; each
                   trial has its own seed, so every final differs from the one before.
  page-<D>ms       a plain HTML page (imagejourney/bench/fidelity_page.html) that puts a decoded image
                   on screen in the first animation frame at or after click + D ms, and records
                   that frame's timestamp: a check on the screen truth, which must come after it.

Error = measured duration − true duration (click → final on screen), in ms; the click is the
page's event.timeStamp for both methods. `probe_paint_time` is the same probe's Element Timing
paintTime (the rendering update, before the frame is presented), shown beside renderTime.
"""

from __future__ import annotations

import functools
import http.server
import re
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.profile import load_profile
from imagejourney.journeys.runner import install_probe
from imagejourney.journeys.target import ReferenceApp
from imagejourney.reports.stats import percentile, rounded

from .screen_truth import (
    PATCH,
    NoScreen,
    ScreenWatcher,
    VirtualScreen,
    headed_launch_args,
    page_clock_shift,
    screen_patch,
    viewport_origin,
)

DELAYS_MS = (200, 1000, 3000)
CANVAS_DELAY_MS = 300
CANVAS_CASES = {
    "canvas2d": "a picture drawn (drawImage) on a canvas redrawn every frame, with a highlight and a progress bar",
    "webgl": "a picture uploaded as a WebGL texture",
    "dim": "a picture drawn on a canvas stage dimmed while it works",
}
COLD_MODES = ("img", "dim")
TARGET_P95_MS = 17.0  # one frame at 60 Hz
DONE = "() => { const s = window.__imagejourney.state(); return s !== 'pending' && s; }"
SETTLE_MS = 100  # after the done condition: the screen has the final before the probe can see it


def stats(errors: list[float]) -> dict:
    if not errors:  # paintTime on a canvas, which has no Element Timing entry
        return {"n": 0, "p50": None, "p95": None, "max": None, "abs_p95": None}
    return {
        "n": len(errors),
        "p50": rounded(percentile(errors, 50)),
        "p95": rounded(percentile(errors, 95)),
        "max": round(max(errors), 1),
        "abs_p95": rounded(percentile([abs(e) for e in errors], 95)),
    }


def trials_against_screen(
    page, display: str, watched: str, trials: int, one_trial, region: dict | None = None, patch_box=None
) -> tuple[list[dict], dict]:
    """Run `one_trial(n)` for n = 1..trials (each returns the probe's record, the naive time
    and anything else to keep) while the screen patch at the centre of `watched` (or `region`;
    with `patch_box` (w, h), the centre of that box at `watched`'s top left) is watched; add
    each trial's truth: the last change of the patch after its click. Also returns how the
    truth was taken: how far the page's clock drifted from this process's during the trials
    (ms) and the screen reader's scheduling priority."""
    if region is None:
        origin = viewport_origin(page, display)
        if patch_box is None:
            region = screen_patch(page, watched, origin)
        else:
            box = page.locator(watched).last.bounding_box()
            region = {
                "left": origin[0] + round(box["x"] + patch_box[0] / 2) - PATCH // 2,
                "top": origin[1] + round(box["y"] + patch_box[1] / 2) - PATCH // 2,
                "width": PATCH,
                "height": PATCH,
            }
    shift = page_clock_shift(page)
    done = []
    with ScreenWatcher(display, region) as watcher:
        for n in range(1, trials + 1):
            trial = one_trial(n)
            page.wait_for_timeout(SETTLE_MS)
            trial["until"] = page.evaluate("performance.now()")
            done.append(trial)
    drift = page_clock_shift(page) - shift
    add_truth(done, [(t + shift, uncertainty) for t, uncertainty in watcher.changes], watched)
    return done, {
        "clock_drift_ms": drift,
        "reader_priority": watcher.priority,
        "truth_uncertainty": [t["truth_uncertainty"] for t in done],
    }


def add_truth(trials: list[dict], changes: list[tuple[float, float]], watched: str) -> None:
    """Each trial's truth: the last screen change (page time, ± uncertainty) after its click
    and before the trial ended."""
    for n, trial in enumerate(trials, 1):
        click = trial["record"]["click"]
        seen = [change for change in changes if click < change[0] <= trial["until"]]
        if not seen:
            raise NoScreen(
                f"trial {n}: the screen under '{watched}' did not change after the click; is the window off the screen?"
            )
        trial["truth"], trial["truth_uncertainty"] = seen[-1]


def method_errors(trials: list[dict]) -> dict:
    """Each method's error against the screen truth, per trial (paintTime: where the final has
    one, an Element Timing entry; a draw on a canvas has none)."""

    def duration(t):
        return t["truth"] - t["record"]["click"]

    return {
        "probe": [t["record"]["final"]["t"] - t["truth"] for t in trials],
        "probe_paint_time": [
            t["record"]["final"]["paintTime"] - t["truth"] for t in trials if t["record"]["final"].get("paintTime")
        ],
        "naive": [t["naive_ms"] - duration(t) for t in trials],
    }


def reference_trials(page, url: str, trials: int, display: str) -> tuple[dict, dict]:
    profile = load_profile("reference")
    install_probe(page, profile.output, profile.final_image, profile.preview_image)
    status = profile.done[0]["selector"]
    page.goto(url)
    page.wait_for_selector(profile.ready)
    page.fill(profile.fields["prompt"], "fidelity check")

    def generate(job: int, seed: int) -> dict:
        page.fill(
            profile.fields["seed"], str(seed)
        )  # a new image each time: a same-seed final would not change the screen
        page.evaluate(
            "([c, d, e]) => window.__imagejourney.begin('generate', c, d, e, true)",
            [profile.controls["generate"], profile.done, profile.error],
        )
        started = time.perf_counter()
        page.click(profile.controls["generate"])
        page.locator(status).filter(has_text=re.compile(rf"Done · .* job {job}(?!\d)")).wait_for()
        naive_ms = (time.perf_counter() - started) * 1000
        page.wait_for_function(DONE)
        return {"record": page.evaluate("window.__imagejourney.collect()"), "naive_ms": naive_ms}

    generate(1, 1)  # the output image must exist to be watched
    done, truth = trials_against_screen(page, display, profile.final_image, trials, lambda n: generate(n + 1, 1000 + n))
    return method_errors(done), truth


# Where each mode of the fidelity page shows its picture: the element, and the picture's centre
# inside it (None: the element's centre).
PAGE_MODES = {
    "img": ("#stage img", None),
    "canvas2d": ("#stage canvas", (396, 160)),
    "webgl": ("#stage canvas", None),
    "dim": ("#stage canvas", None),
}


def show_on_page(page, mode: str, n: int) -> dict:
    """Click Show on the fidelity page for its n-th picture, as the probe and the naive stopwatch see it."""
    if mode == "img":
        page.evaluate("() => window.__imagejourney.begin('show', '#show', [], null, true)")
    else:  # a canvas: timed by its draw calls, done 300 ms after the last new picture drawn
        page.evaluate(
            "(n) => window.__imagejourney.begin('show', '#show', [{kind: 'visible', visible: '#shown-' + n}], null, 'drawn')",
            n,
        )
    started = time.perf_counter()
    page.click("#show")
    page.wait_for_selector(f"#shown-{n}")
    naive_ms = (time.perf_counter() - started) * 1000
    page.wait_for_function(DONE)
    return {
        "record": page.evaluate("window.__imagejourney.collect()"),
        "naive_ms": naive_ms,
        "page_frame": page.evaluate("(n) => window.truth.find((t) => t.n === n).painted_frame", n),
    }


def page_patch(page, mode: str, origin: tuple[int, int]) -> dict:
    """The screen patch at the centre of the picture the page shows in `mode`."""
    selector, centre = PAGE_MODES[mode]
    if centre is None:
        return screen_patch(page, selector, origin)
    box = page.locator(selector).last.bounding_box()
    return {
        "left": origin[0] + round(box["x"] + centre[0]) - PATCH // 2,
        "top": origin[1] + round(box["y"] + centre[1]) - PATCH // 2,
        "width": PATCH,
        "height": PATCH,
    }


def page_trials(page, url: str, trials: int, display: str, mode: str = "img") -> tuple[dict, dict]:
    page.goto(url)
    page.wait_for_selector("#show")
    if mode == "img":
        show_on_page(page, mode, 1)  # the <img> must exist to be watched
        first = 1
    else:
        first = 0
    region = page_patch(page, mode, viewport_origin(page, display))
    done, truth = trials_against_screen(
        page, display, PAGE_MODES[mode][0], trials, lambda n: show_on_page(page, mode, n + first), region
    )
    return method_errors(done), {**truth, "screen_after_page_frame": [t["truth"] - t["page_frame"] for t in done]}


def cold_trials(browser, viewport: dict, url: str, trials: int, display: str, mode: str) -> tuple[dict, dict]:
    """The first action on a fresh page, `trials` times: each trial opens a new page, watches
    its stage and clicks Show once."""
    done, drifts, priorities = [], [], set()
    for _ in range(trials):
        page = browser.new_page(viewport=viewport)
        install_probe(page, "#stage")
        page.goto(url)
        page.wait_for_selector("#show")
        # Nothing is shown in img mode before the first click: watch where the picture will come.
        selector = PAGE_MODES[mode][0] if mode != "img" else "#stage"
        region = page_patch(page, mode, viewport_origin(page, display)) if mode != "img" else None
        one, truth = trials_against_screen(
            page, display, selector, 1, lambda n, page=page: show_on_page(page, mode, n), region, patch_box=(128, 128)
        )
        done += one
        drifts.append(truth["clock_drift_ms"])
        priorities.add(truth["reader_priority"])
        page.close()
    return method_errors(done), {
        "clock_drift_ms": max(drifts, key=abs),
        "reader_priority": ",".join(sorted(priorities)),
        "truth_uncertainty": [t["truth_uncertainty"] for t in done],
        "screen_after_page_frame": [t["truth"] - t["page_frame"] for t in done],
    }


def serve_fidelity_page() -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(Path(__file__).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(trials: int, config_path: Path, progress=print) -> dict:
    config = load_config(config_path)
    measured: dict[str, tuple[dict, dict]] = {}
    logs = Path(tempfile.mkdtemp(prefix="imagejourney-bench-"))
    with VirtualScreen() as display, sync_playwright() as p:
        launch, source = headed_launch_args(display, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)
        for delay in DELAYS_MS:
            progress(f"reference app, final held {delay} ms: {trials} trials")
            with ReferenceApp("tiny", logs / f"app-{delay}.log", extra_args=("--hold-final-ms", str(delay))) as app:
                page = browser.new_page(viewport=config["BROWSER"]["viewport"])
                measured[f"reference-{delay}ms"] = reference_trials(page, app.url, trials, display)
                page.close()
        server = serve_fidelity_page()
        base = f"http://127.0.0.1:{server.server_port}/fidelity_page.html"
        for delay in DELAYS_MS:
            progress(f"plain page, image shown {delay} ms after the click: {trials} trials")
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, "#stage")
            measured[f"page-{delay}ms"] = page_trials(page, f"{base}?delay={delay}", trials, display)
            page.close()
        for mode, about in CANVAS_CASES.items():
            progress(f"plain page, {about}, {CANVAS_DELAY_MS} ms after the click: {trials} trials")
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, "#stage")
            url = f"{base}?delay={CANVAS_DELAY_MS}&mode={mode}"
            measured[f"{mode}-{CANVAS_DELAY_MS}ms"] = page_trials(page, url, trials, display, mode)
            page.close()
        for mode in COLD_MODES:
            progress(f"plain page ({mode}), the first action on a fresh page: {trials} pages")
            url = f"{base}?delay={CANVAS_DELAY_MS}&mode={mode}"
            measured[f"cold-{mode}-{CANVAS_DELAY_MS}ms"] = cold_trials(
                browser, config["BROWSER"]["viewport"], url, trials, display, mode
            )
        server.shutdown()
        conditions = {
            "browser": f"chromium {browser.version} ({source}), headed on Xvfb",
            "trials_per_case": trials,
            "target_probe_abs_p95_ms": TARGET_P95_MS,
        }
        browser.close()
    return {
        "conditions": conditions,
        "cases": {case: case_summary(*both) for case, both in measured.items()},
        "errors_ms": {
            case: {m: [round(e, 1) for e in errs] for m, errs in both[0].items()} for case, both in measured.items()
        },
        "truth_uncertainty_ms": {
            case: [round(u, 1) for u in both[1]["truth_uncertainty"]] for case, both in measured.items()
        },
    }


def case_summary(by_method: dict, truth: dict) -> dict:
    summary = {method: stats(errs) for method, errs in by_method.items()}
    summary["truth_uncertainty_ms"] = {
        "p50": rounded(percentile(truth["truth_uncertainty"], 50)),
        "max": round(max(truth["truth_uncertainty"]), 1),
    }
    summary["clock_drift_ms"] = round(truth["clock_drift_ms"], 2)
    summary["reader_priority"] = truth["reader_priority"]
    if "screen_after_page_frame" in truth:
        after = truth["screen_after_page_frame"]
        summary["screen_after_page_frame_ms"] = {
            "p50": rounded(percentile(after, 50)),
            "min": round(min(after), 1),
            "max": round(max(after), 1),
        }
    return summary


def dash(value) -> str:
    return "—" if value is None else str(value)


def format_table(result: dict) -> str:
    lines = [
        "error = measured − ground truth, click → final on screen (ms); probe target: p95 |error| ≤ 17 ms",
        "probe = Element Timing renderTime (presentation), on a canvas the start of the frame after the draw;",
        "paintTime = the Element Timing entry's rendering update (a canvas has none: —);",
        "truth ± = half the interval between the two screen reads that bracket the change;",
        "clock drift = how far the page's clock moved against the screen reader's during the case",
        f"{'case':17} {'N':>3} | {'probe p50':>9} {'p95':>6} {'max':>6} {'|p95|':>6} ok  | {'paintTime p50':>13} {'|p95|':>6} | "
        f"{'naive p50':>9} {'p95':>6} {'max':>6} | {'truth ± p50':>11} {'max':>5} | {'clock drift':>11}",
    ]
    for case, m in result["cases"].items():
        pr, pt, nv, tu = m["probe"], m["probe_paint_time"], m["naive"], m["truth_uncertainty_ms"]
        ok = "yes" if pr["abs_p95"] <= TARGET_P95_MS else "NO "
        lines.append(
            f"{case:17} {pr['n']:>3} | {pr['p50']:>9} {pr['p95']:>6} {pr['max']:>6} {pr['abs_p95']:>6} {ok} | "
            f"{dash(pt['p50']):>13} {dash(pt['abs_p95']):>6} | {nv['p50']:>9} {nv['p95']:>6} {nv['max']:>6} | "
            f"{tu['p50']:>11} {tu['max']:>5} | {m['clock_drift_ms']:>11}"
        )
    unmet = [case for case, m in result["cases"].items() if m["probe"]["abs_p95"] > TARGET_P95_MS]
    lines.append(
        f"goal, probe p95 |error| ≤ {TARGET_P95_MS:g} ms on every case: "
        + ("met" if not unmet else f"NOT met ({', '.join(unmet)})")
    )
    priorities = sorted({m["reader_priority"] for m in result["cases"].values()})
    lines.append(f"screen reader scheduling: {', '.join(priorities)} (asked for realtime)")
    checks = [
        (case, m["screen_after_page_frame_ms"])
        for case, m in result["cases"].items()
        if "screen_after_page_frame_ms" in m
    ]
    if checks:
        lines.append(
            "check of the screen truth on the plain page: screen − the page's own frame time (ms), "
            "which must be ≥ 0 and small"
        )
        lines += [f"  {case:15} p50 {c['p50']:>5}  min {c['min']:>5}  max {c['max']:>5}" for case, c in checks]
    return "\n".join(lines)
