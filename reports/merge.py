"""Merge the run directories of shards (`pytest e2e/ --shard I/N`) into one run directory with
one report, as Playwright's merge-reports does: the same configuration, disjoint journey runs,
every shard finished. The merged record is the shards' records one after another; nothing is
recomputed by hand — the audit reads it like any run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
from imagejourney.journeys.rundir import RECORD_FORMAT, RunDirectory

from .records import RunDirError, read_records
from .run import planned_journey_runs

LIFECYCLE = ("run_started", "run_resumed", "run_finished")


def merge_runs(shards: list[Path], out: Path) -> Path:
    """Write the merged run directory `out` and return it."""
    if len(shards) < 2:
        raise RunDirError("merge needs the run directories of at least two shards")
    records = [read_records(Path(shard)) for shard in shards]
    first = records[0].manifest
    for shard in records[1:]:
        if shard.manifest.get("config_hash") != first.get("config_hash"):
            raise RunDirError(
                f"{shard.path} was run with config hash {shard.manifest.get('config_hash')}, "
                f"{records[0].path} with {first.get('config_hash')}: only shards of one configuration merge"
            )
    seen: dict[str, Path] = {}
    for shard in records:
        if not shard.complete:
            raise RunDirError(f"{shard.path} never finished; finish it with `pytest e2e/ --resume {shard.path}` first")
        for journey_run in shard.manifest.get("journey_runs", []):
            if journey_run in seen:
                raise RunDirError(
                    f"{shard.path} and {seen[journey_run]} both hold the journey run '{journey_run}': "
                    "the shards overlap"
                )
            seen[journey_run] = shard.path
    if out.exists() and any(out.iterdir()):
        raise RunDirError(f"{out} already exists and is not empty; choose a new --out directory")

    held = set(seen)
    order = [j for j in planned_journey_runs({"journey": first["journey"]}) if j in held] or sorted(held)
    manifest = {
        **{k: v for k, v in first.items() if k not in ("run_id", "shard", "record_format")},
        "journey_runs": order + sorted(held - set(order)),
        "shards": [{"run_id": s.manifest.get("run_id"), "shard": s.manifest.get("shard")} for s in records],
    }
    run = RunDirectory(out)
    run.images.mkdir(parents=True)
    run.traces.mkdir()
    (out / "manifest.json").write_text(
        json.dumps({**manifest, "run_id": out.name, "record_format": RECORD_FORMAT}, indent=2, sort_keys=True)
    )
    started = min(e["wall_time"] for s in records for e in s.events if e.get("event") == "run_started")
    run.event("run_started", run_id=out.name, wall_time=started)
    for shard in records:
        for event in shard.events:
            if event.get("event") not in LIFECYCLE:
                kind = event["event"]
                run.event(
                    kind, **{k: v for k, v in event.items() if k != "event"}, shard_run=shard.manifest.get("run_id")
                )
        for folder in ("images", "traces", "playwright"):
            if (shard.path / folder).is_dir():
                shutil.copytree(shard.path / folder, out / folder, dirs_exist_ok=True)
    judged = [
        pd.read_csv(s.path / "judgements.csv", dtype=str, keep_default_na=False)
        for s in records
        if (s.path / "judgements.csv").is_file()
    ]
    if judged:
        pd.concat(judged).to_csv(out / "judgements.csv", index=False)
    run.event("run_finished", shards=len(records))
    return out
