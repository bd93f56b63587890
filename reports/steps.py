"""AUDIT: one row per action, computed from the raw record (events.jsonl).

Each `action` event holds the probe's record (click time, every paint with its method), the
page's `performance.timeOrigin` and the server's own epoch-ms times; this module turns them
into click_to_preview_ms, click_to_final_ms, the server breakdown and delivery with the rules
in reports/timing.py. steps.csv is this table written out, a convenience export for other
tools; it is never read back for a run of the current record format.

Run directories of record format 1 (written before the audit moved here) froze these values
into steps.csv; for those, the rows come from that file and every column the probe's record
can give is recomputed from events.jsonl, so today's rules apply to them too.
"""

from __future__ import annotations

import re

import pandas as pd

from .records import Records, safe_link
from .timing import measure_action

STEP_COLUMNS = [
    "attempt",
    "creators",
    "creator",
    "journey",
    "prompt_id",
    "prompt",
    "seed",
    "seed_requested",
    "step_index",
    "action",
    "mask",
    "repeats",
    "click_ts_ms",
    "click_epoch_ms",
    "first_preview_paint_ts_ms",
    "final_paint_ts_ms",
    "click_to_preview_ms",
    "click_to_final_ms",
    "click_to_export_ms",
    "previews_painted",
    "paint_method",
    "watch",
    "server_job",
    "server_received_ts_ms",
    "server_inference_start_ts_ms",
    "server_first_preview_ts_ms",
    "server_final_ts_ms",
    "previews_produced",
    "delivery_ms",
    "status",
    "error",
    "image",
    "screenshot",
]
TEXT_COLUMNS = [
    "journey",
    "prompt_id",
    "prompt",
    "action",
    "mask",
    "paint_method",
    "watch",
    "server_job",
    "status",
    "error",
    "image",
    "screenshot",
]
WHOLE_NUMBER_COLUMNS = [
    "attempt",
    "creators",
    "creator",
    "seed",
    "seed_requested",
    "step_index",
    "repeats",
    "previews_painted",
    "previews_produced",
]
NUMBER_COLUMNS = [c for c in STEP_COLUMNS if c not in TEXT_COLUMNS + WHOLE_NUMBER_COLUMNS]
IDENTITY = ("attempt", "creators", "creator", "journey", "prompt_id", "prompt", "step_index", "action", "mask")


def step_table(records: Records) -> pd.DataFrame:
    """Every recorded step, in the order recorded, with its metrics computed."""
    if records.record_format == 1:
        rows = recorded_rows(records)
    else:
        rows = [row for event in records.events if (row := row_of(event)) is not None]
    rows = last_attempts(rows)
    for row in rows:
        row["image"] = safe_link(records.path, row.get("image"), records.problems, "image")
        row["screenshot"] = safe_link(records.path, row.get("screenshot"), records.problems, "screenshot")
    return typed(pd.DataFrame(rows, columns=STEP_COLUMNS))


def last_attempts(rows: list[dict]) -> list[dict]:
    """The steps of each journey run's last attempt (a retry, or a resume after the run was
    stopped): a journey run is the unit, its steps depend on each other. Earlier attempts stay
    in events.jsonl (and name a journey run flaky); they are not counted twice."""
    for row in rows:
        row["attempt"] = row.get("attempt") or 1  # records before attempts were numbered
    last: dict[str, int] = {}
    for row in rows:
        last[row["prompt_id"]] = max(last.get(row["prompt_id"], 1), int(row["attempt"]))
    return [row for row in rows if int(row["attempt"]) == last[row["prompt_id"]]]


def failure_reason(error) -> str:
    """A failed step's error with its numbers (job ids, ports, times) set aside, so that
    failures of one kind group together."""
    return re.sub(r"\d+", "N", str(error or "no error recorded"))


def typed(steps: pd.DataFrame) -> pd.DataFrame:
    """Explicit dtypes: ids and text stay strings (`NA`, `null`, `1` are ids, not values)."""
    for column in TEXT_COLUMNS:
        steps[column] = steps[column].map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))
        steps[column] = steps[column].astype(object)
    for column in NUMBER_COLUMNS:
        steps[column] = pd.to_numeric(steps[column], errors="coerce").astype(float)
    for column in WHOLE_NUMBER_COLUMNS:
        steps[column] = pd.to_numeric(steps[column], errors="coerce").round().astype("Int64")
    return steps


def row_of(event: dict) -> dict | None:
    kind = event.get("event")
    if kind == "action":
        return action_row(event)
    if kind == "export":
        click, saved = event["click"], event["saved_at"]  # the runner records both with every export
        return {
            **identity(event),
            "click_ts_ms": round(click, 1),
            "click_epoch_ms": on_epoch(event, click),
            "click_to_export_ms": round(saved - click, 1),
            "paint_method": "download-saved",
            "status": "ok",
            "image": event.get("image"),
        }
    if kind == "step_failed":
        return {
            **identity(event),
            "status": "failed",
            "error": event.get("error"),
            "screenshot": event.get("screenshot"),
        }
    return None


def identity(event: dict) -> dict:
    """Which step an event is. `seed` is the seed that ran, read back from the UI after an
    image action (`seed_shown`), or null: not known. The pack's seed is only what was asked
    (`seed_requested`; runs recorded before it had its own key keep it as `seed`)."""
    return {
        **{key: event.get(key) for key in IDENTITY},
        "seed": event.get("seed_shown"),
        "seed_requested": event.get("seed_requested", event.get("seed")),
    }


def action_row(event: dict) -> dict:
    """generate / reroll / edit: the probe's record → timings; the server's epoch times → the
    page's timeline (exact when server and browser share a clock, as with the reference app)."""
    row = {**identity(event), "image": event.get("image"), "repeats": event.get("repeats"), "watch": event.get("watch")}
    try:
        timing = measure_action(event["probe"])
    except (KeyError, TypeError, ValueError) as exc:
        return {**row, "status": "failed", "error": f"the probe's record cannot be timed: {exc}"}
    row.update(timing_columns(timing), status="ok", click_epoch_ms=on_epoch(event, timing.click_ts_ms))
    server = event.get("server") or {}
    if "times" in server and event.get("time_origin") is not None:
        row.update(server_columns(server, event["time_origin"], timing.final_paint_ts_ms))
    return row


def on_epoch(event: dict, page_ms: float) -> float | None:
    """A time on the page's timeline as Unix epoch ms (performance.timeOrigin + it): to line up
    steps of several creators, each on its own page's timeline."""
    origin = event.get("time_origin")
    return None if origin is None else round(origin + page_ms, 1)


def timing_columns(timing) -> dict:
    return {
        "click_ts_ms": timing.click_ts_ms,
        "first_preview_paint_ts_ms": timing.first_preview_paint_ts_ms,
        "final_paint_ts_ms": timing.final_paint_ts_ms,
        "click_to_preview_ms": timing.click_to_preview_ms,
        "click_to_final_ms": timing.click_to_final_ms,
        "previews_painted": timing.previews_painted,
        "paint_method": timing.paint_method,
    }


def server_columns(server: dict, time_origin: float, final_paint_ts_ms: float) -> dict:
    times = server["times"]

    def on_page(epoch_ms):
        return None if epoch_ms is None else round(epoch_ms - time_origin, 1)

    previews = times.get("previews_produced") or []
    final = on_page(times.get("final_produced"))
    return {
        "server_job": server.get("job"),
        "server_received_ts_ms": on_page(times.get("request_received")),
        "server_inference_start_ts_ms": on_page(times.get("inference_start")),
        "server_first_preview_ts_ms": on_page(previews[0]) if previews else None,
        "server_final_ts_ms": final,
        "previews_produced": len(previews),
        "delivery_ms": None if final is None else round(final_paint_ts_ms - final, 1),
    }


def recorded_rows(records: Records) -> list[dict]:
    """Format 1: the old runner's rows, with the probe-derived columns (and delivery, which
    depends on the final's paint) recomputed from the `action` events."""
    probes = {
        (str(e.get("prompt_id")), str(e.get("step_index"))): e["probe"]
        for e in records.events
        if e.get("event") == "action" and "probe" in e
    }
    rows = []
    for recorded in records.recorded_steps or []:
        row = {column: recorded.get(column) for column in STEP_COLUMNS}
        probe = probes.get((str(row["prompt_id"]), str(row["step_index"]).removesuffix(".0")))
        if row["status"] == "ok" and probe is not None:
            try:
                timing = measure_action(probe)
            except (KeyError, TypeError, ValueError):
                timing = None
            if timing is not None:
                row.update(timing_columns(timing))
                server_final = row.get("server_final_ts_ms")
                if server_final is not None:
                    row["delivery_ms"] = round(timing.final_paint_ts_ms - float(server_final), 1)
        rows.append(row)
    return rows
