"""The fidelity benchmark's ground truth: the screen, read from outside a headed Chromium on Xvfb."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from imagejourney.journeys.config import load_config
from imagejourney.journeys.runner import install_probe

from imagejourney.bench.fidelity import add_truth, page_trials, serve_fidelity_page
from imagejourney.bench.screen_truth import NoScreen, VirtualScreen, headed_launch_args

ROOT = Path(__file__).resolve().parent.parent

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
