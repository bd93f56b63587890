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


def previews_of_this_action(paints: list[dict], click: float, final: dict) -> list[float]:
    """Paint times of the action's previews: paints after the click and before the final's
    paint, of content new since the click (`old`: the previous final re-mounted, a history
    thumbnail), in a preview or final image (role "other": a gallery image), each picture
    once and none of the final's own picture. Records made before the probe hashed content
    have none of these keys: each of their paints counts, as it did then."""
    times, pictures = [], {final.get("content")} - {None}
    for paint in sorted(paints, key=lambda p: p["t"]):
        if not click <= paint["t"] < final["t"] or paint.get("old") or paint.get("role") == "other":
            continue
        content = paint.get("content")
        if content is not None:
            if content in pictures:
                continue
            pictures.add(content)
        times.append(paint["t"])
    return times


def measure_action(record: dict) -> ActionTiming:
    """`record` is the probe's `collect()` result: click, final paint, and all paints since the
    click. Previews are the paints of this action before the final's paint."""
    click = record["click"]
    final = record["final"]
    if click is None:
        raise ValueError("the probe saw no trusted click on the action's control")
    if final is None:
        raise ValueError("no image was painted in the output region after the click")
    previews = previews_of_this_action(record["paints"], click, final)
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
