"""The run directory: the single source of truth for a run, written append-only as it goes.

    journey-results/<run_id>/
        manifest.json     frozen conditions of the run (written once, at the start)
        events.jsonl      one JSON object per line, flushed as each thing happens
        steps.csv         one row per action, appended as each action ends
        images/           finals and exports (and failure screenshots)
        traces/           Playwright traces
        report.html       rendered from the files above (reports/)
"""

from __future__ import annotations

import csv
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

STEP_COLUMNS = [
    "journey",
    "prompt_id",
    "prompt",
    "seed",
    "step_index",
    "action",
    "mask",
    "click_ts_ms",
    "first_preview_paint_ts_ms",
    "final_paint_ts_ms",
    "click_to_preview_ms",
    "click_to_final_ms",
    "click_to_export_ms",
    "previews_painted",
    "paint_method",
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


def new_run_id(journey: str, config_hash: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{journey}-{config_hash}"


class RunDirectory:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.images = self.path / "images"
        self.traces = self.path / "traces"

    @classmethod
    def create(cls, results_root: Path, manifest: dict) -> "RunDirectory":
        run_id = new_run_id(manifest["journey"]["name"], manifest["config_hash"])
        path = Path(results_root) / run_id
        suffix = 1
        while path.exists():  # two runs in the same second keep their own directories
            suffix += 1
            path = Path(results_root) / f"{run_id}-{suffix}"
        run = cls(path)
        run.images.mkdir(parents=True)
        run.traces.mkdir()
        manifest = {**manifest, "run_id": path.name}
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        run.event("run_started", run_id=path.name)
        return run

    def event(self, kind: str, **data) -> None:
        """Append one event and flush it to disk, so a crash loses nothing already recorded."""
        record = {"event": kind, "wall_time": time.time(), **data}
        with open(self.path / "events.jsonl", "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add_step(self, row: dict) -> None:
        unknown = set(row) - set(STEP_COLUMNS)
        if unknown:
            raise ValueError(f"unknown steps.csv columns: {sorted(unknown)}")
        steps = self.path / "steps.csv"
        new = not steps.exists()
        with open(steps, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=STEP_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())

    def relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.path))
