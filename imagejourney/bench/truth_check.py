"""`imagejourney bench fidelity --base-url URL --ui-profile PROFILE`: the truth check, on any UI.

A journey (the pack given with --journey, else a short one made for the profile: prompt,
generate, three rerolls) runs in Chromium headed on a virtual screen (Xvfb), each journey run on
a fresh page, timed by the probe as in any run (after a look, not counted, at where a fresh
page shows its first image). Meanwhile a separate process reads the output
region off the screen about every millisecond (screen_truth.RegionWatcher) and keeps every
state it shows. Afterwards each image action's probe times are set beside the screen's own
times, read in the area where the action's final was shown (the final <img>'s box, or the
rectangle its picture was drawn into on a canvas). Previews drawn on a canvas away from the
final (a node graph's sampler node) are read where they were drawn: after the first action,
that area is watched as a second square.

  screen preview  the first state after the click that shows a new picture there: not flat
                  (blank), and not the picture shown at the click under a tint (dimmed, greyed,
                  veiled: every colour a linear function of the old one). Highlights, progress
                  bars and cursors outside that area are never read.
  screen final    the state from which the area shows, tints aside, the picture it shows when
                  the action has ended (its final painted and the runner done with it): the
                  last new picture. A veil lifted after the final does not move it.

Error = probe − screen, in ms on the page's clock, over previews and finals. The screen time of
a state is the middle of the interval between the two reads that bracket its arrival; half that
interval is the screen's own uncertainty, reported beside the errors.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from imagejourney.journeys.browser import launch_chromium
from imagejourney.journeys.config import load_config
from imagejourney.journeys.pack import load_pack
from imagejourney.journeys.profile import check_compatible, load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.journeys.runner import IMAGE_STEPS, JourneyRunner, install_probe
from imagejourney.journeys.target import RemoteTarget
from imagejourney.reports.stats import percentile, rounded
from imagejourney.reports.timing import measure_action

from . import BenchFailed
from .screen_truth import SCREEN, RegionWatcher, VirtualScreen, headed_launch_args, page_clock_shift
from .screen_truth import viewport_origin as find_viewport

DEFAULT_RUNS = 3
TARGET_P95_MS = 17.0  # one frame at 60 Hz
WATCHED_MAX = 512  # px: the side of the square of the screen watched at most, at full resolution
MARGIN = 48  # px around the last final's area watched for the next action (a layout may move it)
EDGE = 2  # px left out at each edge of the final's area (the image's own edges blend with the page)
SAME_LEVELS = 0.2  # mean |difference| (0-255) at most between two reads of one picture (moved by the layout)
TINT_FIT = 0.95  # a tint: this share of the area within TINT_LEVELS of a linear function of the old colours
TINT_LEVELS = 8
FLAT_STD = 2.0  # a state this even (std of its colours) shows no picture
PLAIN_COLOURS, PLAIN_SHARE = 4, 0.9  # nor does one with this share of it in this many colours
END_MARGIN_MS = 50  # after the runner is done with an action: its final's frame is on the screen by then

# Where the output region is, read every frame: a layout that moves it (a status line shown above
# it, a panel beside it closing) moves the final's picture on the screen too. A layout can move
# with no change to the DOM (a CSS transition, a resize), so a MutationObserver would note it late.
TRACK_REGION = """(output) => {
  if (window.__imagejourneyRegion) return;
  const boxes = (window.__imagejourneyRegion = []);
  const note = (t) => {
    const el = document.querySelector(output);
    if (el) {
      const r = el.getBoundingClientRect(), last = boxes[boxes.length - 1];
      if (!last || last.x !== r.x || last.y !== r.y) boxes.push({ t, x: r.x, y: r.y });
    }
    requestAnimationFrame(note);
  };
  note(performance.now());
}"""
# Where the action's final was shown, in viewport CSS px, with the page's clock and the region's
# moves; and where its first preview was drawn when it was drawn on a canvas (a node graph draws
# its previews in the sampler's node and its final in the output node; an <img> preview is taken
# to be shown where the final is).
AREAS = """(output) => {
  const probe = window.__imagejourney, record = probe.collect(), final = record.final;
  const canvas = probe.regionCanvases().pop();
  const onCanvas = (rect, size) => {
    if (!canvas) return null;
    const b = canvas.getBoundingClientRect(), sx = b.width / canvas.width, sy = b.height / canvas.height;
    let [x, y, w, h] = rect || [0, 0, canvas.width, canvas.height];
    if (w === null || w === undefined) [w, h] = size;
    return { x: b.left + x * sx, y: b.top + y * sy, width: w * sx, height: h * sy };
  };
  let box = null;
  if (final && final.method === "draw-call") box = onCanvas(final.rect, final.size);
  else if (final) {
    const url = probe.shownImageUrl();
    const img = [...document.querySelectorAll(output + " img")].filter((i) => (i.currentSrc || i.src) === url).pop();
    if (img) box = img.getBoundingClientRect().toJSON();
  }
  const region = document.querySelector(output);
  if (!box && region) box = region.getBoundingClientRect().toJSON();
  const preview = record.paints.find((p) => !p.old && p.method === "draw-call" && (!final || p.content !== final.content));
  return { box, preview: preview ? onCanvas(preview.rect, preview.size) : null, now: performance.now(),
           moves: window.__imagejourneyRegion || [] };
}"""
REGION_BOX = """(output) => {
  const region = document.querySelector(output);
  return region ? region.getBoundingClientRect().toJSON() : null;
}"""


def default_pack(profile, directory: Path):
    """The short journey run when --journey is not given: prompt, generate and three rerolls
    (three more generates where the profile has no reroll control)."""
    again = "reroll" if "reroll" in profile.controls else "generate"
    text = textwrap.dedent(
        f"""\
        name: truth-check
        description: Generate once and {again} three times, for the truth check.
        action_timeout_s: 60
        prompts:
          - id: truth-check
            text: a red boat on a calm lake
            seed: 3
        steps: [prompt, generate, {again}, {again}, {again}]
        acceptance:
          rule: not_blank
          min_pixel_std: 1
        """
    )
    path = directory / "truth-check.yaml"
    path.write_text(text)
    return load_pack(str(path))


class WatchedRunner(JourneyRunner):
    """A journey run whose image actions are each watched from the screen, at full resolution,
    from just before the click until the runner is done with the action: a square around where
    the last final was shown (none yet: the output region's top left) and, when the last
    action's previews were drawn outside it, a second square around where they were."""

    def __init__(self, *args, display: str, work: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.display, self.work = display, work
        self.watched: dict[int, dict] = {}  # step index → what the screen showed, and where
        self.last_box = self.last_preview_box = None
        # Where the output region was during a fresh page's first image action, relative to where
        # it ended (a layout that settles after the first click moves it): that action's square
        # holds the area at each of those places. Set from the journey run before; this run's own
        # is kept in first_travel for the next.
        self.travel: list[tuple[int, int]] = []
        self.first_travel: list[tuple[int, int]] | None = None
        self.priority = ""

    def open(self, again: bool = False) -> None:
        super().open(again)
        self.origin = find_viewport(self.page, self.display)
        self.page.evaluate(TRACK_REGION, self.profile.output)

    def square_around(self, box: dict | None, travel: Sequence[tuple[int, int]] = ()) -> dict:
        """The square of the viewport (CSS px) watched around `box`, and around it moved by each
        offset of `travel` (None: the output region's top left)."""
        viewport = self.page.viewport_size or {"width": 1280, "height": 900}
        if box is not None:
            xs = [box["x"] + dx for dx, _ in [(0, 0), *travel]]
            ys = [box["y"] + dy for _, dy in [(0, 0), *travel]]
            left, top = min(xs) - MARGIN, min(ys) - MARGIN
            width, height = (
                max(xs) - min(xs) + box["width"] + 2 * MARGIN,
                max(ys) - min(ys) + box["height"] + 2 * MARGIN,
            )
            if width > WATCHED_MAX:  # a large final: the square around its centre
                left, width = left + (width - WATCHED_MAX) / 2, WATCHED_MAX
            if height > WATCHED_MAX:
                top, height = top + (height - WATCHED_MAX) / 2, WATCHED_MAX
        else:
            region = self.page.evaluate(REGION_BOX, self.profile.output) or {"x": 0, "y": 0}
            left, top = region["x"], region["y"]
            width = height = WATCHED_MAX
        left, top = max(0, int(left)), max(0, int(top))
        width = max(8, min(int(width) + 1, viewport["width"] - left, SCREEN[0] - self.origin[0] - left))
        height = max(8, min(int(height) + 1, viewport["height"] - top, SCREEN[1] - self.origin[1] - top))
        return {"left": left, "top": top, "width": width, "height": height}

    def watched_squares(self) -> list[dict]:
        squares = [self.square_around(self.last_box, self.travel if not self.watched else [])]
        if self.last_preview_box is not None and square_holding([squares[0]], self.last_preview_box) is None:
            squares.append(self.square_around(self.last_preview_box))
        return squares

    def image_action(self, index: int, action: str, control_action: str | None = None, **extra) -> None:
        squares = self.watched_squares()
        regions = [{**q, "left": self.origin[0] + q["left"], "top": self.origin[1] + q["top"]} for q in squares]
        shift = page_clock_shift(self.page)
        started = self.page.evaluate("performance.now()")
        watcher = RegionWatcher(self.display, regions, str(self.work / f"screen-{index}.npz"))
        with watcher:
            super().image_action(index, action, control_action, **extra)
            self.settle()  # the final's paint is in: the screen shows it by now
            area = self.page.evaluate(AREAS, self.profile.output)
            self.page.wait_for_timeout(END_MARGIN_MS)
        self.priority = watcher.priority
        drift = page_clock_shift(self.page) - shift
        self.last_box, self.last_preview_box = area["box"], area["preview"] or self.last_preview_box
        if self.first_travel is None:
            self.first_travel = travel_during(area["moves"], started)
        self.watched[index] = {
            "squares": squares,
            "times": [[((a + b) / 2 + shift, (b - a) / 2) for a, b in times] for times in watcher.times],
            "frames": watcher.frames,
            "area": area,
            "end": area["now"] + END_MARGIN_MS,
            "drift": drift,
        }


def travel_during(moves: list[dict], started: float) -> list[tuple[int, int]]:
    """Where the output region was from `started` on (the one it stood at then, and each it moved
    to), relative to where it ended; [] when it did not move."""
    if not moves:
        return []
    standing = [m for m in moves if m["t"] <= started][-1:]
    end = moves[-1]
    return [
        (round(m["x"] - end["x"]), round(m["y"] - end["y"]))
        for m in standing + [m for m in moves if m["t"] > started]
        if (m["x"], m["y"]) != (end["x"], end["y"])
    ]


def square_holding(squares: list[dict], box: dict) -> int | None:
    """The first of `squares` that holds `box` whole (its EDGE aside), or None."""
    return next(
        (
            k
            for k, q in enumerate(squares)
            if inside(box, {"x": q["left"], "y": q["top"], "width": q["width"], "height": q["height"]})
        ),
        None,
    )


def shows_no_picture(state: np.ndarray) -> bool:
    """Whether a state of an area shows no picture: flat, or nearly all of it (PLAIN_SHARE) in its
    PLAIN_COLOURS commonest colours, as an empty canvas is (a fill or a checkerboard, outlines,
    a label such as InvokeAI's "Waiting for Image"). A picture, even a coarse preview, has
    hundreds of colours, none of them common."""
    if state.std() < FLAT_STD:
        return True
    packed = state[..., 0].astype(np.uint32) << 16 | state[..., 1].astype(np.uint32) << 8 | state[..., 2]
    counts = np.sort(np.unique(packed, return_counts=True)[1])
    return counts[-PLAIN_COLOURS:].sum() >= PLAIN_SHARE * packed.size


def picture_change(a: np.ndarray, b: np.ndarray) -> str:
    """How state `b` of an area differs from state `a`: "same" (one picture, read twice), "tint"
    (the same picture dimmed, greyed or veiled: its colours a linear function of the old ones,
    but for a spinner or a line of text), "flat" (b shows no picture: shows_no_picture) or "new"."""
    if np.abs(a.astype(np.float32) - b).mean() <= SAME_LEVELS:
        return "same"
    if shows_no_picture(b):
        return "flat"
    if shows_no_picture(a):
        return "new"
    x, y = a.ravel().astype(np.float32), b.ravel().astype(np.float32)
    slope, offset = np.polyfit(x, y, 1)
    fits = np.abs(y - (slope * x + offset)) <= TINT_LEVELS
    strong = abs(slope - 1) >= 0.1 or abs(offset) >= TINT_LEVELS
    return "tint" if strong and fits.mean() >= TINT_FIT else "new"


def shows_new_picture(crops: list, before: int, k: int, moved=None) -> bool:
    """Whether state k shows a new picture against state `before`: picture_change says "new",
    and it is not `before`'s picture moved (moved(before, k), when given)."""
    return picture_change(crops[before], crops[k]) == "new" and not (moved and moved(before, k))


def screen_times(times: list[tuple[float, float]], crops: list, click: float, end: float, moved=None) -> dict:
    """The screen's preview and final for one action: `times[k]` is when state k reached the
    screen (page ms, ± uncertainty), `crops[k]` that state of the final's area (None: not known,
    the area was off the watched square); the action ran from `click` to `end`. `moved(a, k)`,
    when given, says whether state k shows state a's picture moved on the screen (a stage that
    re-centres), which is not a new picture. Each is (time, uncertainty), or None when the screen
    showed none."""
    known = [k for k, c in enumerate(crops) if c is not None]
    before = max((k for k in known if times[k][0] <= click), default=None)
    after = [k for k in known if click < times[k][0] <= end]
    out: dict[str, tuple[float, float] | None] = {"preview": None, "final": None}
    if before is None or not after:
        return out

    def new(k: int) -> bool:
        return shows_new_picture(crops, before, k, moved)

    # The final: back from the last state, over reads of one picture and tints of it.
    first_of_final = after[-1]
    for previous, k in zip(reversed(after[:-1]), reversed(after[1:])):
        if picture_change(crops[previous], crops[k]) not in ("same", "tint") or picture_change(
            crops[k], crops[previous]
        ) not in ("same", "tint"):
            break
        first_of_final = previous
    if not any(new(k) for k in after if k >= first_of_final):
        return out  # the area ends showing no new picture (the old one, tinted, moved or gone)
    out["final"] = times[first_of_final]
    out["preview"] = next((times[k] for k in after if k < first_of_final and new(k)), None)
    return out


SHIFT_PEAKS = 5  # candidate moves tried, strongest correlation first
MOVED_OVERLAP = 0.5  # share of the area that must be on the watched square before and after a move


def moved_picture(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether frame `b` of a watched square shows, in `box` (x, y, w, h in the square), the
    picture frame `a` showed, moved (tints aside): a canvas stage that pans or re-centres moves
    what it shows without showing anything new. The move is found by phase correlation of the
    two frames; each of the strongest SHIFT_PEAKS candidates is checked on the part of the box
    that was on the square both before and after it."""
    x, y, w, h = box
    grey_a, grey_b = a.astype(np.float32).mean(axis=2), b.astype(np.float32).mean(axis=2)
    cross = np.fft.fft2(grey_b - grey_b.mean()) * np.conj(np.fft.fft2(grey_a - grey_a.mean()))
    correlation = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-6)).real
    rows, cols = correlation.shape
    for peak in np.argsort(correlation.ravel())[::-1][:SHIFT_PEAKS]:
        dy, dx = divmod(int(peak), cols)
        dy, dx = (dy - rows if dy > rows // 2 else dy), (dx - cols if dx > cols // 2 else dx)
        if (dx, dy) == (0, 0):
            continue
        # b(y, x) = a(y - dy, x - dx): the part of the box whose old place was on the square too
        left, top = max(x, dx, 0), max(y, dy, 0)
        right, bottom = min(x + w, cols + dx, cols), min(y + h, rows + dy, rows)
        if right <= left or bottom <= top or (right - left) * (bottom - top) < MOVED_OVERLAP * w * h:
            continue
        then, now = a[top - dy : bottom - dy, left - dx : right - dx], b[top:bottom, left:right]
        if picture_change(then, now) in ("same", "tint"):
            return True
    return False


LAYOUT_LAG_MS = 150  # a move of the output region reaches the screen within this (frames lag on a busy machine)


def in_square(square: dict, box: dict) -> tuple[int, int, int, int]:
    """`box` (viewport CSS px) as (x, y, width, height) in the watched `square`'s pixels, EDGE
    left out at each side."""
    return (
        round(box["x"]) - square["left"] + EDGE,
        round(box["y"]) - square["top"] + EDGE,
        max(1, int(box["width"]) - 2 * EDGE),
        max(1, int(box["height"]) - 2 * EDGE),
    )


def crops_of(watched: dict, k: int, box: dict) -> list:
    """`box` (the final's area, or a preview's) in each state of watched square `k`, moved with
    the output region (None where it was not inside the square). A move reaches the screen some
    frames after the page made it: for a state read within LAYOUT_LAG_MS of a move, the area is
    taken where it was before or after the move, whichever looks more like the state before."""
    moves = watched["area"]["moves"]
    end_x, end_y = (moves[-1]["x"], moves[-1]["y"]) if moves else (0, 0)
    x0, y0, w, h = in_square(watched["squares"][k], box)

    def offset(move):
        return (round(move["x"]) - round(end_x), round(move["y"]) - round(end_y)) if move else (0, 0)

    def crop(frame, dx, dy):
        left, top = x0 + dx, y0 + dy
        inside = left >= 0 and top >= 0 and left + w <= frame.shape[1] and top + h <= frame.shape[0]
        return frame[top : top + h, left : left + w] if inside else None

    crops, previous = [], None
    for (t, _), frame in zip(watched["times"][k], watched["frames"][k]):
        standing = [m for m in moves if m["t"] <= t - LAYOUT_LAG_MS]
        recent = [m for m in moves if t - LAYOUT_LAG_MS < m["t"] <= t]
        candidates = [crop(frame, *offset(m)) for m in [standing[-1] if standing else None, *recent]]
        candidates = [c for c in candidates if c is not None]
        if previous is not None and len(candidates) > 1:
            chosen = min(candidates, key=lambda c: float(np.abs(c.astype(np.float32) - previous).mean()))
        else:
            chosen = candidates[-1] if candidates else None
        crops.append(chosen)
        previous = chosen if chosen is not None else previous
    return crops + [None] * (len(watched["times"][k]) - len(crops))  # states timed but not kept


def first_new_picture(times: list[tuple[float, float]], crops: list, click: float, end: float, moved=None):
    """The first state after `click` (up to `end`) that shows a new picture in an area of its
    own, away from the final (a node graph's sampler node): (time, uncertainty), or None.
    `moved` as for screen_times."""
    known = [k for k, c in enumerate(crops) if c is not None]
    before = max((k for k in known if times[k][0] <= click), default=None)
    if before is None:
        return None
    return next(
        (times[k] for k in known if click < times[k][0] <= end and shows_new_picture(crops, before, k, moved)),
        None,
    )


def screen_of(watched: dict, click: float) -> dict:
    """The screen's preview and final for one watched action. The final is read in the final's
    area; the preview there too, unless the action's first preview was drawn elsewhere on a
    canvas, inside a watched square: then it is read where it was drawn."""
    area, end = watched["area"], watched["end"]
    k = square_holding(watched["squares"], area["box"]) or 0
    seen = screen_times(
        watched["times"][k], crops_of(watched, k, area["box"]), click, end, mover(watched, k, area["box"])
    )
    preview = area["preview"]
    if preview is not None and not inside(preview, area["box"]):
        held = square_holding(watched["squares"], preview)
        seen["preview"] = (
            None
            if held is None
            else first_new_picture(
                watched["times"][held], crops_of(watched, held, preview), click, end, mover(watched, held, preview)
            )
        )
    return seen


def mover(watched: dict, k: int, box: dict):
    """moved(a, b) for screen_times: whether state b of watched square `k` shows state a's picture
    moved, in `box` (viewport CSS px) taken where it ends."""
    frames, (x, y, w, h) = watched["frames"][k], in_square(watched["squares"][k], box)
    return lambda a, b: moved_picture(frames[a], frames[b], (max(0, x), max(0, y), w, h))


def inside(box: dict, outer: dict) -> bool:
    """`box` lies within `outer` (viewport CSS px), give or take EDGE."""
    return (
        box["x"] >= outer["x"] - EDGE
        and box["y"] >= outer["y"] - EDGE
        and box["x"] + box["width"] <= outer["x"] + outer["width"] + EDGE
        and box["y"] + box["height"] <= outer["y"] + outer["height"] + EDGE
    )


def read_actions(run: RunDirectory) -> list[dict]:
    """The image actions of a run directory's events, with the probe's record."""
    actions = []
    for line in (run.path / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "action" and event.get("action") in IMAGE_STEPS and event.get("probe"):
            actions.append(event)
    return actions


def compare_run(runner: WatchedRunner, run: RunDirectory) -> list[dict]:
    """Probe beside screen, per image action of one journey run."""
    rows = []
    for event in read_actions(run):
        watched = runner.watched.get(event["step_index"])
        if watched is None:
            continue
        timing = measure_action(event["probe"])
        screen = screen_of(watched, timing.click_ts_ms)

        def since_click(seen, click=timing.click_ts_ms):
            return None if seen is None else round(seen[0] - click, 1)

        rows.append(
            {
                "action": event["action"],
                "journey_run": event.get("prompt_id"),
                "step_index": event["step_index"],
                "paint_method": timing.paint_method,
                "probe_preview_ms": timing.click_to_preview_ms,
                "screen_preview_ms": since_click(screen["preview"]),
                "probe_final_ms": timing.click_to_final_ms,
                "screen_final_ms": since_click(screen["final"]),
                "screen_uncertainty_ms": max(
                    [round(s[1], 1) for s in (screen["preview"], screen["final"]) if s is not None], default=None
                ),
                "clock_drift_ms": round(watched["drift"], 2),
            }
        )
    return rows


def errors_of(actions: list[dict]) -> list[float]:
    """probe − screen, for each preview and final that both saw."""
    return [
        a[f"probe_{kind}_ms"] - a[f"screen_{kind}_ms"]
        for a in actions
        for kind in ("preview", "final")
        if a[f"probe_{kind}_ms"] is not None and a[f"screen_{kind}_ms"] is not None
    ]


def error_summary(actions: list[dict]) -> dict:
    errors = [abs(e) for e in errors_of(actions)]
    if not errors:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {
        "p50": rounded(percentile(errors, 50)),
        "p95": rounded(percentile(errors, 95)),
        "max": round(max(errors), 1),
        "n": len(errors),
    }


def run(
    base_url: str,
    ui_profile: str,
    config_path: Path,
    journey: str | None = None,
    runs: int | None = None,
    progress=print,
) -> dict:
    config = load_config(config_path)
    profile = load_profile(ui_profile)
    target = RemoteTarget.check(base_url)
    work = Path(tempfile.mkdtemp(prefix="imagejourney-truth-"))  # its journey runs and screen reads
    try:
        return check(base_url, config, profile, target, work, journey, runs, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def first_action_only(pack):
    """The pack up to its first image action, for a look at where a fresh page shows it; None
    when it has no image action."""
    first = next((i for i, step in enumerate(pack.steps) if step.kind in IMAGE_STEPS), None)
    return None if first is None else dataclasses.replace(pack, steps=pack.steps[: first + 1])


def check(base_url, config, profile, target, work: Path, journey, runs, progress) -> dict:
    pack = load_pack(journey) if journey else default_pack(profile, work)
    check_compatible(pack, profile)
    runs = runs or (len(pack.prompts) if journey else DEFAULT_RUNS)
    actions: list[dict] = []
    conditions: dict[str, str] = {}
    with VirtualScreen() as display, sync_playwright() as p:
        launch, source = headed_launch_args(display, p.chromium.executable_path, config["BROWSER"]["args"])
        browser = launch_chromium(p, launch)

        def journey_run(run_pack, prompt, name: str, areas) -> tuple[WatchedRunner, RunDirectory]:
            context = browser.new_context(viewport=config["BROWSER"]["viewport"])
            page = context.new_page()
            install_probe(page, profile.output, profile.final_image, profile.preview_image)
            run_dir = RunDirectory.create(work, {"journey": {"name": run_pack.name}, "config_hash": f"truth-{name}"})
            runner = WatchedRunner(
                page,
                base_url=target.url,
                profile=profile,
                pack=run_pack,
                prompt=prompt,
                run=run_dir,
                display=display,
                work=work,
            )
            runner.last_box, runner.last_preview_box, runner.travel = areas
            for failure in runner.run():
                progress(f"  step {failure.step_index} ({failure.action}) failed: {failure.error}")
            context.close()
            return runner, run_dir

        # Where a fresh page shows its first image: nothing on a fresh page says where a node graph
        # will draw, so a first journey run, not counted, goes as far as its first image action, with
        # another prompt and seed (a product that caches results, as ComfyUI does, would otherwise
        # hand the first counted generate the look's image without generating it; a profile may
        # have no seed field, so the prompt differs too). Each journey run's first
        # action is then watched where the run before showed its final and previews (a fresh page
        # lays out as the last one did).
        areas: tuple[dict | None, dict | None, list[tuple[int, int]]] = (None, None, [])
        look = first_action_only(pack)
        if look is not None:
            progress(f"a look first: where a fresh page shows {pack.name}'s first image on {target.url} (not counted)")
            first = pack.prompts[0]
            other = dataclasses.replace(first, id=f"{first.id}-look", text=f"{first.text}, again", seed=first.seed + 1)
            runner, _ = journey_run(look, other, "look", areas)
            areas = (runner.last_box, runner.last_preview_box, runner.first_travel or [])
        for n in range(runs):
            prompt = pack.prompts[n % len(pack.prompts)]
            progress(
                f"journey run {n + 1} of {runs}: {pack.name} · {prompt.id} on {target.url}, watched from the screen"
            )
            runner, run_dir = journey_run(pack, prompt, f"run{n}", areas)
            actions += compare_run(runner, run_dir)
            areas = (runner.last_box, runner.last_preview_box, runner.first_travel or [])
            conditions.setdefault("reader_priority", runner.priority or "?")
        conditions["browser"] = f"chromium {browser.version} ({source}), headed on Xvfb"
        browser.close()
    if not actions:
        raise BenchFailed(f"no image action of the journey '{pack.name}' was done on {target.url}; nothing to compare")
    return {
        "base_url": target.url,
        "ui_profile": profile.name,
        "journey": pack.name,
        "journey_runs": runs,
        "conditions": conditions,
        "actions": actions,
        "error_ms": error_summary(actions),
        "target_p95_ms": TARGET_P95_MS,
    }


def format_table(result: dict) -> str:
    def ms(value):
        return "—" if value is None else f"{value:.1f}"

    lines = [
        f"truth check: UI profile '{result['ui_profile']}' on {result['base_url']}, journey {result['journey']} "
        f"× {result['journey_runs']} (fresh page each)",
        "click → preview / final (ms), the probe's beside the screen's own reading of where each was shown",
        f"{'action':8} {'method':14} | {'probe preview':>13} {'screen':>8} {'error':>7} | "
        f"{'probe final':>11} {'screen':>8} {'error':>7} | {'screen ±':>8}",
    ]
    for a in result["actions"]:
        errors = []
        for kind in ("preview", "final"):
            probe, screen = a[f"probe_{kind}_ms"], a[f"screen_{kind}_ms"]
            errors.append(None if probe is None or screen is None else probe - screen)
        lines.append(
            f"{a['action']:8} {a['paint_method']:14} | {ms(a['probe_preview_ms']):>13} {ms(a['screen_preview_ms']):>8} "
            f"{ms(errors[0]):>7} | {ms(a['probe_final_ms']):>11} {ms(a['screen_final_ms']):>8} {ms(errors[1]):>7} | "
            f"{ms(a['screen_uncertainty_ms']):>8}"
        )
    e = result["error_ms"]
    one_sided = sum(
        (a[f"probe_{k}_ms"] is None) != (a[f"screen_{k}_ms"] is None)
        for a in result["actions"]
        for k in ("preview", "final")
    )
    lines.append(
        f"|error| over {e['n']} previews and finals: p50 {ms(e['p50'])}  p95 {ms(e['p95'])}  max {ms(e['max'])} ms"
        + (f"; {one_sided} seen by one side only (—)" if one_sided else "")
    )
    met = e["p95"] is not None and e["p95"] <= result["target_p95_ms"] and not one_sided
    lines.append(f"goal p95 |error| ≤ {result['target_p95_ms']:g} ms (one frame): {'met' if met else 'NOT met'}")
    c = result["conditions"]
    lines.append(
        f"{c.get('browser', '')}; screen reader scheduling {c.get('reader_priority', '?')}; clock drift "
        f"during an action at most {max([abs(a['clock_drift_ms']) for a in result['actions']], default=0)} ms"
    )
    return "\n".join(lines)
