"""AUDIT cost and budgets: cost per image and per usable image from GPU-seconds and a price, and
each budget of the pack against the measured percentile."""

from __future__ import annotations

import pandas as pd

from ..run import Run


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


def audit(run: Run, candidates: pd.DataFrame, stats: list[dict], ttui: dict, gpu_hour_usd: float | None) -> dict:
    return {
        "cost": cost(run, candidates, gpu_hour_usd),
        "budgets": check_budgets(run.manifest["journey"].get("budgets", {}), stats, ttui),
    }
