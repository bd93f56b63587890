"""Paint times from screencast frames, for output regions Element Timing cannot see (<canvas>).

Chromium emits a screencast frame when the page's pixels change, stamped (epoch ms) with a
frame time on the same vsync grid as requestAnimationFrame: measured here, its offsets from rAF
timestamps are whole multiples of 16.67 ms. Cropping each frame to the output region and
comparing it with the one before gives the times the region changed: every change after the
click is a paint (previews, then the final). Precision is one frame; anything else drawn inside
the region (a spinner on top of the image) also counts as a change.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from playwright.sync_api import Page

PIXEL_CHANGE = 16  # grey levels (0–255) a pixel must move by to count: above JPEG noise
MIN_CHANGED_PIXELS = 16  # fewer changed pixels than this is not a new image


class OutputRegionFrames:
    """Record screencast frames while an action runs: `start()` before the click, `stop()`
    after the done condition, then `changes()`."""

    def __init__(self, page: Page):
        self.page = page
        self.frames: list[dict] = []

    def start(self) -> None:
        self.page.screencast.start(on_frame=lambda frame: self.frames.append(frame), size=self.page.viewport_size)

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
        cropped with the position in force when it was presented."""
        times, previous = [], None
        for frame in self.frames:
            t = frame["timestamp"] - time_origin
            box = next((b for b in reversed(boxes) if b["t"] <= t), boxes[0])
            region = crop(frame, box)
            if previous is not None:
                h, w = min(region.shape[0], previous.shape[0]), min(region.shape[1], previous.shape[1])
                if (np.abs(region[:h, :w] - previous[:h, :w]) > PIXEL_CHANGE).sum() >= MIN_CHANGED_PIXELS:
                    times.append(round(t, 1))
            previous = region
        return times


def crop(frame: dict, b: dict) -> np.ndarray:
    image = Image.open(io.BytesIO(frame["data"])).convert("L")
    scale = image.width / frame["viewportWidth"]
    region = image.crop((round(b["x"] * scale), round(b["y"] * scale),
                         round((b["x"] + b["width"]) * scale), round((b["y"] + b["height"]) * scale)))
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
