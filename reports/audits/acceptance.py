"""AUDIT acceptance and TTUI: each candidate final's verdict (label, blank, the pack's rule over
the judges' values), time to useful image and iterations-to-useful per journey run, and
acceptance by cohort, prompt and aspect."""

from __future__ import annotations

import json

import pandas as pd

from ..images import BLANK_PIXEL_STD, image_facts
from ..records import RunDirError, judge_values
from ..run import CANDIDATE_ACTIONS, Run, planned_journey_runs
from ..stats import distribution, percentile

RULE_JUDGES = {
    "not_blank": ("pixel_std", "min_pixel_std"),
    "clip_score": ("clip_score", "min"),
    "prompt_match": ("prompt_match", "min"),
}


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


def audit(run: Run) -> dict:
    """The candidates (a table, for the audits after this one) and what the summary shows of them."""
    candidates = judge_candidates(run)
    journeys = journey_runs(run, candidates)
    ttui = pd.Series([j["ttui_ms"] for j in journeys], dtype=float)
    iterations = [j["iterations_to_useful"] for j in journeys if j["iterations_to_useful"] is not None]
    return {
        "candidates_table": candidates,
        "journeys": journeys,
        "ttui": distribution(ttui),
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
        "candidates": candidates.to_dict("records"),
        "segments": segments(run, candidates) if len(candidates) else {},
    }
