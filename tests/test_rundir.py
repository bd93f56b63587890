import csv
import json

import pytest

from journeys.rundir import RunDirectory


def manifest():
    return {"journey": {"name": "portrait"}, "config_hash": "abc1234567"}


def test_create_writes_manifest_and_first_event(tmp_path):
    run = RunDirectory.create(tmp_path, manifest())
    saved = json.loads((run.path / "manifest.json").read_text())
    assert saved["run_id"] == run.path.name
    assert run.path.name.endswith("-portrait-abc1234567")
    assert (run.images).is_dir()
    first = json.loads((run.path / "events.jsonl").read_text().splitlines()[0])
    assert first["event"] == "run_started"


def test_two_runs_in_the_same_second_get_their_own_directories(tmp_path):
    a = RunDirectory.create(tmp_path, manifest())
    b = RunDirectory.create(tmp_path, manifest())
    assert a.path != b.path


def test_events_and_steps_are_on_disk_as_soon_as_written(tmp_path):
    run = RunDirectory.create(tmp_path, manifest())
    run.event("action", step_index=1)
    assert json.loads((run.path / "events.jsonl").read_text().splitlines()[-1])["step_index"] == 1
    run.add_step({"journey": "portrait", "action": "generate", "click_to_final_ms": 12.5, "status": "ok"})
    run.add_step({"journey": "portrait", "action": "reroll", "status": "failed", "error": "boom"})
    rows = list(csv.DictReader(open(run.path / "steps.csv")))
    assert [r["action"] for r in rows] == ["generate", "reroll"]
    assert rows[0]["click_to_final_ms"] == "12.5" and rows[1]["error"] == "boom"


def test_unknown_step_column_is_refused(tmp_path):
    run = RunDirectory.create(tmp_path, manifest())
    with pytest.raises(ValueError, match="unknown steps.csv columns"):
        run.add_step({"nonsense": 1})
