"""Probe arithmetic: turn what the in-page probe recorded for one action into the metrics.

All inputs are on the page's performance timeline (ms), so differences are browser-clock
durations; no Python clock is involved.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionTiming:
    click_ts_ms: float
    first_preview_paint_ts_ms: float | None
    final_paint_ts_ms: float
    click_to_preview_ms: float | None
    click_to_final_ms: float
    previews_painted: int
    paint_method: str


def measure_action(record: dict) -> ActionTiming:
    """`record` is the probe's `collect()` result: click, final paint, and all paints since the
    click. Previews are the paints after the click and before the final's paint."""
    click = record["click"]
    final = record["final"]
    if click is None:
        raise ValueError("the probe saw no trusted click on the action's control")
    if final is None:
        raise ValueError("no image was painted in the output region after the click")
    previews = sorted(p["t"] for p in record["paints"] if click <= p["t"] < final["t"])
    first_preview = previews[0] if previews else None
    return ActionTiming(
        click_ts_ms=round(click, 1),
        first_preview_paint_ts_ms=first_preview,
        final_paint_ts_ms=final["t"],
        click_to_preview_ms=None if first_preview is None else round(first_preview - click, 1),
        click_to_final_ms=round(final["t"] - click, 1),
        previews_painted=len(previews),
        paint_method=final["method"],
    )
