"""AUDIT server: where the time of each action went, by the product's own times (request
received, inference start, final produced), and the actions done without them."""

from __future__ import annotations

import pandas as pd

from ..run import CANDIDATE_ACTIONS, Run
from ..stats import distribution


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


def audit(run: Run) -> dict:
    return {"server_breakdown": server_breakdown(run.steps), "server_times_missing": server_times_missing(run)}
