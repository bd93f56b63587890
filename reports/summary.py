"""The audit of a run directory: each audit (reports/audits/, one concern per module) is run
once, in order, and their results make the summary the report renders; `summary.json` is its
machine-readable part.

Words and definitions are those of the metrics: click_to_preview_ms, click_to_final_ms,
click_to_export_ms, time to useful image (TTUI), iterations-to-useful.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .audits import acceptance, cost, failures, load, quality, server, timing
from .records import judge_values
from .run import Run
from .stats import rounded

SUMMARY_SCHEMA = "imagejourney.summary/1"


def summarize(run: Run, gpu_hour_usd: float | None = None) -> dict:
    judged = judge_values(run.judgements)
    found_timing = timing.audit(run, judged)
    found_acceptance = acceptance.audit(run)
    candidates = found_acceptance.pop("candidates_table")
    journeys = found_acceptance["journeys"]
    found_failures = failures.audit(run, journeys)  # sets each journey run's trace
    found_quality = quality.audit(run, journeys)  # sets each journey run's judge values
    steps = run.steps
    return {
        "manifest": run.manifest,
        "complete": run.complete,
        "problems": run.problems,
        **found_timing,
        **server.audit(run),
        **found_acceptance,
        **found_failures,
        **cost.audit(run, candidates, found_timing["action_stats"], found_acceptance["ttui"], gpu_hour_usd),
        "quality": found_quality["quality"],
        "exports": steps[(steps["action"] == "export") & (steps["status"] == "ok")].to_dict("records"),
        "conditions": list(run.manifest.get("degraded", [])) + found_quality["judge_conditions"],
        "started_at": started_at(run.events),
        "finished_at": finished_at(run.events),
        "load": load.audit(run),
    }


def iso_time(wall_time) -> str | None:
    return None if wall_time is None else datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="seconds")


def started_at(events: list[dict]) -> str | None:
    return iso_time(events[0].get("wall_time")) if events else None


def finished_at(events: list[dict]) -> str | None:
    """When run_finished was recorded; None for a run that never finished."""
    return next((iso_time(e.get("wall_time")) for e in events if e.get("event") == "run_finished"), None)


# summary.json is read by people as well as by programs: times to 0.1 ms (the p50 and p95 of
# every distribution, TTUI, budgets), rates and judge values to 4 decimals, prices to 4
# significant digits. The audit itself keeps full precision.
FRACTION_DIGITS = 4
USD_SIGNIFICANT = 4


def rounded_floats(found, digits: int = 1, significant: int | None = None):
    """`found` (dicts, lists, numbers) with every float rounded."""
    if isinstance(found, dict):
        return {key: rounded_floats(value, digits, significant) for key, value in found.items()}
    if isinstance(found, list):
        return [rounded_floats(value, digits, significant) for value in found]
    if isinstance(found, float) and found == found:
        return float(f"{found:.{significant}g}") if significant else round(found, digits)
    return found


def summary_json(summary: dict) -> dict:
    """The audit's machine-readable result (`summary.json`, schema imagejourney.summary/1 in
    DESIGN.md): what CI, `compare` and the history store read instead of the HTML."""
    m = summary["manifest"]

    def dist(d: dict) -> dict:
        return {"n": d["n"], "p50": rounded(d["p50"]), "p95": rounded(d["p95"])}

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
        "iterations_to_useful": {
            **summary["iterations_to_useful"],
            "p50": rounded(summary["iterations_to_useful"]["p50"]),
        },
        "acceptance_rate": rounded(summary["acceptance_rate"], FRACTION_DIGITS),
        "acceptance_rule": summary["acceptance_rule"],
        "acceptance_by_cohort": rounded_floats(summary["acceptance_by_cohort"], FRACTION_DIGITS),
        "labels": summary["labels"],
        "cost": rounded_floats(summary["cost"], significant=USD_SIGNIFICANT),
        "quality": rounded_floats(summary["quality"], FRACTION_DIGITS),
        "budgets": [
            {"name": b["budget"], "limit": b["limit_ms"], "value": rounded(b["value_ms"]), "held": b["ok"]}
            for b in summary["budgets"]
        ],
        "failed_steps": len(summary["failures"]),
        "flaky_journey_runs": summary["flaky"],
        "recoveries": summary["recoveries"],
        "comparison": summary.get("comparison"),
        "load": summary["load"],
        "problems": summary["problems"],
    }
