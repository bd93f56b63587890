"""Many creators at once and browsers elsewhere: `pytest e2e/ --creators …`, `--browser-ws`
and `--cdp`, each in a subprocess against the real reference app and a real Chromium."""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from imagejourney.journeys.browser import resolve_chromium

ROOT = Path(__file__).resolve().parent.parent
PACK = """
name: busy
description: two prompts, generate and reroll
settings: {steps: 2, size: 64, guidance: 0.0}
action_timeout_s: 60
prompts:
  - {id: cat, text: "portrait of a cat", seed: 7}
  - {id: owl, text: "portrait of an owl", seed: 8}
steps: [prompt, generate, reroll]
acceptance: {rule: not_blank, min_pixel_std: 1.0}
"""

pytestmark = pytest.mark.browser


def run_e2e(tmp_path, *args):
    pack = tmp_path / "pack.yaml"
    pack.write_text(PACK)
    results = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "e2e/",
            "--journey",
            str(pack),
            "--results-dir",
            str(results),
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, sorted(results.glob("*")) if results.exists() else []


def rows(run_dir):
    return list(csv.DictReader(open(run_dir / "steps.csv")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else "exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {timeout_s} s")


def test_a_sweep_of_creators_records_each_creator_and_the_load_section(tmp_path):
    proc, runs = run_e2e(tmp_path, "--creators", "1,3", "--ramp-s", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout and proc.stdout.rstrip().endswith("report.html")
    run = runs[0]
    steps = rows(run)
    assert len(steps) == (1 + 3) * 2 * 2  # creators × journey runs × image actions
    assert {(r["creators"], r["creator"]) for r in steps} == {("1", "1"), ("3", "1"), ("3", "2"), ("3", "3")}
    assert {r["prompt_id"] for r in steps if r["creators"] == "3"} == {
        f"{p}.n3-c{c}" for p in ("cat", "owl") for c in (1, 2, 3)
    }
    assert all(
        r["status"] == "ok" and float(r["click_to_final_ms"]) > 0 and float(r["click_epoch_ms"]) > 1e12 for r in steps
    )
    # Each creator has its own context: its own images, and every journey run its own files.
    assert len({r["image"] for r in steps}) == len(steps)

    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    started = {e["creator"]: e["wall_time"] for e in events if e["event"] == "creator_started" and e["creators"] == 3}
    assert 0.5 <= started[3] - started[1] <= 5  # creator 3 of 3 starts 2/3 of the 1 s ramp after creator 1

    load = json.loads((run / "summary.json").read_text())["load"]
    assert load["creators"] == 3 and load["ramp_s"] == 1.0
    assert [level["creators"] for level in load["sweep"]] == [1, 3]
    for level in load["sweep"]:
        assert level["finals"] == level["creators"] * 4
        assert level["throughput_finals_per_min"] > 0 and level["wall_s"] > 0
        assert level["click_to_final_ms"]["n"] == level["finals"]
        assert level["queue_wait_ms"]["n"] == level["finals"]  # the reference app reports its times
        assert level["errors"] == {"failed_steps": 0, "by_reason": [], "creators_failed": 0, "journey_runs_skipped": 0}
    assert load["throughput_finals_per_min"] == load["sweep"][1]["throughput_finals_per_min"]
    active = {a["active_creators"]: a["click_to_final_ms"]["n"] for a in load["by_active_creators"]}
    assert sum(active.values()) == 16 and active.get(1, 0) >= 4 and max(active) <= 3
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["load"] == {"creators": [1, 3], "ramp_s": 1.0, "time_limit_s": 600.0}
    assert len(manifest["journey_runs"]) == 8
    assert any("compete with it for CPU" in d for d in manifest["degraded"])
    report = (run / "report.html").read_text()
    assert 'id="load"' in report and "Throughput" in report and "3 creators: click-to-final p50" in report


def test_the_time_limit_stops_a_level_and_says_what_was_skipped(tmp_path):
    # Creator 1 starts at once and walks its first journey run (2.9–5 s here, page load and first
    # generate included); creator 2 starts half-way through the 6 s ramp, past the 1 s limit: 3 of
    # the 4 journey runs are skipped. (A 0.2 s limit was too tight: one fsync of creator 1's
    # first event took 0.3 s on a busy disk.)
    proc, runs = run_e2e(tmp_path, "--creators", "2", "--ramp-s", "6", "--load-time-limit-s", "1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    load = json.loads((runs[0] / "summary.json").read_text())["load"]
    assert load["sweep"][0]["errors"]["journey_runs_skipped"] == 3 and load["sweep"][0]["finals"] == 2
    assert "3 journey runs skipped at the time limit" in (runs[0] / "report.html").read_text()
    assert json.loads((runs[0] / "summary.json").read_text())["ttui_ms"]["reached"] == 1


@pytest.mark.parametrize(
    "value, sentence",
    [
        ("0", "--creators 0 must be a whole number from 1 to 64"),
        ("two", "--creators two must be a whole number from 1 to 64"),
        ("2,2", "--creators 2,2 names a count twice"),
    ],
)
def test_bad_creators_is_one_sentence(value, sentence):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "e2e/", "--collect-only", "-q", "--creators", value],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and sentence in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def launch_options(browser_type) -> str:
    """What a run-server on this machine needs to start a browser: the system Chromium when
    Playwright's own is not installed (the server has to be started with --unsafe for that)."""
    executable, _ = resolve_chromium(browser_type.executable_path)
    return "" if executable is None else "?launch-options=" + quote(json.dumps({"executablePath": executable}))


def test_a_journey_runs_through_a_playwright_browser_server(tmp_path, browser_type):
    port = free_port()
    # Its own process group: `python -m playwright` starts the node server as a child, which
    # must stop with it.
    server = subprocess.Popen(
        [sys.executable, "-m", "playwright", "run-server", "--host", "127.0.0.1", "--port", str(port), "--unsafe"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, server)
        if launch_options(browser_type):  # the server has no Playwright Chromium: the address must name one
            (tmp_path / "unnamed").mkdir()
            proc, _ = run_e2e(tmp_path / "unnamed", "--browser-ws", f"ws://127.0.0.1:{port}/")
            assert (
                proc.returncode == 4
                and f"the browser server at ws://127.0.0.1:{port}/ has no Playwright Chromium ("
                in proc.stdout + proc.stderr
                and "start the server with --unsafe and name its Chromium" in proc.stdout + proc.stderr
            )
        proc, runs = run_e2e(tmp_path, "--browser-ws", f"ws://127.0.0.1:{port}/{launch_options(browser_type)}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    steps = rows(runs[0])
    assert len(steps) == 4 and all(r["status"] == "ok" and r["paint_method"] == "element-timing" for r in steps)
    browser = json.loads((runs[0] / "manifest.json").read_text())["browser"]
    assert browser["source"].startswith(f"browser server ws://127.0.0.1:{port}/")
    assert "executablePath" not in browser["source"]  # the address is recorded without its query values


def test_a_journey_runs_in_a_chromium_reached_over_cdp(tmp_path, browser_type):
    executable = resolve_chromium(browser_type.executable_path)[0] or browser_type.executable_path
    port = free_port()
    profile = tempfile.mkdtemp(prefix="imagejourney-cdp-")
    chromium = subprocess.Popen(
        [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, chromium)
        proc, runs = run_e2e(tmp_path, "--cdp", f"http://127.0.0.1:{port}", "--creators", "2")
    finally:
        chromium.terminate()
        chromium.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    steps = rows(runs[0])
    assert len(steps) == 8 and all(r["status"] == "ok" and r["paint_method"] == "element-timing" for r in steps)
    assert json.loads((runs[0] / "manifest.json").read_text())["browser"]["source"] == f"CDP http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "args, code, sentence",
    [
        (("--browser-ws", "ws://127.0.0.1:{port}/"), 4, "could not connect to the browser at ws://127.0.0.1:{port}/"),
        (("--cdp", "http://127.0.0.1:{port}"), 4, "could not connect to the browser at http://127.0.0.1:{port}"),
        (("--browser-ws", "http://127.0.0.1:{port}/"), 2, "must be a WebSocket address such as ws://127.0.0.1:3000/"),
        (("--browser-ws", "ws://a:1/", "--cdp", "http://a:2"), 2, "--browser-ws and --cdp both name a browser"),
    ],
)
def test_an_unreachable_or_wrong_browser_address_is_one_sentence(tmp_path, args, code, sentence):
    port = free_port()  # nothing listens there
    proc, runs = run_e2e(tmp_path, *(a.format(port=port) for a in args))
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    output = proc.stdout + proc.stderr
    assert sentence.format(port=port) in output
    assert "Traceback" not in output and runs == []
