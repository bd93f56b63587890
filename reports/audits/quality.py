"""AUDIT quality: what the judges found (judgements.csv) per journey run and over the run, and
the ways the judges fall short of a real measurement (uncalibrated LPIPS, CLIP not judged)."""

from __future__ import annotations

import re

import pandas as pd

from ..run import Run
from ..stats import percentile

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
            for judge in (*LPIPS_JUDGES, "clip_score", "prompt_match", "edit_outside_mask_max")
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
        "prompt_match": prompt_match(j),
        "attributes": attributes_seen(j),
    }


def prompt_match(j: pd.DataFrame) -> dict | None:
    """prompt_match over the run: p50 with N, the judge, whether it is calibrated for the target
    (a prompt outside the portrait world is not judged, and counted so)."""
    rows = j[j["judge"] == "prompt_match"]
    if rows.empty:
        return None
    judged = rows[rows["value"].notna()]
    return {
        "p50": percentile(judged["value"], 50),
        "n": len(judged),
        "not_judged": len(rows) - len(judged),
        "model": str(judged["model"].iloc[0]).split(": ", 1)[0] if len(judged) else None,
        "calibrated": bool(len(judged)) and bool((judged["calibrated"] == "yes").all()),
    }


SEEN = re.compile(r"asked (?P<asked>.+) · saw (?P<seen>.+)$")


def attributes_seen(j: pd.DataFrame) -> list[dict]:
    """Per attribute the prompts named, how often the judge saw it as asked, and what it saw most
    instead: which attributes the model gets wrong most, worst first."""
    found: dict[str, dict] = {}
    for row in j[j["judge"].str.startswith("prompt_match:") & j["value"].notna()].itertuples():
        said = SEEN.search(str(row.model))
        if not said:
            continue
        mine = found.setdefault(row.judge.removeprefix("prompt_match:"), {"n": 0, "as_asked": 0, "instead": {}})
        mine["n"] += 1
        if said["asked"] == said["seen"]:
            mine["as_asked"] += 1
        else:
            mine["instead"][said["seen"]] = mine["instead"].get(said["seen"], 0) + 1
    rows = [
        {
            "attribute": name,
            "n": f["n"],
            "seen_as_asked_rate": f["as_asked"] / f["n"],
            "seen_instead": max(f["instead"], key=f["instead"].get) if f["instead"] else None,
        }
        for name, f in found.items()
    ]
    return sorted(rows, key=lambda r: (r["seen_as_asked_rate"], r["attribute"]))


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


def audit(run: Run, journeys: list[dict]) -> dict:
    """Adds each journey run's judge values to its row in `journeys`."""
    found = quality(run, journeys)
    return {"quality": found, "judge_conditions": judge_conditions(found)}
