"""`imagejourney bench fidelity`: how far each timing method is from ground truth.

Two methods on the same click, side by side:
  probe  the in-page probe (action click event.timeStamp → Element Timing renderTime)
  naive  a Python stopwatch around page.click() + waiting for the result with Playwright
         (time.perf_counter before the click, after the wait returns) — the common harness

Two kinds of case, each with several delays and at least 20 trials:
  reference-<D>ms  the reference app, holding the final until D ms after the request.
                   Ground truth: the timestamp of the first screencast frame in which the
                   output region shows the final (its pixels change for the last time): a frame
                   time on the rAF vsync grid (see journeys/screencast.py).
  page-<D>ms       a plain HTML page (imagejourney/fidelity_page.html) that puts a decoded image
                   on screen in the first animation frame at or after click + D ms.
                   Ground truth: that frame's timestamp, recorded by the page.

Error = measured duration − true duration (click → final paint), in ms; the click is the
page's event.timeStamp for both ground truths. Both truths are the *start* of the frame that
paints the final; the probe's renderTime is when that frame was *presented*, so its error
includes the presentation latency. `probe_paint_time` is the same probe's Element Timing
paintTime (the rendering update, before presentation), shown beside it for that reason.
"""

from __future__ import annotations

import functools
import http.server
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from journeys.browser import chromium_launch_args
from journeys.config import load_config
from journeys.pack import load_profile
from journeys.runner import install_probe
from journeys.screencast import OutputRegionFrames
from journeys.target import ReferenceApp

DELAYS_MS = (200, 1000, 3000)
TARGET_P95_MS = 17.0  # one frame at 60 Hz
DONE = "() => { const s = window.__imagejourney.state(); return s !== 'pending' && s; }"


def stats(errors: list[float]) -> dict:
    ordered = sorted(errors)
    absolute = sorted(abs(e) for e in errors)

    def p95(values):
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]

    return {
        "n": len(errors),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(p95(ordered), 1),
        "max": round(ordered[-1], 1),
        "abs_p95": round(p95(absolute), 1),
    }


def reference_trials(page, url: str, trials: int) -> dict:
    profile = load_profile("reference")
    install_probe(page, profile.output, profile.final_image)
    status = profile.done[0]["selector"]
    page.goto(url)
    page.wait_for_selector(profile.ready)
    page.fill(profile.fields["prompt"], "fidelity check")
    box = page.locator(profile.output).bounding_box()
    probe, probe_paint, naive = [], [], []
    for job in range(1, trials + 1):
        page.evaluate("([c, d, e]) => window.__imagejourney.begin('generate', c, d, e, true)",
                      [profile.controls["generate"], profile.done, profile.error])
        frames = OutputRegionFrames(page, scale=0.5)
        frames.start()
        started = time.perf_counter()
        page.click(profile.controls["generate"])
        page.locator(status).filter(has_text=re.compile(rf"Done · .* job {job}(?!\d)")).wait_for()
        naive_ms = (time.perf_counter() - started) * 1000
        page.wait_for_function(DONE)
        record = page.evaluate("window.__imagejourney.collect()")
        frames.stop()
        changes = frames.changes(page.evaluate("performance.timeOrigin"), [{"t": float("-inf"), **box}])
        truth = [t for t in changes if t >= record["click"]][-1]
        probe.append(record["final"]["t"] - truth)
        probe_paint.append(record["final"]["paintTime"] - truth)
        naive.append(naive_ms - (truth - record["click"]))
    return {"probe": probe, "probe_paint_time": probe_paint, "naive": naive}


def page_trials(page, url: str, trials: int) -> dict:
    page.goto(url)
    page.wait_for_selector("#show")
    probe, probe_paint, naive = [], [], []
    for n in range(1, trials + 1):
        page.evaluate("() => window.__imagejourney.begin('show', '#show', [], null, true)")
        started = time.perf_counter()
        page.click("#show")
        page.wait_for_selector(f"#shown-{n}")
        naive_ms = (time.perf_counter() - started) * 1000
        page.wait_for_function(DONE)
        record = page.evaluate("window.__imagejourney.collect()")
        truth = page.evaluate("(n) => window.truth.find((t) => t.n === n)", n)
        probe.append(record["final"]["t"] - truth["painted_frame"])
        probe_paint.append(record["final"]["paintTime"] - truth["painted_frame"])
        naive.append(naive_ms - (truth["painted_frame"] - truth["click"]))
    return {"probe": probe, "probe_paint_time": probe_paint, "naive": naive}


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
    results: dict[str, dict] = {}
    logs = Path(tempfile.mkdtemp(prefix="imagejourney-bench-"))
    with sync_playwright() as p:
        launch, source = chromium_launch_args({"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = p.chromium.launch(**launch)
        for delay in DELAYS_MS:
            progress(f"reference app, final held {delay} ms: {trials} trials")
            with ReferenceApp("tiny", logs / f"app-{delay}.log", extra_args=("--hold-final-ms", str(delay))) as app:
                page = browser.new_page(viewport=config["BROWSER"]["viewport"])
                results[f"reference-{delay}ms"] = reference_trials(page, app.url, trials)
                page.close()
        server = serve_fidelity_page()
        for delay in DELAYS_MS:
            progress(f"plain page, image shown {delay} ms after the click: {trials} trials")
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, "#stage")
            results[f"page-{delay}ms"] = page_trials(page, f"http://127.0.0.1:{server.server_port}/fidelity_page.html?delay={delay}", trials)
            page.close()
        server.shutdown()
        conditions = {"browser": f"chromium {browser.version} ({source})", "trials_per_case": trials,
                      "target_probe_abs_p95_ms": TARGET_P95_MS}
        browser.close()
    return {
        "conditions": conditions,
        "cases": {case: {method: stats(errors) for method, errors in methods.items()} for case, methods in results.items()},
        "errors_ms": {case: {m: [round(e, 1) for e in errs] for m, errs in methods.items()} for case, methods in results.items()},
    }


def format_table(result: dict) -> str:
    lines = [
        "error = measured − ground truth, click → final paint (ms); probe target: p95 |error| ≤ 17 ms",
        "probe = Element Timing renderTime (presentation); paintTime = the same entry's rendering update",
        f"{'case':17} {'N':>3} | {'probe p50':>9} {'p95':>6} {'max':>6} {'|p95|':>6} ok  | {'paintTime p50':>13} {'|p95|':>6} | "
        f"{'naive p50':>9} {'p95':>6} {'max':>6}",
    ]
    for case, m in result["cases"].items():
        pr, pt, nv = m["probe"], m["probe_paint_time"], m["naive"]
        ok = "yes" if pr["abs_p95"] <= TARGET_P95_MS else "NO "
        lines.append(f"{case:17} {pr['n']:>3} | {pr['p50']:>9} {pr['p95']:>6} {pr['max']:>6} {pr['abs_p95']:>6} {ok} | "
                     f"{pt['p50']:>13} {pt['abs_p95']:>6} | {nv['p50']:>9} {nv['p95']:>6} {nv['max']:>6}")
    return "\n".join(lines)

