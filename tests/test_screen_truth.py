"""The fidelity benchmark's ground truth: the screen, read from outside a headed Chromium on Xvfb."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from imagejourney.journeys.config import load_config
from imagejourney.journeys.runner import install_probe
from imagejourney.journeys.target import ReferenceApp

from imagejourney.bench.fidelity import (
    add_truth,
    case_summary,
    cold_trials,
    format_table,
    page_trials,
    serve_fidelity_page,
)
from imagejourney.bench.screen_truth import NoScreen, VirtualScreen, headed_launch_args
from imagejourney.bench.truth_check import moved_picture, picture_change, screen_of, screen_times, shows_no_picture

ROOT = Path(__file__).resolve().parent.parent
PLAIN = Path(__file__).parent / "plain_ui"

needs_xvfb = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (./setup.sh installs it)")


def trial(click, until):
    return {"record": {"click": click}, "until": until}


def test_truth_is_the_last_screen_change_inside_each_trial():
    trials = [trial(100.0, 500.0), trial(600.0, 900.0)]
    changes = [(90.0, 1.0), (150.0, 1.0), (420.0, 2.0), (510.0, 1.0), (700.0, 0.5)]
    add_truth(trials, changes, "#out img")
    assert [(t["truth"], t["truth_uncertainty"]) for t in trials] == [(420.0, 2.0), (700.0, 0.5)]


def test_a_trial_the_screen_never_showed_is_one_sentence():
    with pytest.raises(NoScreen, match=r"^trial 1: the screen under '#out img' did not change after the click"):
        add_truth([trial(100.0, 500.0)], [(90.0, 1.0), (600.0, 1.0)], "#out img")


def test_bench_without_xvfb_is_one_sentence(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no Xvfb (and nothing else) on the PATH
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "bench", "fidelity"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "imagejourney bench fidelity: Xvfb is not installed, and the ground truth is read off a virtual screen "
        "outside the browser: run ./setup.sh or `apt-get install -y xvfb`"
    )


@needs_xvfb
def test_screen_truth_comes_after_the_frame_that_paints_the_image(browser_type):
    """On the plain fidelity page, which records the frame that inserts each image: the screen
    shows it after that frame starts, and soon after (generous bounds, not a timing claim)."""
    config = load_config(ROOT / "playwright.config.py")
    server = serve_fidelity_page()
    try:
        with VirtualScreen() as display:
            launch, _ = headed_launch_args(display, browser_type.executable_path, config["BROWSER"]["args"])
            browser = browser_type.launch(**launch)
            page = browser.new_page(viewport=config["BROWSER"]["viewport"])
            install_probe(page, "#stage")
            url = f"http://127.0.0.1:{server.server_port}/fidelity_page.html?delay=200"
            errors, truth = page_trials(page, url, 3, display)
            browser.close()
    finally:
        server.shutdown()
    for after_frame, uncertainty in zip(truth["screen_after_page_frame"], truth["truth_uncertainty"]):
        assert -uncertainty <= after_frame < 100
        assert uncertainty < 50
    assert all(abs(e) < 100 for e in errors["probe"])


# The truth check (bench fidelity --base-url URL --ui-profile PROFILE) ---------------------------


def picture(seed: int, side: int = 24) -> np.ndarray:
    """A picture of coloured squares, different for each seed."""
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 256, (side // 6, side // 6, 3)), np.ones((6, 6, 1))).astype(np.uint8)


def test_a_dimmed_or_veiled_picture_is_a_tint_of_it_and_a_new_one_is_new():
    old = picture(1)
    assert picture_change(old, old) == "same"
    assert picture_change(old, (old * 0.4).astype(np.uint8)) == "tint"  # dimmed while it works
    assert picture_change(old, (old * 0.4 + 150).astype(np.uint8)) == "tint"  # a white veil over it
    assert picture_change(old, picture(2)) == "new"
    assert picture_change(old, np.clip(old.astype(int) + 2, 0, 255).astype(np.uint8)) == "new"  # nearly the same
    assert picture_change(old, np.full_like(old, 240)) == "flat"  # blank: no picture


def test_an_empty_canvas_or_a_placeholder_shows_no_picture():
    checkerboard = np.kron((np.indices((16, 16)).sum(axis=0) % 2) * 16 + 40, np.ones((8, 8))).astype(np.uint8)
    empty = np.repeat(checkerboard[:, :, None], 3, axis=2)
    waiting = empty.copy()
    waiting[10:24, 10:90] = (28, 28, 28)  # a label's box
    waiting[14:20, 14:86:3] = (208, 208, 208)  # its text
    assert shows_no_picture(empty) and shows_no_picture(waiting)
    assert not shows_no_picture(picture(1, side=132)[:128, :128])
    assert picture_change(picture(1, side=132)[:128, :128], waiting) == "flat"
    assert picture_change(waiting, picture(2, side=132)[:128, :128]) == "new"


def test_a_stage_moved_with_nothing_new_on_it_is_not_a_new_picture():
    """A canvas stage that re-centres moves what it shows: the area then shows part of the
    old picture, moved. A new picture at the same place is new."""
    stage = picture(5, side=240)
    before = stage[20:220, 20:220]
    after = np.pad(stage[40:240, 50:240], ((0, 0), (0, 10), (0, 0)))  # moved 30 px left and 20 px up
    box = (40, 40, 120, 120)
    assert picture_change(before[40:160, 40:160], after[40:160, 40:160]) == "new"
    assert moved_picture(before, after, box)
    assert not moved_picture(before, picture(6, side=204)[:200, :200], box)


def test_screen_preview_and_final_are_new_pictures_and_a_veil_lifted_after_the_final_moves_neither():
    old, preview, final = picture(1), picture(2), picture(3)
    states = [
        (0.0, old),
        (20.0, (old * 0.4).astype(np.uint8)),  # the stage dims at the click
        (150.0, np.full_like(old, 250)),  # a blank frame
        (300.0, preview),
        (600.0, (final * 0.5 + 120).astype(np.uint8)),  # the final, under the veil
        (660.0, final),  # the veil lifted
    ]
    times = [(t, 0.5) for t, _ in states]
    seen = screen_times(times, [s for _, s in states], click=10.0, end=700.0)
    assert seen == {"preview": (300.0, 0.5), "final": (600.0, 0.5)}
    # The old picture shown again (re-mounted) is neither; a state not known (off the watched square) is skipped.
    seen = screen_times(times[:2] + [(400.0, 0.5)], [old, None, old], click=10.0, end=700.0)
    assert seen == {"preview": None, "final": None}


def test_a_preview_drawn_away_from_the_final_is_read_where_it_was_drawn():
    """Two watched squares, as for a node graph: the final's area in the first, the sampler
    node's preview in the second. The preview is read in its own square; a preview drawn in no
    watched square is not seen (None), never taken from the final's area."""
    old, preview, final = picture(1, 60), picture(2, 60), picture(3, 60)
    h, w = old.shape[:2]
    final_box = {
        "x": 10,
        "y": 10,
        "width": w - 20,
        "height": h - 20,
    }  # inside square 0, whose frames are whole pictures

    def frame(inner):
        whole = np.zeros_like(old)
        whole[10 : h - 10, 10 : w - 10] = inner[10 : h - 10, 10 : w - 10]
        return whole

    watched = {
        "squares": [{"left": 0, "top": 0, "width": w, "height": h}, {"left": 500, "top": 0, "width": w, "height": h}],
        "times": [[(0.0, 0.5), (600.0, 0.5)], [(0.0, 0.5), (250.0, 0.5)]],
        "frames": [[frame(old), frame(final)], [frame(old), frame(preview)]],
        "area": {"box": final_box, "preview": {**final_box, "x": 510}, "moves": [], "now": 700.0},
        "end": 750.0,
    }
    assert screen_of(watched, click=10.0) == {"preview": (250.0, 0.5), "final": (600.0, 0.5)}
    watched["area"]["preview"] = {**final_box, "x": 2000}  # drawn where no square was watched
    assert screen_of(watched, click=10.0) == {"preview": None, "final": (600.0, 0.5)}


def run_cli(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "bench", "fidelity", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_truth_check_bad_input_is_one_sentence(tmp_path, plain_ui_url):
    unknown = run_cli("--base-url", plain_ui_url, "--ui-profile", "no-such-profile")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert unknown.stderr.startswith("imagejourney bench fidelity: unknown UI profile 'no-such-profile'")
    unreachable = run_cli("--base-url", "http://127.0.0.1:9/", "--ui-profile", "reference")
    assert unreachable.returncode == 2 and unreachable.stderr.count("\n") == 1
    assert unreachable.stderr.startswith("imagejourney bench fidelity: cannot reach http://127.0.0.1:9/")
    alone = run_cli("--base-url", plain_ui_url)
    assert alone.returncode == 2 and "--ui-profile" in alone.stderr and "Traceback" not in alone.stderr
    env = {**os.environ, "PATH": str(tmp_path)}  # no Xvfb on the PATH
    no_screen = run_cli("--base-url", plain_ui_url, "--ui-profile", str(PLAIN / "profile.yaml"), env=env)
    assert no_screen.returncode == 2 and no_screen.stderr.startswith(
        "imagejourney bench fidelity: Xvfb is not installed"
    )


def check_truth_json(path: Path, actions: int) -> list[dict]:
    written = json.loads(path.read_text())
    assert set(written) == {"actions", "error_ms"}
    assert set(written["error_ms"]) == {"p50", "p95", "max"}
    assert len(written["actions"]) == actions
    for a in written["actions"]:
        assert set(a) == {"action", "probe_preview_ms", "screen_preview_ms", "probe_final_ms", "screen_final_ms"}
    return written["actions"]


def check_truth_table(stdout: str, actions: int) -> None:
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("action "))
    assert "probe preview" in lines[header] and "probe final" in lines[header]
    assert all(line.split()[0] in ("generate", "reroll") for line in lines[header + 1 : header + 1 + actions])
    assert any(line.startswith("|error| over") and "p95" in line for line in lines)
    assert any(line.startswith("goal p95 |error| ≤ 17 ms") for line in lines)


@needs_xvfb
@pytest.mark.browser
def test_truth_check_on_a_plain_page(tmp_path, plain_ui_url):
    """One journey run (generate, three rerolls) on tests/plain_ui: the table and the JSON have
    their shape, and the screen saw each action's final (no timing is asserted)."""
    out = tmp_path / "truth.json"
    proc = run_cli(
        "--base-url", plain_ui_url, "--ui-profile", str(PLAIN / "profile.yaml"), "--runs", "1", "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    check_truth_table(proc.stdout, 4)
    actions = check_truth_json(out, 4)
    assert [a["action"] for a in actions] == ["generate", "reroll", "reroll", "reroll"]
    assert all(a["screen_final_ms"] is not None and a["probe_final_ms"] is not None for a in actions)


@needs_xvfb
@pytest.mark.browser
@pytest.mark.parametrize("mode", ["graph", "graph-apart", "graph-wide", "canvas-dim", "history"])
def test_truth_check_reads_canvas_dimming_and_history_pages(tmp_path, plain_ui_url, mode):
    """A node graph redrawn every frame (graph-apart: its previews in the running node, its final
    in the output node; graph-wide: those nodes far from the region's top left, where a fresh
    page's first action is only found by the look before the journey runs), a canvas that dims while it works and a region with a strip of earlier
    finals: the screen's preview and final are found for every action."""
    profile = tmp_path / "profile.yaml"
    text = (PLAIN / "profile.yaml").read_text().replace("path: /index.html", f"path: /index.html?mode={mode}")
    profile.write_text(text if mode == "history" else text.replace("final_image: img.final", ""))
    out = tmp_path / "truth.json"
    proc = run_cli("--base-url", plain_ui_url, "--ui-profile", str(profile), "--runs", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    check_truth_table(proc.stdout, 4)
    method = "element-timing" if mode == "history" else "draw-call"
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(("generate ", "reroll "))]
    assert [row[1] for row in rows] == [method] * 4
    for a in check_truth_json(out, 4):
        assert None not in (a["screen_preview_ms"], a["screen_final_ms"], a["probe_preview_ms"], a["probe_final_ms"])


@needs_xvfb
@pytest.mark.browser
def test_truth_check_is_not_fooled_by_a_stage_that_recentres(tmp_path, plain_ui_url):
    """A stage that shows "Waiting for Image" 30 ms after each click, re-centres 50 ms after a
    fresh page's first click while its region moves right (as InvokeAI's Canvas tab does), and
    shows its first preview at 400 ms: the screen's first preview is that preview, neither the
    placeholder nor the move."""
    profile = tmp_path / "profile.yaml"
    text = (PLAIN / "profile.yaml").read_text().replace("path: /index.html", "path: /index.html?mode=stage-pan")
    profile.write_text(text.replace("final_image: img.final", ""))
    out = tmp_path / "truth.json"
    proc = run_cli("--base-url", plain_ui_url, "--ui-profile", str(profile), "--runs", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    for a in check_truth_json(out, 4):
        assert a["probe_preview_ms"] >= 400 and a["screen_preview_ms"] >= 400, a
        assert a["screen_final_ms"] is not None, a


@needs_xvfb
@pytest.mark.browser
@pytest.mark.parametrize("output, profile", [("image", "reference"), ("canvas", "reference-canvas")])
def test_truth_check_on_the_reference_app(tmp_path, output, profile):
    """The reference app (tiny model), its output as an image or drawn on a canvas: one journey run."""
    out = tmp_path / "truth.json"
    extra = ("--output", "canvas") if output == "canvas" else ()
    with ReferenceApp("tiny", tmp_path / "app.log", extra_args=extra) as app:
        proc = run_cli("--base-url", app.url, "--ui-profile", profile, "--runs", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    check_truth_table(proc.stdout, 4)
    actions = check_truth_json(out, 4)
    assert all(a["screen_final_ms"] is not None for a in actions)


@needs_xvfb
def test_bench_canvas_and_cold_cases_have_their_shape(browser_type):
    """The fidelity bench's canvas cases and its first action on a fresh page, on a short run:
    every trial has a probe error and a truth (no timing is asserted)."""
    config = load_config(ROOT / "playwright.config.py")
    server = serve_fidelity_page()
    base = f"http://127.0.0.1:{server.server_port}/fidelity_page.html?delay=300"
    measured = {}
    try:
        with VirtualScreen() as display:
            launch, _ = headed_launch_args(display, browser_type.executable_path, config["BROWSER"]["args"])
            browser = browser_type.launch(**launch)
            for mode in ("canvas2d", "webgl", "dim"):
                page = browser.new_page(viewport=config["BROWSER"]["viewport"])
                install_probe(page, "#stage")
                measured[mode] = page_trials(page, f"{base}&mode={mode}", 2, display, mode)
                page.close()
            measured["cold-dim"] = cold_trials(
                browser, config["BROWSER"]["viewport"], f"{base}&mode=dim", 2, display, "dim"
            )
            browser.close()
    finally:
        server.shutdown()
    for case, (errors, truth) in measured.items():
        assert len(errors["probe"]) == len(errors["naive"]) == 2, case
        assert errors["probe_paint_time"] == []  # a canvas draw has no Element Timing entry
        assert len(truth["truth_uncertainty"]) == 2
        assert all(abs(e) < 1000 for e in errors["probe"]), case
    summary = case_summary(*measured["canvas2d"])
    assert summary["probe_paint_time"]["n"] == 0 and summary["probe"]["n"] == 2
    table = format_table({"cases": {case: case_summary(*both) for case, both in measured.items()}})
    assert "goal, probe p95 |error| ≤ 17 ms on every case:" in table
