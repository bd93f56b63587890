"""AUDIT: load a run directory and compute the metrics, from the run directory alone.

Words and definitions are those of DESIGN.md: click_to_preview_ms, click_to_final_ms,
click_to_export_ms, time to useful image (TTUI), iterations-to-useful.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from journeys.rundir import STEP_COLUMNS

CANDIDATE_ACTIONS = ("generate", "reroll", "edit")
FEW_SAMPLES = 20  # percentiles on fewer samples are shown but marked


class RunDirError(Exception):
    """One sentence: what is wrong with the run directory."""


@dataclass
class Run:
    path: Path
    manifest: dict
    steps: pd.DataFrame


def load_run(path: Path) -> Run:
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise RunDirError(f"{path} is not a run directory (no manifest.json); pass a directory under journey-results/")
    manifest = json.loads(manifest_path.read_text())
    steps_path = path / "steps.csv"
    if steps_path.is_file() and steps_path.stat().st_size:
        steps = pd.read_csv(steps_path, keep_default_na=True)
    else:
        steps = pd.DataFrame(columns=STEP_COLUMNS)  # nothing recorded yet: an empty report, not a crash
    return Run(path=path, manifest=manifest, steps=steps)


def percentile_summary(values: pd.Series) -> dict:
    values = values.dropna().astype(float)
    n = len(values)
    return {
        "n": n,
        "p50": float(values.quantile(0.5)) if n else None,
        "p95": float(values.quantile(0.95)) if n else None,
        "few": n < FEW_SAMPLES,
    }


def action_stats(steps: pd.DataFrame) -> list[dict]:
    """p50/p95 with N per action type, over successful actions."""
    ok = steps[steps["status"] == "ok"]
    rows = []
    for action in ("generate", "reroll", "edit", "export"):
        of_action = ok[ok["action"] == action]
        if of_action.empty:
            continue
        if action == "export":
            metrics = {"click_to_export_ms": percentile_summary(of_action["click_to_export_ms"])}
        else:
            metrics = {
                "click_to_preview_ms": percentile_summary(of_action["click_to_preview_ms"]),
                "click_to_final_ms": percentile_summary(of_action["click_to_final_ms"]),
                "previews_painted": percentile_summary(of_action["previews_painted"]),
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
            "parts": {name: percentile_summary(values) for name, values in parts.items()},
            "previews_produced": percentile_summary(of_action["previews_produced"]),
            "previews_painted": percentile_summary(of_action["previews_painted"]),
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
    """Every successful generate/reroll/edit final, with the acceptance rule's verdict."""
    rule = run.manifest["journey"]["acceptance"]
    judge = ACCEPTANCE_RULES.get(rule.get("rule"))
    if judge is None:
        raise RunDirError(f"unknown acceptance rule '{rule.get('rule')}' in manifest.json; known: {', '.join(ACCEPTANCE_RULES)}")
    steps = run.steps
    candidates = steps[(steps["status"] == "ok") & steps["action"].isin(CANDIDATE_ACTIONS)].copy()
    verdicts = [judge(run.path / image, rule) for image in candidates["image"]]
    candidates["accepted"] = [accepted for accepted, _ in verdicts]
    candidates["score"] = [score for _, score in verdicts]
    return candidates


def journey_runs(run: Run, candidates: pd.DataFrame) -> list[dict]:
    """TTUI per journey run: first generate click → final paint of the first accepted candidate.
    A journey run that never reaches an accepted image counts as a failure, never dropped."""
    rows = []
    for prompt_id, steps in run.steps.groupby("prompt_id", sort=False):
        generates = steps[(steps["action"] == "generate") & steps["click_ts_ms"].notna()]
        mine = candidates[candidates["prompt_id"] == prompt_id].sort_values("step_index")
        accepted = mine[mine["accepted"]]
        row = {
            "prompt_id": prompt_id,
            "prompt": steps["prompt"].iloc[0],
            "candidates": len(mine),
            "failed_steps": int((steps["status"] != "ok").sum()),
            "ttui_ms": None,
            "iterations_to_useful": None,
        }
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
    ttui_summary = percentile_summary(ttui)
    traces = {p.stem: f"traces/{p.name}" for p in sorted((run.path / "traces").glob("*.zip"))}
    for journey in journeys:
        journey["trace"] = traces.get(journey["prompt_id"])
    return {
        "manifest": run.manifest,
        "action_stats": stats,
        "server_breakdown": server_breakdown(steps),
        "server_times_missing": server_times_missing(run),
        "journeys": journeys,
        "traces": traces,
        "budgets": check_budgets(run.manifest["journey"].get("budgets", {}), stats, ttui_summary),
        "ttui": ttui_summary,
        "ttui_reached": int(ttui.notna().sum()),
        "acceptance_rule": describe_rule(run.manifest["journey"]["acceptance"]),
        "acceptance_rate": float(candidates["accepted"].mean()) if len(candidates) else None,
        "candidates": candidates.to_dict("records"),
        "exports": steps[(steps["action"] == "export") & (steps["status"] == "ok")].to_dict("records"),
        "failures": steps[steps["status"] != "ok"].to_dict("records"),
        "fallback_paints": fallback_paints(steps),
    }
