import json

import pytest
from imagejourney.journeys.rundir import RunDirectory, UnsafePath


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


def test_events_are_on_disk_as_soon_as_written_and_the_run_writes_no_metrics(tmp_path):
    run = RunDirectory.create(tmp_path, manifest())
    run.event("action", step_index=1, probe={"click": 1.0})
    assert json.loads((run.path / "events.jsonl").read_text().splitlines()[-1])["step_index"] == 1
    assert not (run.path / "steps.csv").exists()  # the audit writes it, from events.jsonl
    assert json.loads((run.path / "manifest.json").read_text())["record_format"] == 2


@pytest.mark.parametrize("name", ["../../escape-attempt.png", "/tmp/abs.png", "a/../../../b.png"])
def test_nothing_is_written_outside_the_run_directory(tmp_path, name):
    run = RunDirectory.create(tmp_path / "results", manifest())
    with pytest.raises(UnsafePath, match="outside the run directory"):
        run.image_path(name)
    assert run.image_path("fisherman-01-generate.png").parent == run.images.resolve()
