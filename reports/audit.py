"""AUDIT: load a run directory and compute the metrics, from the run directory alone.

Words and definitions are those of DESIGN.md: click_to_preview_ms, click_to_final_ms,
click_to_export_ms, time to useful image (TTUI), iterations-to-useful.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .load import load_summary
from .records import RunDirError, read_judgements, read_labels, read_records, safe_link
from .stats import FEW_SAMPLES, distribution, percentile
from .steps import failure_reason, step_table
from .timing import previews_of_this_action

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
    judgements: pd.DataFrame  # judgements.csv: image, judge, value, model, calibrated
    labels: dict[str, str]  # labels.csv: image → "yes" | "no"


def load_run(path: Path) -> Run:
    """The raw record of a run directory and the step table the audit computes from it."""
    records = read_records(Path(path))
    steps = step_table(records)
    return Run(
        records.path,
        records.manifest,
        records.events,
        steps,
        records.problems,
        records.complete,
        read_judgements(records.path, records.problems),
        read_labels(records.path),
    )


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
        rows.append(
            {
                "action": action,
                "parts": {name: distribution(values) for name, values in parts.items()},
                "previews_produced": distribution(of_action["previews_produced"]),
                "previews_painted": distribution(of_action["previews_painted"]),
            }
        )
    return rows


def server_times_missing(run: Run) -> int:
    """Actions done without the server's times although the UI profile says where they are."""
    if not run.manifest.get("ui_profile", {}).get("server_timings"):
        return 0
    steps = run.steps
    done = steps[(steps["status"] == "ok") & steps["action"].isin(CANDIDATE_ACTIONS)]
    return int(done["server_final_ts_ms"].isna().sum())


BLANK_PIXEL_STD = 2.0  # grey levels (0–255): below this a final is one flat colour
RULE_JUDGES = {
    "not_blank": ("pixel_std", "min_pixel_std"),
    "clip_score": ("clip_score", "min"),
    "prompt_match": ("prompt_match", "min"),
}


def pixel_std(image: Image.Image) -> float:
    """Grey-level standard deviation of an image (0–255; 0 for one flat colour)."""
    return float(np.asarray(image.convert("L"), dtype=np.float32).std())


def image_facts(run_path: Path, images: list[str], need_std: set[str] | None = None) -> dict[str, dict]:
    """{image: {side, pixel_std}} for the run's images — `side` (the long side, px) from each
    file's header, `pixel_std` decoded only for the images in `need_std` (those no judge has
    measured) — kept in cache/images.json of the run directory (like its thumbnails), keyed by
    each file's modification time so a changed image is measured again."""
    cache_path = run_path / "cache" / "images.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    need_std = need_std or set()
    stamps = {image: os.stat(run_path / image).st_mtime_ns for image in images}
    stale = [
        image
        for image in images
        if cache.get(image, {}).get("mtime_ns") != stamps[image]
        or (image in need_std and "pixel_std" not in cache[image])
    ]

    def measure(image: str) -> dict:
        with Image.open(run_path / image) as opened:  # the header only, unless the pixels are needed
            facts = {"mtime_ns": stamps[image], "side": max(opened.size)}
            if image in need_std:
                facts["pixel_std"] = pixel_std(opened)
            return facts

    if stale:
        decode = [image for image in stale if image in need_std]
        cache.update((image, measure(image)) for image in stale if image not in need_std)  # headers: quick, GIL-bound
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # decoding releases the GIL
            cache.update(zip(decode, pool.map(measure, decode)))
        cache_path.parent.mkdir(exist_ok=True)
        cache_path.write_text(json.dumps(cache))
    return {image: cache[image] for image in images}


def describe_rule(rule: dict) -> str:
    for combinator, word in (("all", " and "), ("any", " or ")):
        if combinator in rule:
            return "(" + word.join(describe_rule(r) for r in rule[combinator]) + ")"
    if rule.get("rule") == "not_blank":
        return f"not_blank: pixel standard deviation (grey levels 0–255) ≥ {rule['min_pixel_std']}"
    if rule.get("rule") == "clip_score":
        return f"clip_score ≥ {rule['min']}"
    if rule.get("rule") == "prompt_match":
        return f"prompt_match: mean probability of the attributes the prompt names ≥ {rule['min']}"
    return json.dumps(rule)


def rule_verdict(rule: dict, values: dict) -> bool | None:
    """True / False, or None when a judge the rule needs has no value (not judged)."""
    if "all" in rule or "any" in rule:
        verdicts = [rule_verdict(r, values) for r in rule.get("all") or rule["any"]]
        decisive = False if "all" in rule else True
        if decisive in verdicts:
            return decisive
        return None if None in verdicts else not decisive
    if rule.get("rule") not in RULE_JUDGES:
        raise RunDirError(
            f"unknown acceptance rule '{rule.get('rule')}' in manifest.json; known: {', '.join(RULE_JUDGES)}"
        )
    judge, threshold = RULE_JUDGES[rule["rule"]]
    value = values.get(judge)
    return None if value is None else value >= float(rule[threshold])


def judge_candidates(run: Run) -> pd.DataFrame:
    """Every successful generate/reroll/edit final with its verdict, in this order of authority:
    a human label (labels.csv) is the final word; a blank final (one flat colour) is never
    useful; then the pack's acceptance rule over the judges' values (judgements.csv; pixel_std
    is computed here when missing). A final with no image, or whose rule needs a judge with no
    value, is "not judged", so not accepted."""
    rule = run.manifest["journey"]["acceptance"]
    steps = run.steps
    candidates = steps[(steps["status"] == "ok") & steps["action"].isin(CANDIDATE_ACTIONS)].copy()
    values = judge_values(run.judgements)
    images = [image for image in candidates["image"] if image]
    facts = image_facts(run.path, images, {image for image in images if "pixel_std" not in values.get(image, {})})
    verdicts, scores, judged = [], [], []
    for image in candidates["image"]:
        mine = dict(values.get(image, {})) if image else {}
        if image and "pixel_std" not in mine:
            mine["pixel_std"] = facts[image]["pixel_std"]
        label = run.labels.get(image) if image else None
        if label is not None:
            verdict = "useful (label)" if label == "yes" else "not useful (label)"
        elif not image:
            verdict = "not judged (image missing)"
        elif mine["pixel_std"] < BLANK_PIXEL_STD:
            verdict = "blank"
        else:
            accepted = rule_verdict(rule, mine)
            verdict = "not judged" if accepted is None else "accepted" if accepted else "rejected"
        verdicts.append(verdict)
        scores.append(mine.get("pixel_std"))
        judged.append(mine)
    candidates["verdict"] = verdicts
    candidates["accepted"] = [v in ("accepted", "useful (label)") for v in verdicts]
    candidates["labelled"] = [v.endswith("(label)") for v in verdicts]
    candidates["score"] = scores
    candidates["judges"] = judged
    return candidates


def judge_values(judgements: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{image: {judge: value}} from judgements.csv rows that have a value."""
    values: dict[str, dict[str, float]] = {}
    for row in judgements.dropna(subset=["value"]).itertuples():
        values.setdefault(row.image, {})[row.judge] = float(row.value)
    return values


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
    prompts = {
        str(p.get("id")): p.get("text") for p in run.manifest["journey"].get("prompts", []) if isinstance(p, dict)
    }
    steps_of: dict[str, list[dict]] = {}
    for step in run.steps.to_dict("records"):  # plain records: one pass, not a filter per journey run
        steps_of.setdefault(step["prompt_id"], []).append(step)
    candidates_of: dict[str, list[dict]] = {}
    for candidate in candidates.sort_values("step_index", kind="stable").to_dict("records"):
        candidates_of.setdefault(candidate["prompt_id"], []).append(candidate)
    rows = []
    for prompt_id in list(dict.fromkeys(planned_journey_runs(run.manifest) + recorded)):
        steps = steps_of.get(prompt_id, [])
        row = {
            "prompt_id": prompt_id,
            "prompt": None,
            "started": bool(steps),
            "candidates": 0,
            "failed_steps": 0,
            "ttui_ms": None,
            "iterations_to_useful": None,
        }
        if not steps:
            row["prompt"] = prompts.get(prompt_id) or prompts.get(prompt_id.rsplit("-", 1)[0])
            rows.append(row)
            continue
        generates = [s for s in steps if s["action"] == "generate" and pd.notna(s["click_ts_ms"])]
        mine = candidates_of.get(prompt_id, [])
        accepted = [c for c in mine if c["accepted"]]
        row.update(
            prompt=steps[0]["prompt"], candidates=len(mine), failed_steps=sum(s["status"] != "ok" for s in steps)
        )
        if generates and accepted:
            first = accepted[0]
            row["ttui_ms"] = float(first["final_paint_ts_ms"] - generates[0]["click_ts_ms"])
            row["iterations_to_useful"] = mine.index(first) + 1
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
        results.append(
            {
                "budget": key,
                "limit_ms": float(limit),
                "value_ms": value,
                "n": summary.get("n", 0),
                "ok": value is not None and value <= limit,
            }
        )
    return results


PRIMARY_METHODS = ("element-timing", "draw-call", "download-saved")


def fallback_paints(steps: pd.DataFrame) -> list[dict]:
    """Actions whose paint time came from a fallback method (not Element Timing renderTime), or
    that were timed while screencast frames were also taken (an empty output region at the
    click): those frames cost CPU during the action."""
    ok = steps[(steps["status"] == "ok") & steps["paint_method"].notna()]
    fallen = ok[~ok["paint_method"].isin(PRIMARY_METHODS) | ok["watch"].isin(("both", "draw-calls"))]
    return fallen[["prompt_id", "step_index", "action", "paint_method", "watch"]].to_dict("records")


LPIPS_JUDGES = ("reroll_diversity", "edit_consistency", "same_seed_lpips", "drift_vs_baseline")
SAME_SEED_LIMIT = 0.01  # LPIPS above which a same-seed repeat is flagged


def quality(run: Run, journeys: list[dict]) -> dict | None:
    """What the judges found (judgements.csv), per journey run and over the run; None when the
    run was not judged. LPIPS weights are named: 'uncalibrated' values are plumbing only."""
    j = run.judgements
    if j.empty:
        return None
    journey_of = dict(zip(run.steps["image"], run.steps["prompt_id"]))

    def of(judge: str) -> pd.DataFrame:
        return j[(j["judge"] == judge) & j["value"].notna()]

    lpips_rows = j[j["judge"].isin(LPIPS_JUDGES)]
    per_journey = j.assign(prompt_id=j["image"].map(journey_of)).groupby(["prompt_id", "judge"])["value"].mean()
    for journey in journeys:
        journey["quality"] = {
            judge: (None if pd.isna(v := per_journey.get((journey["prompt_id"], judge), float("nan"))) else float(v))
            for judge in (*LPIPS_JUDGES, "clip_score", "edit_outside_mask_max")
        }
    diversity = [
        q["quality"]["reroll_diversity"] for q in journeys if q.get("quality", {}).get("reroll_diversity") is not None
    ]
    same_seed = of("same_seed_lpips")["value"]
    clip = j[j["judge"] == "clip_score"]
    return {
        "lpips_weights": None
        if lpips_rows.empty
        else "pretrained"
        if (lpips_rows["calibrated"] == "yes").all()
        else "uncalibrated",
        "lpips_model": None if lpips_rows.empty else lpips_rows["model"].iloc[0],
        "reroll_diversity_p50": percentile(diversity, 50),
        "edit_consistency_p50": percentile(of("edit_consistency")["value"], 50),
        "edit_outside_mask_max": float(of("edit_outside_mask_max")["value"].max())
        if len(of("edit_outside_mask_max"))
        else None,
        "same_seed_lpips_max": float(same_seed.max()) if len(same_seed) else None,
        "same_seed_flagged": int((same_seed > SAME_SEED_LIMIT).sum()),
        "drift_vs_baseline_p50": percentile(of("drift_vs_baseline")["value"], 50),
        "clip": None
        if clip.empty
        else {
            "p50": percentile(clip["value"], 50),
            "n": int(clip["value"].notna().sum()),
            "model": clip["model"].iloc[0],
            "calibrated": bool((clip["calibrated"] == "yes").all()) and clip["value"].notna().all(),
        },
    }


def acceptance_by_cohort(run: Run, candidates: pd.DataFrame) -> dict[str, dict]:
    """Acceptance per cohort tag (the pack's tags and each prompt's own), with N candidates."""
    cohorts = run.manifest.get("cohorts") or {
        pid: run.manifest["journey"].get("cohort", []) for pid in planned_journey_runs(run.manifest)
    }
    found = {}
    for tag in sorted({t for tags in cohorts.values() for t in tags}):
        mine = candidates[candidates["prompt_id"].map(lambda pid, tag=tag: tag in cohorts.get(pid, []))]
        found[tag] = {"n": len(mine), "acceptance_rate": float(mine["accepted"].mean()) if len(mine) else None}
    return found


def aspect_of(manifest: dict) -> dict[str, str]:
    """{prompt id: aspect} from the pack's settings and each prompt's own (1:1 when unset)."""
    journey = manifest["journey"]
    default = str((journey.get("settings") or {}).get("aspect", "1:1"))
    found = {}
    for prompt in journey.get("prompts", []):
        if isinstance(prompt, dict) and "id" in prompt:
            aspect = str((prompt.get("settings") or {}).get("aspect", default))
            for seed in prompt.get("seeds") or [None]:
                found[str(prompt["id"]) if seed is None else f"{prompt['id']}-{seed}"] = aspect
    return found


def segments(run: Run, candidates: pd.DataFrame) -> dict[str, list[dict]]:
    """Acceptance and click-to-final per cohort tag, per prompt and per aspect."""
    cohorts = run.manifest.get("cohorts") or {}
    aspects = aspect_of(run.manifest)
    keyed = {
        "cohort tag": lambda pid: cohorts.get(pid) or run.manifest["journey"].get("cohort", []),
        "prompt": lambda pid: [pid],
        "aspect": lambda pid: [
            aspects.get(pid, str((run.manifest["journey"].get("settings") or {}).get("aspect", "1:1")))
        ],
    }
    found = {}
    for name, keys_of in keyed.items():
        groups: dict[str, list[int]] = {}
        for position, prompt_id in enumerate(candidates["prompt_id"]):
            for key in keys_of(prompt_id):
                groups.setdefault(str(key), []).append(position)
        found[name] = [
            {
                "segment": key,
                "n": len(rows),
                "acceptance_rate": float(candidates["accepted"].iloc[rows].mean()),
                "click_to_final_ms": distribution(candidates["click_to_final_ms"].iloc[rows]),
            }
            for key, rows in sorted(groups.items())
        ]
    return found


def failures_by_reason(failures: list[dict], traces: dict) -> list[dict]:
    """Failed steps grouped by their error (numbers such as job ids set aside), most frequent
    first, each with its first screenshot and trace."""
    groups: dict[str, list[dict]] = {}
    for failure in failures:
        reason = failure_reason(failure.get("error"))
        groups.setdefault(reason, []).append(failure)
    return [
        {
            "reason": reason,
            "count": len(group),
            "example": group[0]["error"],
            "screenshot": next((f["screenshot"] for f in group if isinstance(f.get("screenshot"), str)), None),
            "trace": next((traces[f["prompt_id"]] for f in group if f["prompt_id"] in traces), None),
            "where": ", ".join(f"{f['prompt_id']} step {f['step_index']}" for f in group[:5])
            + (f" and {len(group) - 5} more" if len(group) > 5 else ""),
        }
        for reason, group in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]


def judge_conditions(found: dict | None) -> list[str]:
    """Ways the judges fall short of a real measurement, listed with the run's conditions."""
    if not found:
        return []
    conditions = []
    if found["lpips_weights"] == "uncalibrated":
        conditions.append(
            "LPIPS uncalibrated (backbone weights not available): LPIPS values are plumbing, not perceptual distances"
        )
    clip = found["clip"]
    if clip and not clip["n"]:
        conditions.append(f"CLIP score not judged: {clip['model'].removeprefix('unavailable: ')}")
    elif clip and not clip["calibrated"]:
        conditions.append(f"CLIP score uncalibrated ({clip['model']})")
    return conditions


def cost(run: Run, candidates: pd.DataFrame, gpu_hour_usd: float | None) -> dict | None:
    """Cost per image and per usable image = GPU-seconds × price. GPU-seconds come from the
    server's own inference times where it reports them, else click-to-final (basis says which).
    No price (target `cost: {gpu_hour_usd: …}` or --gpu-hour-usd): no cost, never an invented one."""
    price = gpu_hour_usd if gpu_hour_usd is not None else (run.manifest.get("cost") or {}).get("gpu_hour_usd")
    if price is None or candidates.empty:
        return None
    inference = candidates["server_final_ts_ms"] - candidates["server_inference_start_ts_ms"]
    if inference.notna().all():
        basis, ms = "server_inference", inference
    else:
        basis, ms = "click_to_final", candidates["click_to_final_ms"]
    total_usd = float(ms.sum()) / 1000 / 3600 * float(price)
    accepted = int(candidates["accepted"].sum())
    return {
        "basis": basis,
        "gpu_hour_usd": float(price),
        "per_image_usd": total_usd / len(candidates),
        "per_usable_image_usd": total_usd / accepted if accepted else None,
    }


def summarize(run: Run, gpu_hour_usd: float | None = None) -> dict:
    candidates = judge_candidates(run)
    journeys = journey_runs(run, candidates)
    ttui = pd.Series([j["ttui_ms"] for j in journeys], dtype=float)
    steps = run.steps
    stats = action_stats(steps, judge_values(run.judgements))
    ttui_summary = distribution(ttui)
    traces = {p.stem: f"traces/{p.name}" for p in sorted((run.path / "traces").glob("*.zip"))}
    attempts = steps.groupby("prompt_id")["attempt"].max().to_dict() if len(steps) else {}
    for journey in journeys:  # the trace of the journey run's last attempt
        attempt = attempts.get(journey["prompt_id"], 1)
        journey["attempt"] = int(attempt) if not pd.isna(attempt) else 1
        key = journey["prompt_id"] if journey["attempt"] == 1 else f"{journey['prompt_id']}-a{journey['attempt']}"
        journey["trace"] = traces.get(key)
    traces = {j["prompt_id"]: j["trace"] for j in journeys if j["trace"]}
    iterations = [j["iterations_to_useful"] for j in journeys if j["iterations_to_useful"] is not None]
    quality_found = quality(run, journeys)
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
        "iterations_to_useful": {"p50": percentile(iterations, 50), "max": max(iterations) if iterations else None},
        "acceptance_rule": describe_rule(run.manifest["journey"]["acceptance"]),
        "acceptance_rate": float(candidates["accepted"].mean()) if len(candidates) else None,
        "acceptance_by_cohort": acceptance_by_cohort(run, candidates),
        "labels": {
            "labelled": int(candidates["labelled"].sum()),
            "useful": int((candidates["verdict"] == "useful (label)").sum()),
            "not_useful": int((candidates["verdict"] == "not useful (label)").sum()),
        },
        "not_judged": int(candidates["verdict"].str.startswith("not judged").sum()) if len(candidates) else 0,
        "blank": int((candidates["verdict"] == "blank").sum()) if len(candidates) else 0,
        "quality": quality_found,
        "cost": cost(run, candidates, gpu_hour_usd),
        "candidates": candidates.to_dict("records"),
        "exports": steps[(steps["action"] == "export") & (steps["status"] == "ok")].to_dict("records"),
        "failures": steps[steps["status"] != "ok"].to_dict("records"),
        "flaky": flaky_journey_runs(run.events),
        # After a stalled or failed step the runner cancelled it or reloaded the page (not timed).
        "recoveries": [
            {key: e.get(key) for key in ("prompt_id", "step_index", "how", "ms")}
            for e in run.events
            if e.get("event") == "recovered"
        ],
        "segments": segments(run, candidates) if len(candidates) else {},
        "failures_by_reason": failures_by_reason(steps[steps["status"] != "ok"].to_dict("records"), traces),
        "fallback_paints": fallback_paints(steps),
        "conditions": list(run.manifest.get("degraded", [])) + judge_conditions(quality_found),
        "started_at": started_at(run.events),
        "finished_at": finished_at(run.events),
        "load": load_summary(run.manifest, run.events, steps),
    }


def flaky_journey_runs(events: list[dict]) -> list[str]:
    """Journey runs whose last attempt passed after an earlier attempt finished with a failed
    step (as Playwright Test names a test that passes on retry). An attempt cut off by a stop
    and resumed is not a failure of the product, so not flaky."""
    finished: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        if e.get("event") == "journey_finished":
            finished.setdefault(str(e.get("prompt_id")), []).append(
                (int(e.get("attempt") or 1), int(e.get("failures") or 0))
            )
    flaky = []
    for prompt_id, attempts in finished.items():
        attempts.sort()
        if len(attempts) > 1 and attempts[-1][1] == 0 and any(failures for _, failures in attempts[:-1]):
            flaky.append(prompt_id)
    return flaky


def filmstrips(run: Run, limit: int | None = None) -> list[dict]:
    """Per image action of the counted attempts: the previews the creator saw (kept by the
    runner) with their paint times after the click, then the final — WebPageTest's filmstrip
    for one generation."""
    counted = {
        (r.prompt_id, int(r.step_index), int(r.attempt))
        for r in run.steps.itertuples()
        if r.status == "ok" and not pd.isna(r.step_index)
    }
    strips = []
    for e in run.events:
        if (
            e.get("event") != "action"
            or (str(e.get("prompt_id")), e.get("step_index"), int(e.get("attempt") or 1)) not in counted
        ):
            continue
        probe = e.get("probe") or {}
        click, final = probe.get("click"), (probe.get("final") or {}).get("t")
        if click is None or final is None:
            continue
        said: list[str] = []  # unsafe or missing paths are already reported with the step table
        frames = [
            {"image": link, "after_ms": p["t"] - click}
            for p in e.get("previews") or []
            if (link := safe_link(run.path, p.get("image"), said, "preview"))
        ]
        if limit is not None and len(strips) == limit:
            break
        strips.append(
            {
                "prompt_id": e["prompt_id"],
                "step_index": e["step_index"],
                "action": e["action"],
                "frames": frames,
                "final": {"image": safe_link(run.path, e.get("image"), said, "image"), "after_ms": final - click},
                "previews_painted": len(previews_of_this_action(probe.get("paints", []), click, probe["final"])),
                "previews_not_kept": sum(1 for p in e.get("previews") or [] if p.get("not_kept")),
            }
        )
    return strips


def iso_time(wall_time) -> str | None:
    return None if wall_time is None else datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="seconds")


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
        "conditions": summary["conditions"],
        "actions": {
            row["action"]: {name: dist(d) for name, d in row["metrics"].items()} for row in summary["action_stats"]
        },
        "ttui_ms": {
            **dist(summary["ttui"]),
            "reached": summary["ttui_reached"],
            "journey_runs": len(summary["journeys"]),
        },
        "iterations_to_useful": summary["iterations_to_useful"],
        "acceptance_rate": summary["acceptance_rate"],
        "acceptance_rule": summary["acceptance_rule"],
        "acceptance_by_cohort": summary["acceptance_by_cohort"],
        "labels": summary["labels"],
        "cost": summary["cost"],
        "quality": summary["quality"],
        "budgets": [
            {"name": b["budget"], "limit": b["limit_ms"], "value": b["value_ms"], "held": b["ok"]}
            for b in summary["budgets"]
        ],
        "failed_steps": len(summary["failures"]),
        "flaky_journey_runs": summary["flaky"],
        "recoveries": summary["recoveries"],
        "comparison": summary.get("comparison"),
        "load": summary["load"],
        "problems": summary["problems"],
    }
