"""The report is computed from a run directory alone; here one is written by hand."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from journeys.rundir import RunDirectory
from reports.audit import load_run, summarize
from reports.render import render_report

HOSTILE = '<script>alert("x")</script> portrait'


def image(path, flat: bool):
    pixels = np.full((32, 32, 3), 128, np.uint8) if flat else np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    Image.fromarray(pixels).save(path)
    return path.name


@pytest.fixture
def run_dir(tmp_path):
    manifest = {
        "journey": {"name": "portrait", "prompts": [{"id": "a"}, {"id": "b"}], "steps": ["prompt", "generate", {"edit": {}}],
                    "acceptance": {"rule": "not_blank", "min_pixel_std": 8.0}, "think_time_ms": 0,
                    "settings": {"steps": 4, "size": 128}},
        "config_hash": "0123456789", "target": {"name": "reference", "url": "http://127.0.0.1:1/"},
        "ui_profile": {"name": "reference"}, "model": {"model": "tiny", "random_weights": True, "device": "cpu"},
        "browser": {"name": "chromium", "version": "156", "source": "system", "viewport": {"width": 1, "height": 1}},
        "hardware": {"cpu": "test cpu", "cpu_count": 2}, "versions": {"python": "3.11"}, "git_commit": None,
        "degraded": ["the reference app ran on the CPU, not a GPU"],
    }
    run = RunDirectory.create(tmp_path, manifest)
    base = {"journey": "portrait", "status": "ok", "paint_method": "element-timing"}
    # Journey a: the generate final is flat (rejected), the reroll is accepted.
    run.add_step({**base, "prompt_id": "a", "prompt": HOSTILE, "seed": 1, "step_index": 1, "action": "generate",
                  "click_ts_ms": 1000.0, "final_paint_ts_ms": 1400.0, "click_to_preview_ms": 100.0,
                  "click_to_final_ms": 400.0, "previews_painted": 3, "image": "images/" + image(run.images / "a1.png", True)})
    run.add_step({**base, "prompt_id": "a", "prompt": HOSTILE, "seed": 2, "step_index": 2, "action": "reroll",
                  "click_ts_ms": 1600.0, "final_paint_ts_ms": 1900.0, "click_to_preview_ms": 80.0,
                  "click_to_final_ms": 300.0, "previews_painted": 3, "image": "images/" + image(run.images / "a2.png", False)})
    run.add_step({**base, "prompt_id": "a", "prompt": HOSTILE, "seed": 2, "step_index": 3, "action": "export",
                  "click_ts_ms": 2000.0, "click_to_export_ms": 25.0, "paint_method": "download-saved", "image": "images/a3.png"})
    # Journey b: generate accepted at once (no preview painted); its edit failed.
    run.add_step({**base, "prompt_id": "b", "prompt": "b prompt", "seed": 3, "step_index": 1, "action": "generate",
                  "paint_method": "screencast", "click_ts_ms": 500.0, "final_paint_ts_ms": 700.0, "click_to_final_ms": 200.0, "previews_painted": 0,
                  "image": "images/" + image(run.images / "b1.png", False)})
    run.add_step({**base, "prompt_id": "b", "prompt": "b prompt", "step_index": 2, "action": "edit", "status": "failed",
                  "error": "the UI reported an error: <b>boom</b>", "paint_method": None})
    return run.path


def test_metrics_from_the_run_directory(run_dir):
    summary = summarize(load_run(run_dir))
    by_action = {row["action"]: row["metrics"] for row in summary["action_stats"]}
    assert by_action["generate"]["click_to_final_ms"]["n"] == 2
    assert by_action["generate"]["click_to_final_ms"]["p50"] == 300.0
    assert by_action["generate"]["click_to_preview_ms"]["n"] == 1  # null preview is not a sample
    assert by_action["generate"]["click_to_final_ms"]["few"] is True
    assert by_action["export"]["click_to_export_ms"]["p50"] == 25.0
    journeys = {j["prompt_id"]: j for j in summary["journeys"]}
    assert journeys["a"]["ttui_ms"] == 900.0  # generate click 1000 → accepted reroll painted 1900
    assert journeys["a"]["iterations_to_useful"] == 2
    assert journeys["b"]["ttui_ms"] == 200.0 and journeys["b"]["failed_steps"] == 1
    assert summary["acceptance_rate"] == pytest.approx(2 / 3)
    assert len(summary["failures"]) == 1


def test_missing_server_times_are_shown_when_the_profile_promises_them(run_dir):
    run = load_run(run_dir)
    assert summarize(run)["server_times_missing"] == 0  # the profile names no server_timings
    run.manifest["ui_profile"]["server_timings"] = {"url": "/jobs/{job}"}
    assert summarize(run)["server_times_missing"] == 3  # three successful image actions, none with times


def test_ttui_not_reached_is_counted_not_dropped(run_dir):
    run = load_run(run_dir)
    run.manifest["journey"]["acceptance"]["min_pixel_std"] = 10_000  # nothing can pass
    summary = summarize(run)
    assert [j["ttui_ms"] for j in summary["journeys"]] == [None, None]
    assert summary["ttui_reached"] == 0 and summary["ttui"]["n"] == 0


def test_report_is_escaped_offline_and_shows_figures(run_dir):
    html = render_report(run_dir)[0].read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "<b>boom</b>" not in html
    assert "http://" not in html.replace("http://127.0.0.1:1/", "") and "https://" not in html
    assert "900 ms" in html and "not_blank" in html and "fewer than 20" in html
    assert 'src="images/a2.png"' in html
    assert "the reference app ran on the CPU" in html
    assert "1 action(s) were timed by a fallback method" in html and "b step 1 (generate): <code>screencast</code>" in html


def test_cli_renders_and_rejects_a_non_run_directory(run_dir, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "imagejourney.cli", "report", str(run_dir)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip().endswith("report.html")
    bad = subprocess.run([sys.executable, "-m", "imagejourney.cli", "report", str(tmp_path / "nope")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "is not a run directory" in bad.stderr


def test_a_run_with_no_step_recorded_still_gets_a_report(tmp_path):
    run = RunDirectory.create(tmp_path, {"journey": {"name": "p", "acceptance": {"rule": "not_blank", "min_pixel_std": 1},
                                                     "prompts": [], "steps": []}, "config_hash": "x",
                                         "target": {"name": "t", "url": "u"}, "ui_profile": {"name": "p"},
                                         "browser": {"name": "chromium", "version": "1", "source": "system",
                                                     "viewport": {"width": 1, "height": 1}},
                                         "hardware": {"cpu": "c", "cpu_count": 1}, "versions": {}, "degraded": []})
    html = render_report(run.path)[0].read_text()
    assert "No step failed" in html and "0 / 0" in html
