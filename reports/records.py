"""Read the raw record of a run directory (manifest.json, events.jsonl), tolerating what real
run directories hold: a last line cut off by `kill -9`, missing images, paths that try to
leave the directory. Each thing skipped becomes one sentence in `problems`, shown in the
report; nothing here computes a metric.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class RunDirError(Exception):
    """One sentence: what is wrong with the run directory."""


@dataclass
class Records:
    path: Path
    manifest: dict
    events: list[dict]
    recorded_steps: list[dict] | None  # format 1 only: the rows the old runner froze into steps.csv
    problems: list[str] = field(default_factory=list)

    @property
    def record_format(self) -> int:
        return int(self.manifest.get("record_format", 1))

    @property
    def complete(self) -> bool:
        """False when the run never finished (killed, crashed): no run_finished was recorded
        after it started or was last resumed."""
        lifecycle = [
            e["event"] for e in self.events if e.get("event") in ("run_started", "run_resumed", "run_finished")
        ]
        return bool(lifecycle) and lifecycle[-1] == "run_finished"


def read_records(path: Path) -> Records:
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise RunDirError(f"{path} is not a run directory (no manifest.json); pass a directory under journey-results/")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:
        raise RunDirError(
            f"{manifest_path} is not valid JSON; the run directory is damaged and cannot be audited"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("journey"), dict):
        raise RunDirError(f"{manifest_path} names no journey; it is not an imagejourney manifest")
    events_path = path / "events.jsonl"
    if not events_path.is_file():
        raise RunDirError(f"{path} has no events.jsonl: nothing of this run was recorded, so there is nothing to audit")
    problems: list[str] = []
    events = read_jsonl(events_path, problems)
    records = Records(path, manifest, events, None, problems)
    if records.record_format == 1:
        records.recorded_steps = read_recorded_steps(path, problems)
    return records


def read_jsonl(path: Path, problems: list[str]) -> list[dict]:
    """One JSON object per line; a line that does not parse (the last one, cut off by a kill)
    is skipped and named."""
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict) or "event" not in event:
                problems.append(
                    f"{path.name} line {number} is not a complete record (cut off when the run stopped?); skipped"
                )
                continue
            events.append(event)
    return events


def recorded_steps_path(path: Path) -> Path:
    """Where a format-1 run's own steps.csv is kept once the audit writes its export over it."""
    return path / "steps.recorded.csv"


def read_recorded_steps(path: Path, problems: list[str]) -> list[dict]:
    """Format 1 (before the audit computed everything from events.jsonl): the runner's own
    steps.csv, every cell read as text (prompt ids such as `NA` or `1` stay what they are).
    A row with the wrong number of cells, or a last line without its newline, is skipped."""
    source = recorded_steps_path(path)
    if not source.is_file():
        source = path / "steps.csv"
    if not source.is_file() or not source.stat().st_size:
        return []
    text = source.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        problems.append(f"{source.name}: the last line has no end (cut off when the run stopped?); skipped")
        lines = lines[:-1]
    reader = csv.reader(lines)
    header = next(reader, None) or []
    rows = []
    for row in reader:
        if len(row) != len(header):
            problems.append(
                f"{source.name} line {reader.line_num}: {len(row)} cells where the header has {len(header)}; skipped"
            )
            continue
        rows.append({name: (cell if cell != "" else None) for name, cell in zip(header, row)})
    return rows


def safe_link(run_path: Path, link, problems: list[str], what: str) -> str | None:
    """`link` when it is a relative path that stays inside the run directory and names a file
    there; otherwise None, with one sentence why (a crafted `javascript:` or `../` path never
    becomes a link in the report)."""
    if not isinstance(link, str) or not link:
        return None
    posix = PurePosixPath(link)
    if posix.is_absolute() or ":" in link or "\\" in link or ".." in posix.parts:
        problems.append(f"the {what} path {link!r} is absolute or leaves the run directory; not linked")
        return None
    target = os.path.join(run_path, link)
    if os.path.islink(target) and not Path(target).resolve().is_relative_to(run_path.resolve()):
        problems.append(f"the {what} path {link!r} is a link that leaves the run directory; not linked")
        return None
    if not os.path.isfile(target):
        problems.append(f"the {what} {link} is missing from the run directory")
        return None
    return posix.as_posix()


LABEL_COLUMNS = ["image", "useful", "reviewer", "labelled_at", "note"]


def read_labels(path: Path) -> dict[str, str]:
    """labels.csv (human review, appended by `imagejourney review` or edited by hand):
    {image: "yes" | "no"}, the last label of an image winning. A malformed file is refused with
    one sentence: labels are the final word on usefulness, so a misread one must not count."""
    source = path / "labels.csv"
    if not source.is_file():
        return {}
    with open(source, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return {}
        if [h.strip() for h in header] != LABEL_COLUMNS:
            raise RunDirError(f"{source}: the header must be {','.join(LABEL_COLUMNS)}, not {','.join(header)}")
        labels = {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(LABEL_COLUMNS):
                raise RunDirError(
                    f"{source} line {reader.line_num}: {len(row)} cells where the header has "
                    f"{len(LABEL_COLUMNS)} (quote a note that holds a comma)"
                )
            image, useful = row[0].strip(), row[1].strip().lower()
            if useful not in ("yes", "no"):
                raise RunDirError(f"{source} line {reader.line_num}: useful must be yes or no, not {row[1]!r}")
            labels[image] = useful
    return labels


def read_judgements(path: Path, problems: list[str]):
    """judgements.csv as written by `imagejourney judge`; empty when the run was not judged."""
    import pandas as pd

    source = path / "judgements.csv"
    columns = ["image", "judge", "value", "model", "calibrated"]
    if not source.is_file():
        return pd.DataFrame(columns=columns)
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False, on_bad_lines="skip")
    except (ValueError, pd.errors.ParserError):
        problems.append(
            f"{source.name} could not be read; the judges' values are left out (run `imagejourney judge` again)"
        )
        return pd.DataFrame(columns=columns)
    if list(table.columns) != columns:
        problems.append(f"{source.name} does not have the columns {','.join(columns)}; left out")
        return pd.DataFrame(columns=columns)
    table["value"] = pd.to_numeric(table["value"].replace("", None), errors="coerce")
    return table


def judge_values(judgements: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{image: {judge: value}} from judgements.csv rows that have a value."""
    values: dict[str, dict[str, float]] = {}
    for row in judgements.dropna(subset=["value"]).itertuples():
        values.setdefault(row.image, {})[row.judge] = float(row.value)
    return values
