"""AUDIT failures: failed steps grouped by reason, flaky journey runs (passed on a later
attempt), the recoveries the runner made, and the trace kept for each journey run."""

from __future__ import annotations

import pandas as pd

from ..run import Run
from ..steps import failure_reason


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


def journey_traces(run: Run, journeys: list[dict]) -> dict[str, str]:
    """Each journey run's kept trace (of its last attempt), also set on its row in `journeys`."""
    traces = {p.stem: f"traces/{p.name}" for p in sorted((run.path / "traces").glob("*.zip"))}
    steps = run.steps
    attempts = steps.groupby("prompt_id")["attempt"].max().to_dict() if len(steps) else {}
    for journey in journeys:
        attempt = attempts.get(journey["prompt_id"], 1)
        journey["attempt"] = int(attempt) if not pd.isna(attempt) else 1
        key = journey["prompt_id"] if journey["attempt"] == 1 else f"{journey['prompt_id']}-a{journey['attempt']}"
        journey["trace"] = traces.get(key)
    return {j["prompt_id"]: j["trace"] for j in journeys if j["trace"]}


def audit(run: Run, journeys: list[dict]) -> dict:
    steps = run.steps
    failures = steps[steps["status"] != "ok"].to_dict("records")
    traces = journey_traces(run, journeys)
    return {
        "traces": traces,
        "failures": failures,
        "failures_by_reason": failures_by_reason(failures, traces),
        "flaky": flaky_journey_runs(run.events),
        # After a stalled or failed step the runner cancelled it or reloaded the page (not timed).
        "recoveries": [
            {key: e.get(key) for key in ("prompt_id", "step_index", "how", "ms")}
            for e in run.events
            if e.get("event") == "recovered"
        ],
    }
