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


def test_json_output_is_checked_before_the_command_runs_and_its_folder_is_made(tmp_path):
    """--json to a folder, or under a file, is one sentence before anything runs (a bench would
    otherwise end minutes later in a traceback); a missing folder is made."""
    a = write_run(tmp_path / "a", noisy(300, 20, 1))
    (tmp_path / "plain-file").write_text("")
    for command, path, sentence in [
        (["compare", str(a), str(a)], tmp_path, "is a folder; give a file name"),
        (["compare", str(a), str(a)], tmp_path / "plain-file" / "c.json", "its folder cannot be made"),
        (["bench", "model"], tmp_path / "plain-file" / "m.json", "its folder cannot be made"),
    ]:
        bad = subprocess.run(
            [sys.executable, "-m", "imagejourney.cli", *command, "--json", str(path)], capture_output=True, text=True
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and sentence in bad.stderr, bad.stderr
        assert bad.stdout == ""  # refused before it ran
    made = tmp_path / "new" / "folder" / "c.json"
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "compare", str(a), str(a), "--json", str(made)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and json.loads(made.read_text())["regressions"] == []


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


# Quality: acceptance rate and prompt match on synthetic judgements ---------------------------

PROMPT_MATCH_RULE = {"all": [{"rule": "not_blank", "min_pixel_std": 1}, {"rule": "prompt_match", "min": 0.8}]}


def write_judged_run(root, matches, seed=0):
    """One journey run of a generate and rerolls, one candidate final per value of `matches`
    (its prompt_match, in judgements.csv; None: no value, so not judged). Timings are alike."""
    manifest = {
        "journey": {"name": "portrait", "prompts": [{"id": "a"}], "steps": [], "acceptance": PROMPT_MATCH_RULE},
        "config_hash": "cmp0000000",
        "target": {"name": "t", "url": "u"},
        "ui_profile": {"name": "p"},
        "model": {"model": "portrait-world"},
        "browser": {"version": "156"},
        "hardware": {"cpu": "c"},
    }
    run = RunDirectory.create(root, manifest)
    rows = ["image,judge,value,model,calibrated"]
    finals = noisy(300, len(matches), seed)
    for index, (match, final) in enumerate(zip(matches, finals), start=1):
        image = f"images/{index}.png"
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (16, 16, 3), np.uint8)).save(run.path / image)
        click = 1000.0 * index
        paint = {"t": click + final, "method": "element-timing", "url": ""}
        run.event(
            "action",
            journey="portrait",
            prompt_id="a",
            prompt="p",
            seed=index,
            step_index=index,
            action="generate" if index == 1 else "reroll",
            image=image,
            probe={"click": click, "final": paint, "paints": [paint]},
        )
        rows.append(f"{image},prompt_match,{'' if match is None else match},judge,{'no' if match is None else 'yes'}")
    (run.path / "judgements.csv").write_text("\n".join(rows) + "\n")
    run.event("run_finished")
    return run.path


def matches(n, seed, wrong_share=0.0):
    """Prompt-match values of a good model (about 0.95), `wrong_share` of them wrong (about 0.3)."""
    rng = np.random.default_rng(seed)
    good = np.clip(rng.normal(0.95, 0.03, n), 0, 1)
    bad = np.clip(rng.normal(0.3, 0.1, n), 0, 1)
    return [round(float(b if rng.random() < wrong_share else g), 4) for g, b in zip(good, bad)]


def quality_of(result):
    return {q["metric"]: q for q in result["quality"]}


def test_a_quality_drop_is_worse_and_the_same_model_is_no_change(tmp_path):
    base = side_from_path(write_judged_run(tmp_path / "a", matches(40, 1), seed=1))
    same = compare(base, side_from_path(write_judged_run(tmp_path / "b", matches(40, 2), seed=2)))
    assert {q["verdict"] for q in same["quality"]} == {"no change"} and same["quality_regressions"] == []
    worse_side = side_from_path(write_judged_run(tmp_path / "c", matches(40, 3, 0.5), seed=3))
    dropped = compare(base, worse_side)
    quality = quality_of(dropped)
    acceptance, match = quality["acceptance_rate"], quality["prompt_match"]
    assert acceptance["test"] == "Fisher's exact test" and match["test"] == "Mann–Whitney U"
    assert acceptance["verdict"] == "worse" and match["verdict"] == "worse"
    assert acceptance["baseline"]["mean"] == 1.0 and acceptance["new"]["mean"] < 0.75
    assert acceptance["ci_low"] < acceptance["difference"] < acceptance["ci_high"] < 0 and acceptance["p_value"] < 0.01
    assert dropped["quality_regressions"] == ["acceptance_rate", "prompt_match"]
    assert dropped["regressions"] == []  # the timings did not change
    better = compare(worse_side, base)
    assert {q["verdict"] for q in better["quality"]} == {"better"}
    table = format_comparison(dropped)
    assert "acceptance_rate" in table and " pts [" in table and "2 of 2 quality metrics worse" in table


def test_quality_with_too_few_samples_and_unjudged_finals(tmp_path):
    few = compare(
        side_from_path(write_judged_run(tmp_path / "a", matches(4, 1), seed=1)),
        side_from_path(write_judged_run(tmp_path / "b", matches(4, 2, 1.0), seed=2)),
    )
    assert {q["verdict"] for q in few["quality"]} == {"too few samples"} and few["quality_regressions"] == []
    # Finals the rule could not judge (no prompt_match value) are left out, not counted as rejected.
    base = side_from_path(write_judged_run(tmp_path / "c", matches(30, 3), seed=3))
    unjudged = side_from_path(write_judged_run(tmp_path / "d", matches(20, 4) + [None] * 20, seed=4))
    acceptance = quality_of(compare(base, unjudged))["acceptance_rate"]
    assert acceptance["new"]["n"] == 20 and acceptance["new"]["mean"] == 1.0 and acceptance["verdict"] == "no change"


def test_cli_exits_1_when_quality_drops_and_writes_the_quality_keys(tmp_path):
    a = write_judged_run(tmp_path / "a", matches(40, 1), seed=1)
    b = write_judged_run(tmp_path / "b", matches(40, 2, 0.5), seed=2)
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "compare", str(a), str(b), "--json", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "worse" in proc.stdout and "0 of" in proc.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["regressions"] == [] and data["quality_regressions"] == ["acceptance_rate", "prompt_match"]
    assert set(data["quality"][0]) >= {"metric", "test", "baseline", "new", "difference", "p_value", "verdict"}
    assert data["quality"][0]["change_text"].endswith("]") and " pts [" in data["quality"][0]["change_text"]


# Absolute change where a percentage says nothing -------------------------------------------


def test_near_zero_baseline_or_a_large_ratio_shows_the_absolute_change(tmp_path):
    base = side_from_path(write_run(tmp_path / "a", noisy(0.1, 20, 1)))
    result = compare(base, side_from_path(write_run(tmp_path / "b", noisy(150, 20, 2))))
    row = next(m for m in result["metrics"] if m["metric"] == "reroll.click_to_final_ms")
    assert row["verdict"] == "slower" and row["change_shown_as"] == "absolute"
    assert row["difference_ms"] == pytest.approx(149.9, abs=3)
    assert row["difference_ci_low_ms"] < row["difference_ms"] < row["difference_ci_high_ms"]
    assert {"ratio", "ci_low", "ci_high"} <= set(row)  # the keys compare wrote before are kept
    line = next(line for line in format_comparison(result).splitlines() if line.startswith("reroll.click_to_final_ms"))
    assert " ms [+" in line and "%" not in line
    assert row["change_text"].startswith("+14") and row["change_text"].endswith("]") and " ms [" in row["change_text"]
    # A baseline over 1 ms but a ratio over 10×: also absolute.
    big = compare(
        side_from_path(write_run(tmp_path / "c", noisy(20, 20, 3))),
        side_from_path(write_run(tmp_path / "d", noisy(300, 20, 4))),
    )
    assert next(m for m in big["metrics"] if m["metric"] == "reroll.click_to_final_ms")["change_shown_as"] == "absolute"
    # An ordinary slowdown stays in percent.
    plain = compare(
        side_from_path(write_run(tmp_path / "e", noisy(300, 20, 5))),
        side_from_path(write_run(tmp_path / "f", noisy(360, 20, 6))),
    )
    line = next(line for line in format_comparison(plain).splitlines() if line.startswith("reroll.click_to_final_ms"))
    assert "%" in line and " ms [" not in line


# The reference app's quality fault ---------------------------------------------------------


def test_quality_fault_swaps_every_named_attribute():
    import random

    from imagejourney.reference_app import portrait_world as world
    from imagejourney.reference_app.app import perturbed_prompt

    rng = random.Random(0)
    prompt = "portrait of a smiling person with long red hair and glasses, blue shirt, green background, warm light"
    asked = world.parse(prompt)
    for _ in range(20):
        seen = world.parse(perturbed_prompt(prompt, rng))
        assert set(seen) == set(asked) and all(seen[name] != asked[name] for name in asked)
    assert perturbed_prompt("a cat on a sofa", rng) == ""  # not the world's words: nothing asked is conditioned on


def test_quality_fault_is_recorded_with_the_job(monkeypatch):
    from types import SimpleNamespace

    from imagejourney.reference_app import app as reference

    conditioned = []

    def fake_diffusion(model, *, prompt, on_preview, **settings):
        conditioned.append(prompt)
        return Image.new("RGB", (64, 64), (200, 100, 50))

    monkeypatch.setattr(reference, "run_diffusion", fake_diffusion)
    model = SimpleNamespace(name="portrait-world", sampler="s")
    app = reference.ReferenceApp(model, reference.Settings(2, 64, 0.0), faults=reference.Faults(quality_rate=0.5))
    prompt = "portrait of a person with red hair, blue background"
    for seed in range(40):
        list(app.stream("generate", prompt, seed, app.defaults))
    faults = [job["faults"] for job in app.jobs.values()]
    faulted = [f for f in faults if f["quality"]]
    assert 10 < len(faulted) < 30  # about half
    assert [f["conditioned_on"] for f in faulted] == [p for p in conditioned if p != prompt]
    assert all("conditioned_on" not in f for f in faults if not f["quality"])
    assert reference.Faults(quality_rate=0.5).active() and not reference.Faults().active()


def test_fault_quality_out_of_range_is_one_sentence():
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.reference_app", "--fault-quality", "2"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "imagejourney serve: --fault-quality 2 is not a share of jobs; use a number from 0 to 1\n"
