"""Paint times from screencast frames, for output regions Element Timing cannot see (<canvas>).

Chromium emits a screencast frame when the page's pixels change, stamped (epoch ms) with a
frame time on the same vsync grid as requestAnimationFrame: measured here, its offsets from rAF
timestamps are whole multiples of 16.67 ms. Cropping each frame to the output region and
comparing it with the one before gives the times the region changed: every change after the
click is a paint (previews, then the final). Precision is one frame.

A paint is new content, not any pixel change (`is_new_content`): a change confined to a box
smaller than 1 % of the region (a spinner, a caret, a badge) is not a paint, and neither is a change that
keeps what was there at a different brightness or contrast — pixels that fit new = a·old + b
with a ≥ 0.15 (the UI dims its output, or lays a translucent veil over it, while it works).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from playwright.sync_api import Page, ScreencastFrame

PIXEL_CHANGE = 16  # grey levels (0–255) a pixel must move by to count: above JPEG noise
MIN_CHANGED_PIXELS = 64  # fewer changed pixels (an 8×8 patch) is edge noise, not a new image
MIN_CHANGED_SHARE = 0.01  # nor is a change confined to a box smaller than this share of the region (a spinner)
MIN_STRUCTURE = 8.0  # grey-level std of the old pixels above which a brightness change can be told apart
SETTLING_MS = 40.0  # a move of the region shows in the frames within this long of being recorded
MIN_KEPT_CONTRAST = 0.15  # new = a·old + b with a at least this keeps the old picture (dimmed, veiled)


class OutputRegionFrames:
    """Record screencast frames while an action runs: `start()` before the click, `stop()`
    after the done condition, then `changes()`."""

    def __init__(self, page: Page):
        self.page = page
        self.frames: list[ScreencastFrame] = []

    def start(self, limit_ms: int = 1000) -> None:
        """Start, and wait for the first frame: what the region showed before the click, which
        the first paint is told apart from (a click right after start() could change the
        region before Chromium sent it)."""
        self.page.screencast.start(on_frame=lambda frame: self.frames.append(frame), size=self.page.viewport_size)
        waited = 0
        while not self.frames and waited < limit_ms:
            self.page.wait_for_timeout(10)
            waited += 10

    def stop(self, quiet_ms: int = 250, limit_ms: int = 3000) -> None:
        """Stop once no frame has arrived for `quiet_ms`: frames come only when pixels change,
        and the one that shows the final may still be on its way when the done condition holds."""
        waited, seen = 0, -1
        while waited < limit_ms and seen != len(self.frames):
            seen = len(self.frames)
            self.page.wait_for_timeout(quiet_ms)
            waited += quiet_ms
        self.page.screencast.stop()

    def changes(self, time_origin: float, boxes: list[dict]) -> list[float]:
        """Times (page timeline, ms) at which the output region's pixels changed. `boxes` are
        the region's positions recorded by the probe ({t, x, y, width, height}); each frame is
        cropped with the position in force when it was presented. A move of the region (a line
        of text shown above it pushes it down) reaches the frames a frame or two after the probe
        records it: a frame that close to a move is cropped at both positions, and the crop more
        like the frame before (correlation, so a dimming does not decide it) is kept, so a move
        alone is never a paint."""
        times: list[float] = []
        previous: np.ndarray | None = None
        for frame in sorted(self.frames, key=lambda f: f["timestamp"]):  # they can arrive out of order
            t = frame["timestamp"] - time_origin
            at = next((i for i in range(len(boxes) - 1, -1, -1) if boxes[i]["t"] <= t), 0)
            near = [
                i for i in (at - 1, at + 1) if 0 <= i < len(boxes) and abs(boxes[max(i, at)]["t"] - t) <= SETTLING_MS
            ]
            regions = [crop(frame, boxes[i]) for i in (at, *near)]
            if previous is None:
                region = regions[0]
            else:
                before = previous  # bound here: the key below reads it after the narrowing
                region = max(regions, key=lambda r: likeness(before, r))
                h, w = min(region.shape[0], previous.shape[0]), min(region.shape[1], previous.shape[1])
                if is_new_content(previous[:h, :w], region[:h, :w]):
                    times.append(round(t, 1))
            previous = region
        return times


def likeness(old: np.ndarray, new: np.ndarray) -> float:
    """Correlation of two crops' pixels: 1 for the same picture at any brightness or contrast."""
    h, w = min(new.shape[0], old.shape[0]), min(new.shape[1], old.shape[1])
    a, b = old[:h, :w].ravel().astype(np.float64), new[:h, :w].ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def is_new_content(old: np.ndarray, new: np.ndarray) -> bool:
    """Whether the region shows something new: enough pixels changed, and not merely the old
    picture at another brightness or contrast (see the module's docstring)."""
    changed = np.abs(new - old) > PIXEL_CHANGE
    if int(changed.sum()) < MIN_CHANGED_PIXELS:
        return False
    rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    spread = (rows[-1] - rows[0] + 1) * (columns[-1] - columns[0] + 1)
    if spread < MIN_CHANGED_SHARE * changed.size:
        return False  # confined to a small spot: a spinner, a caret, a badge
    before, after = old[changed].astype(np.float64), new[changed].astype(np.float64)
    if before.std() < MIN_STRUCTURE:
        return True  # drawn onto an empty (flat) area: new content
    a, b = np.polyfit(before, after, 1)
    residual = after - (a * before + b)
    return not (a >= MIN_KEPT_CONTRAST and np.sqrt(np.mean(residual**2)) < PIXEL_CHANGE / 2)


def crop(frame: ScreencastFrame, b: dict) -> np.ndarray:
    image = Image.open(io.BytesIO(frame["data"])).convert("L")
    scale = image.width / frame["viewportWidth"]
    region = image.crop(
        (
            round(b["x"] * scale),
            round(b["y"] * scale),
            round((b["x"] + b["width"]) * scale),
            round((b["y"] + b["height"]) * scale),
        )
    )
    return np.asarray(region, dtype=np.int16)


def screencast_record(click: float, changes: list[float]) -> dict:
    """The probe-shaped record of one action measured from screencast frames: every change
    after the click is a paint, the last one is the final."""
    paints = [t for t in changes if t >= click]
    return {
        "click": click,
        "final": {"t": paints[-1], "method": "screencast", "url": ""} if paints else None,
        "paints": [{"t": t, "method": "screencast", "url": ""} for t in paints],
    }
