"""AUDIT timing: click-to-preview, click-to-final and click-to-export per action type (p50/p95
with N), and the actions timed by a fallback paint method."""

from __future__ import annotations

import pandas as pd

from ..run import Run
from ..stats import distribution

VISUAL_PROGRESS_METRICS = ("time_to_recognisable_preview_ms", "generation_speed_index_ms")


def action_stats(steps: pd.DataFrame, judged: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """p50/p95 with N per action type, over successful actions; with the judges' values, also
    time to recognisable preview and generation speed index."""
    judged = judged or {}
    ok = steps[steps["status"] == "ok"]
    rows = []
    for action in ("generate", "reroll", "edit", "repeat", "export"):
        of_action = ok[ok["action"] == action]
        if of_action.empty:
            continue
        if action == "export":
            metrics = {"click_to_export_ms": distribution(of_action["click_to_export_ms"])}
        else:
            metrics = {
                "click_to_preview_ms": distribution(of_action["click_to_preview_ms"]),
                "click_to_final_ms": distribution(of_action["click_to_final_ms"]),
                "previews_painted": distribution(of_action["previews_painted"]),
            }
            for metric in VISUAL_PROGRESS_METRICS:
                values = [judged.get(image, {}).get(metric) for image in of_action["image"]]
                if any(v is not None for v in values):
                    metrics[metric] = distribution(values)
        rows.append(
            {"action": action, "metrics": metrics, "paint_methods": sorted(of_action["paint_method"].dropna().unique())}
        )
    return rows


PRIMARY_METHODS = ("element-timing", "draw-call", "download-saved")


def fallback_paints(steps: pd.DataFrame) -> list[dict]:
    """Actions whose paint time came from a fallback method (not Element Timing renderTime), or
    that were timed while screencast frames were also taken (an empty output region at the
    click): those frames cost CPU during the action."""
    ok = steps[(steps["status"] == "ok") & steps["paint_method"].notna()]
    fallen = ok[~ok["paint_method"].isin(PRIMARY_METHODS) | ok["watch"].isin(("both", "draw-calls"))]
    return fallen[["prompt_id", "step_index", "action", "paint_method", "watch"]].to_dict("records")


def audit(run: Run, judged: dict[str, dict[str, float]]) -> dict:
    return {"action_stats": action_stats(run.steps, judged), "fallback_paints": fallback_paints(run.steps)}
