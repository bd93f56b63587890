"""AUDIT: load a run directory and compute the metrics, from the run directory alone.

Words and definitions are those of DESIGN.md: click_to_preview_ms, click_to_final_ms,
click_to_export_ms, time to useful image (TTUI), iterations-to-useful.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .records import RunDirError, read_records
from .stats import FEW_SAMPLES, distribution, percentile
from .steps import step_table

__all__ = ["FEW_SAMPLES", "RunDirError", "Run", "load_run", "summarize", "summary_json"]

CANDIDATE_ACTIONS = ("generate", "reroll", "edit")
SUMMARY_SCHEMA = "imagejourney.summary/1"


@dataclass
class Run:
    path: Path
    manifest: dict
    events: list[dict]
    steps: pd.DataFrame
    problems: list[str]  # what the audit skipped or could not find, one sentence each
    complete: bool  # False when the run never finished (no run_finished recorded)


def load_run(path: Path) -> Run:
    """The raw record of a run directory and the step table the audit computes from it."""
    records = read_records(Path(path))
    steps = step_table(records)
    return Run(records.path, records.manifest, records.events, steps, records.problems, records.complete)


def action_stats(steps: pd.DataFrame) -> list[dict]:
    """p50/p95 with N per action type, over successful actions."""
    ok = steps[steps["status"] == "ok"]
    rows = []
    for action in ("generate", "reroll", "edit", "export"):
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
        rows.append({"action": action, "metrics": metrics, "paint_methods": sorted(of_action["paint_method"].dropna().unique())})
    return rows


def server_breakdown(steps: pd.DataFrame) -> list[dict]:
    """Per action, where the time went (p50 with N), when the server reported its times:
    click → request received → inference start → final produced → final painted."""
    if "server_final_ts_ms" not in steps:
        return []
    ok = steps[(steps["status"] == "ok") & steps["server_final_ts_ms"].notna()]
    rows = []
    for action, of_action in ok.groupby("action", sort=False):
        parts = {
            "click to request received": of_action["server_received_ts_ms"] - of_action["click_ts_ms"],
            "queue wait": of_action["server_inference_start_ts_ms"] - of_action["server_received_ts_ms"],
            "inference to final produced": of_action["server_final_ts_ms"] - of_action["server_inference_start_ts_ms"],
            "delivery (final produced to painted)": of_action["delivery_ms"],
        }
        rows.append({
            "action": action,
            "parts": {name: distribution(values) for name, values in parts.items()},
            "previews_produced": distribution(of_action["previews_produced"]),
            "previews_painted": distribution(of_action["previews_painted"]),
        })
    return rows


def server_times_missing(run: Run) -> int:
    """Actions done without the server's times although the UI profile says where they are."""
    if not run.manifest.get("ui_profile", {}).get("server_timings"):
        return 0
    steps = run.steps
    done = steps[(steps["status"] == "ok") & steps["action"].isin(CANDIDATE_ACTIONS)]
    return int(done["server_final_ts_ms"].isna().sum())


def judge_not_blank(image_path: Path, rule: dict) -> tuple[bool, float]:
    """Acceptance rule `not_blank`: the final's grey-level pixel standard deviation is at least
    `min_pixel_std` (a black, white or flat image is not useful)."""
    with Image.open(image_path) as image:
        std = float(np.asarray(image.convert("L"), dtype=np.float32).std())
    return std >= float(rule["min_pixel_std"]), std


ACCEPTANCE_RULES = {"not_blank": judge_not_blank}


def describe_rule(rule: dict) -> str:
    if rule.get("rule") == "not_blank":
        return f"not_blank: the final's pixel standard deviation (grey levels 0–255) is at least {rule['min_pixel_std']}"
    return json.dumps(rule)


def judge_candidates(run: Run) -> pd.DataFrame:
    """Every successful generate/reroll/edit final, with the acceptance rule's verdict. A
    final whose image is missing is not judged, so not accepted (the report lists it)."""
    rule = run.manifest["journey"]["acceptance"]
    judge = ACCEPTANCE_RULES.get(rule.get("rule"))
    if judge is None:
        raise RunDirError(f"unknown acceptance rule '{rule.get('rule')}' in manifest.json; known: {', '.join(ACCEPTANCE_RULES)}")
    steps = run.steps
    candidates = steps[(steps["status"] == "ok") & steps["action"].isin(CANDIDATE_ACTIONS)].copy()
    verdicts = [judge(run.path / image, rule) if image else (False, None) for image in candidates["image"]]
    candidates["accepted"] = [accepted for accepted, _ in verdicts]
    candidates["score"] = [score for _, score in verdicts]
    return candidates


def planned_journey_runs(manifest: dict) -> list[str]:
    """The journey runs (prompt ids, one per seed) the pack asked for: a run that never
    started still counts in "N of M reached"."""
    if "journey_runs" in manifest:
        return [str(p) for p in manifest["journey_runs"]]
    planned = []  # manifests before journey_runs: expand the pack's prompts as the loader does
    for prompt in manifest["journey"].get("prompts", []):
        if isinstance(prompt, dict) and "id" in prompt:
            seeds = prompt.get("seeds")
            planned += [f"{prompt['id']}-{seed}" for seed in seeds] if seeds else [str(prompt["id"])]
    return planned


def journey_runs(run: Run, candidates: pd.DataFrame) -> list[dict]:
    """TTUI per journey run: first generate click → final paint of the first accepted candidate.
    A journey run that never reaches an accepted image counts as a failure, never dropped; one
    that never started (the run was killed first) counts as not reached too."""
    recorded = list(dict.fromkeys(run.steps["prompt_id"].dropna()))
    prompts = {str(p.get("id")): p.get("text") for p in run.manifest["journey"].get("prompts", []) if isinstance(p, dict)}
    rows = []
    for prompt_id in list(dict.fromkeys(planned_journey_runs(run.manifest) + recorded)):
        steps = run.steps[run.steps["prompt_id"] == prompt_id]
        row = {"prompt_id": prompt_id, "prompt": None, "started": not steps.empty, "candidates": 0,
               "failed_steps": 0, "ttui_ms": None, "iterations_to_useful": None}
        if steps.empty:
            row["prompt"] = prompts.get(prompt_id) or prompts.get(prompt_id.rsplit("-", 1)[0])
            rows.append(row)
            continue
        generates = steps[(steps["action"] == "generate") & steps["click_ts_ms"].notna()]
        mine = candidates[candidates["prompt_id"] == prompt_id].sort_values("step_index")
        accepted = mine[mine["accepted"]]
        row.update(prompt=steps["prompt"].iloc[0], candidates=len(mine), failed_steps=int((steps["status"] != "ok").sum()))
        if not generates.empty and not accepted.empty:
            first = accepted.iloc[0]
            row["ttui_ms"] = float(first["final_paint_ts_ms"] - generates["click_ts_ms"].iloc[0])
            row["iterations_to_useful"] = int(mine.index.get_loc(first.name) + 1)
            row["useful_action"] = first["action"]
        rows.append(row)
    return rows


def check_budgets(budgets: dict, stats: list[dict], ttui: dict) -> list[dict]:
    """Each budget (`generate.click_to_final_ms.p95: 5000` or `ttui_ms.p50: 3000`) against the
    measured percentile. A budget with no sample is breached: nothing measured is no pass."""
    by_action = {row["action"]: row["metrics"] for row in stats}
    results = []
    for key, limit in budgets.items():
        parts = key.split(".")
        summary = ttui if parts[0] == "ttui_ms" else by_action.get(parts[0], {}).get(parts[1], {"n": 0})
        value = summary.get(parts[-1]) if summary.get("n") else None
        results.append({"budget": key, "limit_ms": float(limit), "value_ms": value, "n": summary.get("n", 0),
                        "ok": value is not None and value <= limit})
    return results


PRIMARY_METHODS = ("element-timing", "download-saved")


def fallback_paints(steps: pd.DataFrame) -> list[dict]:
    """Actions whose paint time came from a fallback method (not Element Timing renderTime)."""
    ok = steps[(steps["status"] == "ok") & steps["paint_method"].notna()]
    fallen = ok[~ok["paint_method"].isin(PRIMARY_METHODS)]
    return fallen[["prompt_id", "step_index", "action", "paint_method"]].to_dict("records")


def summarize(run: Run) -> dict:
    candidates = judge_candidates(run)
    journeys = journey_runs(run, candidates)
    ttui = pd.Series([j["ttui_ms"] for j in journeys], dtype=float)
    steps = run.steps
    stats = action_stats(steps)
    ttui_summary = distribution(ttui)
    traces = {p.stem: f"traces/{p.name}" for p in sorted((run.path / "traces").glob("*.zip"))}
    for journey in journeys:
        journey["trace"] = traces.get(journey["prompt_id"])
    iterations = [j["iterations_to_useful"] for j in journeys if j["iterations_to_useful"] is not None]
    return {
        "manifest": run.manifest,
        "complete": run.complete,
        "problems": run.problems,
        "action_stats": stats,
        "server_breakdown": server_breakdown(steps),
        "server_times_missing": server_times_missing(run),
        "journeys": journeys,
        "traces": traces,
        "budgets": check_budgets(run.manifest["journey"].get("budgets", {}), stats, ttui_summary),
        "ttui": ttui_summary,
        "ttui_reached": int(ttui.notna().sum()),
        "iterations_to_useful": {"p50": percentile(iterations, 50),
                                 "max": max(iterations) if iterations else None},
        "acceptance_rule": describe_rule(run.manifest["journey"]["acceptance"]),
        "acceptance_rate": float(candidates["accepted"].mean()) if len(candidates) else None,
        "candidates": candidates.to_dict("records"),
        "exports": steps[(steps["action"] == "export") & (steps["status"] == "ok")].to_dict("records"),
        "failures": steps[steps["status"] != "ok"].to_dict("records"),
        "fallback_paints": fallback_paints(steps),
        "started_at": started_at(run.events),
        "finished_at": finished_at(run.events),
    }


def iso_time(wall_time) -> str | None:
    return None if wall_time is None else datetime.fromtimestamp(wall_time, timezone.utc).isoformat(timespec="seconds")


def started_at(events: list[dict]) -> str | None:
    return iso_time(events[0].get("wall_time")) if events else None


def finished_at(events: list[dict]) -> str | None:
    """When run_finished was recorded; None for a run that never finished."""
    return next((iso_time(e.get("wall_time")) for e in events if e.get("event") == "run_finished"), None)


def summary_json(summary: dict) -> dict:
    """The audit's machine-readable result (`summary.json`, schema imagejourney.summary/1 in
    DESIGN.md): what CI, `compare` and the history store read instead of the HTML."""
    m = summary["manifest"]

    def dist(d: dict) -> dict:
        return {"n": d["n"], "p50": d["p50"], "p95": d["p95"]}

    return {
        "schema": SUMMARY_SCHEMA,
        "run_id": m.get("run_id"),
        "journey": m["journey"].get("name"),
        "config_hash": m.get("config_hash"),
        "target": {"name": m.get("target", {}).get("name"), "url": m.get("target", {}).get("url")},
        "started_at": summary["started_at"],
        "finished_at": summary["finished_at"],
        "complete": summary["complete"],
        "conditions": list(m.get("degraded", [])),
        "actions": {row["action"]: {name: dist(d) for name, d in row["metrics"].items()} for row in summary["action_stats"]},
        "ttui_ms": {**dist(summary["ttui"]), "reached": summary["ttui_reached"], "journey_runs": len(summary["journeys"])},
        "iterations_to_useful": summary["iterations_to_useful"],
        "acceptance_rate": summary["acceptance_rate"],
        "acceptance_rule": summary["acceptance_rule"],
        "labels": {"labelled": 0, "useful": 0, "not_useful": 0},
        "cost": None,
        "quality": None,
        "budgets": [{"name": b["budget"], "limit": b["limit_ms"], "value": b["value_ms"], "held": b["ok"]}
                    for b in summary["budgets"]],
        "failed_steps": len(summary["failures"]),
        "flaky_journey_runs": [],
        "comparison": None,
        "load": None,
        "problems": summary["problems"],
    }
