"""`imagejourney compare` on run directories whose answers are known."""

import json
import subprocess
import sys

import numpy as np
import pytest
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.reports.compare import CompareError, compare, format_comparison, side_from_path
from PIL import Image


def write_run(root, finals_ms, model="tiny", journey="portrait"):
    """One journey run: a generate and one reroll per value of `finals_ms` (click → final)."""
    manifest = {
        "journey": {
            "name": journey,
            "prompts": [{"id": "a"}],
            "steps": [],
            "acceptance": {"rule": "not_blank", "min_pixel_std": 1},
        },
        "config_hash": "cmp0000000",
        "target": {"name": "t", "url": "u"},
        "ui_profile": {"name": "p"},
        "model": {"model": model},
        "browser": {"version": "156"},
        "hardware": {"cpu": "c"},
    }
    run = RunDirectory.create(root, manifest)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), np.uint8)).save(run.images / "x.png")
    for index, final in enumerate([finals_ms[0], *finals_ms], start=1):
        click = 1000.0 * index
        paint = {"t": click + final, "method": "element-timing", "url": ""}
        run.event(
            "action",
            journey=journey,
            prompt_id="a",
            prompt="p",
            seed=index,
            step_index=index,
            action="generate" if index == 1 else "reroll",
            image="images/x.png",
            probe={"click": click, "final": paint, "paints": [paint]},
        )
    run.event("run_finished")
    return run.path


def noisy(median, n, seed):
    return list(median * (1 + np.random.default_rng(seed).normal(0, 0.03, n)))


def verdicts(result):
    return {m["metric"]: m["verdict"] for m in result["metrics"]}


def test_same_build_is_no_change_and_a_slowdown_is_slower(tmp_path):
    base = side_from_path(write_run(tmp_path / "a", noisy(300, 20, 1)))
    same = compare(base, side_from_path(write_run(tmp_path / "b", noisy(300, 20, 2))))
    assert verdicts(same)["reroll.click_to_final_ms"] == "no change" and same["regressions"] == []
    slow = compare(base, side_from_path(write_run(tmp_path / "c", noisy(360, 20, 3))))
    row = next(m for m in slow["metrics"] if m["metric"] == "reroll.click_to_final_ms")
    assert row["verdict"] == "slower" and 1 < row["ci_low"] < row["ratio"] < row["ci_high"] and row["p_value"] < 0.001
    assert row["ratio"] == pytest.approx(1.2, abs=0.03)
    assert "reroll.click_to_final_ms" in slow["regressions"]
    fast = compare(base, side_from_path(write_run(tmp_path / "d", noisy(240, 20, 4))))
    assert verdicts(fast)["reroll.click_to_final_ms"] == "faster"


def test_a_significant_change_below_the_minimum_effect_is_no_change(tmp_path):
    base = side_from_path(write_run(tmp_path / "a", noisy(300, 40, 1)))
    shifted = side_from_path(write_run(tmp_path / "b", noisy(309, 40, 2)))  # +3 %
    assert verdicts(compare(base, shifted, min_effect=5))["reroll.click_to_final_ms"] == "no change"
    assert verdicts(compare(base, shifted, min_effect=1))["reroll.click_to_final_ms"] == "slower"


def test_too_few_samples_and_what_differs_are_said(tmp_path):
    base = side_from_path(write_run(tmp_path / "a", noisy(300, 20, 1)))
    other = side_from_path(write_run(tmp_path / "b", noisy(300, 20, 2), model="sd-turbo"))
    result = compare(base, other)
    assert verdicts(result)["generate.click_to_final_ms"] == "too few samples"  # one generate per side
    assert "model differs: baseline tiny, new sd-turbo" in result["warnings"]
    table = format_comparison(result)
    assert "± ∞ ¹" in table and "need >= 6 samples per side" in table and "warning: model differs" in table
    assert "~ (p=" in table


def test_runs_with_nothing_in_common_are_one_sentence(tmp_path):
    base = side_from_path(write_run(tmp_path / "a", noisy(300, 10, 1)))
    empty = RunDirectory.create(
        tmp_path / "b",
        {"journey": {"name": "x", "acceptance": {"rule": "not_blank", "min_pixel_std": 1}}, "config_hash": "e"},
    )
    with pytest.raises(CompareError, match="share no measured metric"):
        compare(base, side_from_path(empty.path))


def test_cli_prints_the_table_writes_json_and_exits_1_on_regression(tmp_path):
    a = write_run(tmp_path / "a", noisy(300, 20, 1))
    b = write_run(tmp_path / "b", noisy(400, 20, 2))
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "compare", str(a), str(b), "--json", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "reroll.click_to_final_ms" in proc.stdout and "slower" in proc.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert {"baseline", "new", "regressions", "metrics", "warnings"} <= set(data)
    assert set(data["metrics"][0]) >= {"metric", "ratio", "ci_low", "ci_high", "p_value", "verdict"}
    for args, sentence in [
        ((str(a), str(tmp_path / "nope")), "is not a run directory"),
        ((str(a), str(b), "--alpha", "2"), "--alpha must be between 0 and 1"),
    ]:
        bad = subprocess.run(
            [sys.executable, "-m", "imagejourney.cli", "compare", *args], capture_output=True, text=True
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and sentence in bad.stderr


def test_markdown_summary_for_github_actions(tmp_path):
    import os

    a = write_run(tmp_path / "a", noisy(300, 20, 1))
    b = write_run(tmp_path / "b", noisy(400, 20, 2))
    summary = tmp_path / "step-summary.md"
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "compare", str(a), str(b)],
        capture_output=True,
        text=True,
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert proc.returncode == 1
    markdown = summary.read_text()
    assert markdown.startswith("### imagejourney: ") and "| `reroll.click_to_final_ms` |" in markdown
    assert "**slower**" in markdown
