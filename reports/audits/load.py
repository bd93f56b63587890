"""AUDIT: how the product held up with many creators at once (`--creators`), from the record.

Per level of the sweep (N creators walking at once):
  throughput_finals_per_min  finals painted (generate, reroll, edit, repeat) ÷ the level's
                             wall time (all browsers open → the last creator done) × 60 000
  click_to_final_ms          {n, p50, p95} of the level's actions
  click_to_request_ms        click → the server received the request (where the server says)
  queue_wait_ms              request received → inference start, from the server's times
  errors                     failed steps, creators that could not run, journey runs skipped
                             at the time limit
And over the whole run, click_to_final_ms by the number of creators active at the click: a
creator is active from its creator_started to its creator_finished event, and the click's
epoch time is the page's performance.timeOrigin + the click's event.timeStamp.
"""

from __future__ import annotations

import pandas as pd

from ..run import Run
from ..stats import rounded
from ..stats import rounded_distribution as dist
from ..steps import failure_reason

IMAGE_ACTIONS = ("generate", "reroll", "edit", "repeat")


CreatorKey = tuple[int | None, int | None]  # (creators, creator) as an event names them; None if it does not


def creator_windows(events: list[dict]) -> dict[CreatorKey, tuple[float, float]]:
    """{(creators, creator): (start, end)} in epoch ms; a creator that never finished (the run
    was stopped) is active until the last event recorded."""
    last = max((e.get("wall_time") or 0) for e in events) * 1000 if events else 0.0
    starts: dict[CreatorKey, float] = {}
    ends: dict[CreatorKey, float] = {}
    for e in events:
        key = (e.get("creators"), e.get("creator"))
        if e.get("event") == "creator_started":
            starts[key] = e["wall_time"] * 1000
        elif e.get("event") == "creator_finished":
            ends[key] = e["wall_time"] * 1000
    return {key: (start, ends.get(key, last)) for key, start in starts.items()}


def level_span_ms(events: list[dict], creators: int) -> float | None:
    """load_level_started → load_level_finished (or the level's last event, if it never finished)."""
    mine = [e for e in events if e.get("creators") == creators and e.get("wall_time")]
    start = next((e["wall_time"] for e in mine if e.get("event") == "load_level_started"), None)
    end = next((e["wall_time"] for e in mine if e.get("event") == "load_level_finished"), None)
    if end is None and mine:
        end = mine[-1]["wall_time"]
    return None if start is None or end is None or end <= start else (end - start) * 1000


def errors_of(steps: pd.DataFrame, events: list[dict], creators: int) -> dict:
    failed = steps[steps["status"] != "ok"]
    reasons: dict[str, int] = {}
    for error in failed["error"]:
        reason = failure_reason(error)[:160]
        reasons[reason] = reasons.get(reason, 0) + 1
    of_level = [e for e in events if e.get("creators") == creators]
    return {
        "failed_steps": int(len(failed)),
        "by_reason": [{"reason": r, "count": n} for r, n in sorted(reasons.items(), key=lambda item: -item[1])],
        "creators_failed": sum(e.get("event") == "creator_failed" for e in of_level),
        "journey_runs_skipped": sum(e.get("event") == "journey_skipped" for e in of_level),
    }


def level_summary(steps: pd.DataFrame, events: list[dict], creators: int) -> dict:
    mine = steps[steps["creators"] == creators]
    finals = mine[mine["action"].isin(IMAGE_ACTIONS) & (mine["status"] == "ok")]
    span = level_span_ms(events, creators)
    return {
        "creators": creators,
        "wall_s": rounded(span / 1000 if span else None, 2),
        "finals": int(len(finals)),
        "throughput_finals_per_min": rounded(len(finals) / span * 60_000 if span else None, 2),
        "click_to_final_ms": dist(finals["click_to_final_ms"]),
        "click_to_request_ms": dist(finals["server_received_ts_ms"] - finals["click_ts_ms"]),
        "queue_wait_ms": dist(finals["server_inference_start_ts_ms"] - finals["server_received_ts_ms"]),
        "errors": errors_of(mine, events, creators),
    }


def by_active_creators(steps: pd.DataFrame, events: list[dict]) -> list[dict]:
    """click_to_final_ms grouped by how many creators (of the same level) were active at the click."""
    windows = creator_windows(events)
    finals = steps[steps["action"].isin(IMAGE_ACTIONS) & (steps["status"] == "ok") & steps["click_epoch_ms"].notna()]
    active = [
        sum(
            1
            for (level, _), (start, end) in windows.items()
            if level == row.creators and start <= row.click_epoch_ms <= end
        )
        for row in finals.itertuples()
    ]
    finals = finals.assign(active=active)
    return [
        {"active_creators": int(n), "click_to_final_ms": dist(group["click_to_final_ms"])}
        for n, group in finals.groupby("active")
        if n > 0
    ]


def load_summary(manifest: dict, events: list[dict], steps: pd.DataFrame) -> dict | None:
    """The `load` key of summary.json; None for a run without --creators."""
    plan = manifest.get("load")
    if not plan:
        return None
    sweep = [level_summary(steps, events, n) for n in plan["creators"]]
    largest = max(sweep, key=lambda level: level["creators"]) if sweep else {}
    return {
        "creators": largest.get("creators"),
        "throughput_finals_per_min": largest.get("throughput_finals_per_min"),
        "ramp_s": plan.get("ramp_s"),
        "time_limit_s": plan.get("time_limit_s"),
        "sweep": sweep,
        "by_active_creators": by_active_creators(steps, events),
    }


def audit(run: Run) -> dict | None:
    return load_summary(run.manifest, run.events, run.steps)
