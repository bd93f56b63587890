"""A run directory as the audit reads it: the raw record and the step table computed from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .records import read_judgements, read_labels, read_records
from .steps import step_table

# The actions whose final is a candidate for "useful": judged, counted in acceptance and TTUI.

CANDIDATE_ACTIONS = ("generate", "reroll", "edit")


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
