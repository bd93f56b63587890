"""Ground truth for `bench fidelity`: when the pixels reach a screen, seen from outside the browser.

Chromium runs headed on an X server that this module starts (Xvfb). A separate process reads a
small patch of that screen again and again (MIT-SHM, through mss) and notes each time it
changes. Every read is bracketed by the clock before and after it, so a change is known to have
reached the screen between the start of the last read that did not show it and the end of the
first read that did: the truth is the middle of that interval, and its half-width is the
truth's own uncertainty, reported with it.

Nothing here runs inside the browser, so the truth does not share a clock, a code path or a
frame pipeline with what it checks. Xvfb has no monitor: "on the screen" means in the X
server's framebuffer, where a real display would scan it out at its next refresh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

from imagejourney.journeys.browser import chromium_launch_args

SCREEN = (1600, 1200)  # room for a 1280×900 viewport plus the browser's own toolbars
WINDOW_FLAGS = ["--window-position=0,0", f"--window-size={SCREEN[0] - 100},{SCREEN[1] - 100}"]
PATCH = 64  # px: the side of the square read around the centre of the watched element
MARKER_RGB = (255, 0, 255)  # the colour painted at the viewport's top-left corner to find it on screen


class NoScreen(Exception):
    pass


class VirtualScreen:
    """An Xvfb server on a free display number, for as long as the `with` block runs."""

    def __enter__(self) -> str:
        xvfb = shutil.which("Xvfb")
        if not xvfb:
            raise NoScreen(
                "Xvfb is not installed, and the ground truth is read off a virtual screen outside the "
                "browser: run ./setup.sh or `apt-get install -y xvfb`"
            )
        read, write = os.pipe()
        self.server = subprocess.Popen(
            [xvfb, "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as displayfd:
            number = displayfd.readline().strip()  # Xvfb writes it once it accepts connections
        if not number:
            raise NoScreen(f"Xvfb exited with status {self.server.wait()} before it was ready")
        try:  # the X server answers the reader's reads (and takes the browser's frames) without waiting for a CPU
            os.sched_setscheduler(self.server.pid, os.SCHED_FIFO, os.sched_param(1))
        except (OSError, AttributeError):
            pass
        return f":{number}"

    def __exit__(self, *exc) -> None:
        self.server.terminate()
        self.server.wait()


def headed_launch_args(display: str, managed_executable: str, flags: list[str]) -> tuple[dict, str]:
    """imagejourney's Chromium launch arguments, headed on `display`, with a window the
    viewport fits in; and which Chromium it is."""
    return chromium_launch_args(
        {"headless": False, "env": {**os.environ, "DISPLAY": display}}, managed_executable, [*flags, *WINDOW_FLAGS]
    )


def viewport_origin(page, display: str) -> tuple[int, int]:
    """Where the page's viewport starts on the screen: paint a marker at its top-left corner
    and find it in a screenshot of the whole screen."""
    import mss
    import numpy as np

    page.evaluate(
        """([r, g, b]) => {
      const marker = document.createElement("div");
      marker.id = "imagejourney-marker";
      marker.style.cssText = `position: fixed; left: 0; top: 0; width: 32px; height: 32px; z-index: 2147483647; background: rgb(${r}, ${g}, ${b})`;
      document.body.appendChild(marker);
    }""",
        list(MARKER_RGB),
    )
    red, green, blue = MARKER_RGB
    try:
        with mss.MSS(display=display) as screen:
            for _ in range(50):
                page.wait_for_timeout(100)
                shot = np.asarray(screen.grab(screen.monitors[0]))  # BGRA
                ys, xs = np.nonzero((shot[:, :, 2] == red) & (shot[:, :, 1] == green) & (shot[:, :, 0] == blue))
                if len(xs) >= 32 * 32:
                    return int(xs.min()), int(ys.min())
    finally:
        page.evaluate("() => document.getElementById('imagejourney-marker').remove()")
    raise NoScreen(f"the page never showed on the screen {display}: is the browser running headed?")


def page_clock_shift(page, samples: int = 30) -> float:
    """ms to add to this process's time.monotonic() (in ms) to get the page's performance.now().
    From the round trip with the least delay; the page read its clock somewhere inside it."""
    best: tuple[float, float] | None = None  # (round trip, shift), ms
    for _ in range(samples):
        before = time.monotonic() * 1000
        page_now = page.evaluate("performance.now()")
        after = time.monotonic() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, page_now - (before + after) / 2)
    assert best is not None, "samples is at least 1"
    return best[1]


def screen_patch(page, selector: str, origin: tuple[int, int]) -> dict:
    """The PATCH × PATCH square of the screen at the centre of `selector` (mss region)."""
    box = page.locator(selector).last.bounding_box()
    return {
        "left": origin[0] + round(box["x"] + box["width"] / 2) - PATCH // 2,
        "top": origin[1] + round(box["y"] + box["height"] / 2) - PATCH // 2,
        "width": PATCH,
        "height": PATCH,
    }


def raise_priority() -> str:
    """Put the reader ahead of the browser and the app, where the system allows it: a read
    that waits for the CPU widens the interval around every change it brackets. It sleeps 1 ms
    between reads, so even real-time priority leaves the CPU to the others most of the time."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return "realtime"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice-10"
    except OSError:
        return "normal"


def stop_on_a_line(stop: threading.Event) -> None:
    """Set `stop` once a line (or the end) arrives on stdin: the watching process's signal."""
    sys.stdin.readline()
    stop.set()


def watch(display: str, region: dict) -> None:
    """The watching process (`python -m imagejourney.bench.screen_truth DISPLAY REGION`): read
    `region` about every millisecond until a line arrives on stdin, then print the changes as
    JSON, each [earliest, latest] in time.monotonic() ms."""
    import mss

    priority = raise_priority()
    stop = threading.Event()
    threading.Thread(target=stop_on_a_line, args=(stop,), daemon=True).start()
    found = []
    with mss.MSS(display=display) as screen:
        previous, previous_start = screen.grab(region).raw, time.monotonic() * 1000
        print("ready", priority, flush=True)
        while not stop.is_set():
            start = time.monotonic() * 1000
            pixels = screen.grab(region).raw
            end = time.monotonic() * 1000
            if pixels != previous:
                found.append((previous_start, end))
            previous, previous_start = pixels, start
            time.sleep(0.001)
    print(json.dumps(found), flush=True)


class ScreenWatcher:
    """Watch one patch of the screen from a separate process while the `with` block runs;
    afterwards `changes` holds when it changed: (time, ± uncertainty) in time.monotonic() ms."""

    def __init__(self, display: str, region: dict):
        self.command = [sys.executable, "-m", "imagejourney.bench.screen_truth", display, json.dumps(region)]
        self.changes: list[tuple[float, float]] = []
        self.priority = ""  # the reader's scheduling: realtime, nice-10 or normal

    def __enter__(self) -> ScreenWatcher:
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None  # stdout=PIPE
        ready, _, self.priority = self.process.stdout.readline().strip().partition(" ")
        if ready != "ready":
            raise NoScreen(f"the screen watcher could not read the screen (exit status {self.process.wait()})")
        return self

    def __exit__(self, *exc) -> None:
        output, _ = self.process.communicate("stop\n", timeout=60)
        self.changes = [((earliest + latest) / 2, (latest - earliest) / 2) for earliest, latest in json.loads(output)]


MAX_STORED_MB = 400  # states of a watched region kept at most; later ones are timed but not kept


def watch_frames(display: str, regions: list[dict], path: str) -> None:
    """The watching process for whole regions (`python -m imagejourney.bench.screen_truth
    --frames PATH DISPLAY REGIONS`): read each of `regions` in turn, about every millisecond,
    until a line arrives on stdin; keep each new state of each region (RGB, at full resolution)
    with the interval in which it reached the screen; then write them to PATH (.npz: per region
    k, `times_k` [earliest, latest] in time.monotonic() ms and `frames_k` uint8 RGB, the first
    states that fit in MAX_STORED_MB) and print "done". With two regions a read takes two grabs,
    which the intervals show."""
    import mss
    import numpy as np

    priority = raise_priority()
    stop = threading.Event()
    threading.Thread(target=stop_on_a_line, args=(stop,), daemon=True).start()
    room = MAX_STORED_MB * 1024 * 1024 // sum(r["width"] * r["height"] * 4 for r in regions)
    times: list[list] = [[] for _ in regions]
    raws: list[list] = [[] for _ in regions]
    with mss.MSS(display=display) as screen:
        previous, previous_start = [], []
        for k, region in enumerate(regions):
            start = time.monotonic() * 1000
            previous.append(screen.grab(region).raw)
            previous_start.append(start)
            times[k].append((start, start))
            raws[k].append(previous[k])
        print("ready", priority, flush=True)
        while not stop.is_set():
            for k, region in enumerate(regions):
                start = time.monotonic() * 1000
                pixels = screen.grab(region).raw
                end = time.monotonic() * 1000
                if pixels != previous[k]:
                    times[k].append((previous_start[k], end))
                    if len(raws[k]) < room:
                        raws[k].append(pixels)
                previous[k], previous_start[k] = pixels, start
            time.sleep(0.001)
    saved: dict[str, Any] = {}  # Any: numpy's savez types its keywords as allow_pickle's bool
    for k, region in enumerate(regions):
        shape = (region["height"], region["width"], 4)
        saved[f"times_{k}"] = np.array(times[k], np.float64)
        saved[f"frames_{k}"] = np.stack([np.frombuffer(raw, np.uint8).reshape(shape)[:, :, 2::-1] for raw in raws[k]])
    np.savez(path, **saved)  # frames BGRA → RGB above
    print("done", flush=True)


class RegionWatcher:
    """Watch whole regions of the screen from a separate process while the `with` block runs;
    afterwards, per region, `times[k]` holds when each state of it reached the screen
    ((earliest, latest) in time.monotonic() ms; the first is the state when watching began) and
    `frames[k]` the states (RGB), as many as MAX_STORED_MB holds."""

    def __init__(self, display: str, regions: list[dict], path: str):
        self.path, self.count = path, len(regions)
        self.command = [
            sys.executable,
            "-m",
            "imagejourney.bench.screen_truth",
            "--frames",
            path,
            display,
            json.dumps(regions),
        ]
        self.priority = ""

    def __enter__(self) -> RegionWatcher:
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None  # stdout=PIPE
        ready, _, self.priority = self.process.stdout.readline().strip().partition(" ")
        if ready != "ready":
            raise NoScreen(f"the screen watcher could not read the screen (exit status {self.process.wait()})")
        return self

    def __exit__(self, *exc) -> None:
        import numpy as np

        self.process.communicate("stop\n", timeout=120)
        with np.load(self.path) as saved:
            self.times = [saved[f"times_{k}"] for k in range(self.count)]
            self.frames = [saved[f"frames_{k}"] for k in range(self.count)]
        os.unlink(self.path)


if __name__ == "__main__":
    if sys.argv[1] == "--frames":
        watch_frames(sys.argv[3], json.loads(sys.argv[4]), sys.argv[2])
    else:
        watch(sys.argv[1], json.loads(sys.argv[2]))
