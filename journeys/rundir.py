"""The run directory: the single source of truth for a run, written append-only as it goes.

    journey-results/<run_id>/
        manifest.json     frozen conditions of the run (written once, at the start)
        events.jsonl      the raw record: one JSON object per line, flushed as each thing happens
                          (the probe's click and paint records, server times, saved images)
        images/           finals and exports (and failure screenshots)
        traces/           Playwright traces
        steps.csv, summary.json, report.html
                          written by the audit (reports/) from the files above, never by the run

The gather phase records observations only; every metric is computed by the audit, so a
corrected rule applies to old runs when they are re-rendered.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

RECORD_FORMAT = 2  # 1: metrics frozen into steps.csv by the runner; 2: raw records in events.jsonl only


class UnsafePath(Exception):
    """A file the run would write lands outside its run directory."""


def new_run_id(journey: str, config_hash: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{journey}-{config_hash}"


class RunDirectory:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.writing = threading.Lock()  # creators (--creators) record from their own threads
        self.images = self.path / "images"
        self.traces = self.path / "traces"

    @classmethod
    def create(cls, results_root: Path, manifest: dict) -> RunDirectory:
        run_id = new_run_id(manifest["journey"]["name"], manifest["config_hash"])
        path = Path(results_root) / run_id
        suffix = 1
        while path.exists():  # two runs in the same second keep their own directories
            suffix += 1
            path = Path(results_root) / f"{run_id}-{suffix}"
        run = cls(path)
        run.inside(run.images).mkdir(parents=True)
        run.traces.mkdir()
        manifest = {**manifest, "run_id": path.name, "record_format": RECORD_FORMAT}
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        run.event("run_started", run_id=path.name)
        return run

    def inside(self, path: Path) -> Path:
        """`path`, after checking that it resolves inside the run directory (a prompt id such
        as `../../x` must not make the run write elsewhere)."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.path.resolve()):
            raise UnsafePath(f"refusing to write {path}: it would land outside the run directory {self.path}")
        return resolved

    def image_path(self, name: str) -> Path:
        return self.inside(self.images / name)

    def event(self, kind: str, **data) -> None:
        """Append one event and flush it to disk, so a crash loses nothing already recorded."""
        record = {"event": kind, "wall_time": time.time(), **data}
        with self.writing, open(self.path / "events.jsonl", "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.path.resolve()).as_posix()
