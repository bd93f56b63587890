"""The main job end to end: `pytest e2e/` in a subprocess, driving the reference app in a real
headless Chromium, then the run directory and report it leaves are checked."""

import csv
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PACK = """
name: one-prompt
description: one prompt through every action
settings: {{steps: 3, size: 64, guidance: 0.0}}
action_timeout_s: 60
prompts:
  - {{id: cat, text: "portrait of a cat", seed: 7}}
steps: {steps}
acceptance: {{rule: not_blank, min_pixel_std: 1.0}}
"""

pytestmark = pytest.mark.browser


def run_e2e(
    tmp_path, *args, steps="[prompt, generate, reroll, edit: {prompt: make it blue, strength: 0.7}, export]", env=None
):
    pack = tmp_path / "pack.yaml"
    pack.write_text(PACK.format(steps=steps))
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
        timeout=300,
        env=env,
    )
    runs = sorted(results.glob("*")) if results.exists() else []
    return proc, runs


def rows(run_dir):
    return list(csv.DictReader(open(run_dir / "steps.csv")))


def test_journey_writes_run_directory_and_report(tmp_path):
    proc, runs = run_e2e(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(runs) == 1
    run = runs[0]
    assert proc.stdout.rstrip().splitlines()[-1] == f"imagejourney report: {run / 'report.html'}"

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["journey"]["name"] == "one-prompt"
    assert manifest["model"]["model"] == "portrait-world" and manifest["journey"]["settings"]["steps"] == 3
    assert manifest["browser"]["name"] == "chromium" and manifest["browser"]["version"]
    assert manifest["versions"]["gradio"] and manifest["config_hash"]

    steps = {r["action"]: r for r in rows(run)}
    assert list(steps) == ["generate", "reroll", "edit", "export"]
    for action in ("generate", "reroll", "edit"):
        row = steps[action]
        assert row["status"] == "ok", row
        final = float(row["click_to_final_ms"])
        assert 0 < final < 60_000
        # Gradio drops intermediate image yields under load, so an action may paint no preview
        # (click_to_preview_ms is then empty); one that did paints it before the final.
        if int(row["previews_painted"]):
            assert 0 < float(row["click_to_preview_ms"]) <= final
        else:
            assert row["click_to_preview_ms"] == ""
        assert row["paint_method"] == "element-timing"
        assert (run / row["image"]).is_file()
    for action in ("generate", "reroll", "edit"):  # the server's own times, on the page timeline
        row = steps[action]
        click, received, final_produced = (
            float(row["click_ts_ms"]),
            float(row["server_received_ts_ms"]),
            float(row["server_final_ts_ms"]),
        )
        assert click < received <= final_produced < float(row["final_paint_ts_ms"])
        assert 0 < float(row["delivery_ms"]) < float(row["click_to_final_ms"])
        assert int(row["previews_produced"]) >= int(row["previews_painted"])
    assert int(steps["reroll"]["seed"]) == int(steps["generate"]["seed"]) + 1
    assert 0 < float(steps["export"]["click_to_export_ms"]) < 60_000
    with Image.open(run / steps["export"]["image"]) as exported:  # the pack's settings reached the app
        assert exported.size == (64, 64)
        assert exported.text["steps"] == "3" and exported.text["strength"] == "0.7"
        assert exported.text["prompt"] == "make it blue" and exported.text["action"] == "edit"

    events = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert events.count("action") == 3 and "export" in events

    html = (run / "report.html").read_text()
    assert "portrait of a cat" in html and "click_to_final_ms" in html and "No step failed" in html
    assert "Server breakdown" in html and "delivery (final produced to painted)" in html


def test_masked_edit_repaints_only_its_region(tmp_path):
    proc, runs = run_e2e(
        tmp_path, steps="[prompt, generate, edit: {prompt: a red hat, strength: 1.0, mask: center}, export]"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    steps = {r["action"]: r for r in rows(runs[0])}
    assert steps["edit"]["status"] == "ok" and steps["edit"]["mask"] == "center" and steps["generate"]["mask"] == ""
    source, edited = (
        np.asarray(Image.open(runs[0] / steps[a]["image"]).convert("RGB"), int) for a in ("generate", "edit")
    )
    changed = np.abs(edited - source).max(axis=2) > 0
    assert not changed[:16].any() and not changed[48:].any()  # outside the centre (16–48 of 64 px) kept
    assert changed[16:48, 16:48].mean() > 0.5
    with Image.open(runs[0] / steps["export"]["image"]) as exported:
        assert exported.text["mask"] == "center"
    assert "edit (mask center)" in (runs[0] / "report.html").read_text()


def test_judges_run_after_the_journey_on_the_real_app(tmp_path):
    """The same seed again gives the same picture; a masked edit keeps every pixel outside its
    mask; the report's Quality section and summary.json say so, labelled uncalibrated here."""
    proc, runs = run_e2e(
        tmp_path, steps="[prompt, generate, reroll, repeat, edit: {prompt: a red hat, strength: 1.0, mask: center}]"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    judgements = list(csv.DictReader(open(runs[0] / "judgements.csv")))
    by_judge = {}
    for row in judgements:
        if row["value"]:  # prompt_match of a prompt outside the portrait world: not judged, no value
            by_judge.setdefault(row["judge"], []).append(float(row["value"]))
    assert by_judge["same_seed_lpips"] == [0.0]
    assert by_judge["edit_outside_mask_max"] == [0.0] and by_judge["edit_inside_mask_mean"][0] > 0
    assert min(by_judge["reroll_diversity"]) > 0
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["quality"]["same_seed_lpips_max"] == 0.0 and summary["quality"]["lpips_weights"] == "uncalibrated"
    assert summary["actions"]["repeat"]["click_to_final_ms"]["n"] == 1
    html = (runs[0] / "report.html").read_text()
    assert 'id="quality"' in html and "LPIPS uncalibrated (backbone weights not available)" in html


def test_injected_latency_is_called_slower_against_a_baseline_and_the_session_fails(tmp_path):
    steps = "[prompt, generate, reroll: {times: 7}]"
    (tmp_path / "base").mkdir()
    (tmp_path / "slow").mkdir()
    proc, runs = run_e2e(tmp_path / "base", steps=steps)
    assert proc.returncode == 0, proc.stdout[-3000:]
    baseline = runs[0]
    proc, runs = run_e2e(
        tmp_path / "slow", "--baseline", str(baseline), "--app-args", "--fault-latency-ms 400", steps=steps
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "regression: reroll.click_to_final_ms slower than baseline" in proc.stdout
    comparison = json.loads((runs[0] / "summary.json").read_text())["comparison"]
    rows = {m["metric"]: m for m in comparison["metrics"]}
    reroll = rows["reroll.click_to_final_ms"]
    assert reroll["verdict"] == "slower" and reroll["ci_low"] > 1 and reroll["p_value"] < 0.05
    assert rows["generate.click_to_final_ms"]["verdict"] == "too few samples"  # one generate per side
    assert any(w.startswith("fault injection differs") for w in comparison["warnings"])
    # Latency changes the times, not the pictures: every final matches the baseline's (same prompt, seed, action).
    assert comparison["drift_vs_baseline"]["n"] == 8 and comparison["drift_vs_baseline"]["max"] == 0.0
    html = (runs[0] / "report.html").read_text()
    assert "Compared with the baseline" in html and "metrics slower than baseline" in html


def test_failed_step_is_recorded_and_the_journey_goes_on(tmp_path):
    proc, runs = run_e2e(tmp_path, steps="[prompt, edit: {prompt: too early}, generate]")
    assert proc.returncode == 1
    assert "step 1 (edit) failed: the UI reported an error" in proc.stdout
    result = {r["action"]: r for r in rows(runs[0])}
    assert result["edit"]["status"] == "failed" and "generate or upload an image first" in result["edit"]["error"]
    assert (runs[0] / result["edit"]["screenshot"]).is_file()
    assert result["generate"]["status"] == "ok"  # the run went on after the failure
    assert "generate or upload an image first" in (runs[0] / "report.html").read_text()


def one_line_error(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_unknown_journey_names_the_available_ones():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "e2e/", "--journey", "nosuch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    line = one_line_error(proc.stderr)
    assert "unknown journey 'nosuch'" in line and "portrait" in line


def test_no_chromium_says_how_to_install_one(tmp_path):
    env = {
        "PATH": str(Path(sys.executable).parent),
        "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "none"),
        "HOME": str(tmp_path),
    }
    proc, runs = run_e2e(tmp_path, env=env)
    assert proc.returncode == 4
    assert "no Chromium found" in proc.stdout and "apt-get install -y chromium" in proc.stdout
    assert runs == []


FAILING_CHROMIUM = """#!/bin/sh
echo "[1:1:1124/104726.131937:FATAL:process_singleton_posix.cc:315] Socket path too long: /t/SingletonSocket." >&2
exit 1
"""


def test_a_chromium_that_does_not_start_is_one_sentence_naming_its_error(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chromium").write_text(FAILING_CHROMIUM)
    (bin_dir / "chromium").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}",
        "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "none"),
    }
    said = f"Chromium ({bin_dir / 'chromium'}) did not start: Socket path too long: /t/SingletonSocket; fix what it names and run again"
    proc, runs = run_e2e(tmp_path, env=env)
    assert proc.returncode == 4 and said in proc.stdout, proc.stdout[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagejourney.cli",
            "profile",
            "check",
            "--ui-profile",
            "reference",
            "--base-url",
            f"http://127.0.0.1:{server.server_port}/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    server.shutdown()
    assert check.returncode == 2 and one_line_error(check.stderr) == f"imagejourney profile check: {said}"


def test_reference_app_port_busy_is_one_line():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "imagejourney.reference_app", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert one_line_error(proc.stderr) == (
        f"imagejourney serve: port {port} on 127.0.0.1 is already in use; pass --port with a free port or stop what is using it"
    )


def test_reference_app_missing_dependency_is_one_line():
    code = "import sys; sys.modules['diffusers'] = None; from imagejourney.reference_app.server import main; sys.exit(main(['--port', '0']))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs the Python package 'diffusers'" in one_line_error(proc.stderr)


def test_the_stopped_reference_app_leaves_no_exports_or_uploads_behind(tmp_path, monkeypatch):
    """Exports and Gradio's copies of uploads and outputs live in the app's own temporary
    directories, which are gone once the harness has stopped it (with SIGTERM)."""
    from imagejourney.journeys.target import ReferenceApp

    app_tmp = tmp_path / "app-tmp"
    app_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(app_tmp))  # the app's process inherits it
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    run_env = {**os.environ, "TMPDIR": str(tmp_path)}
    with ReferenceApp("tiny", tmp_path / "app.log") as app:
        proc, _ = run_e2e(tmp_path, "--base-url", app.url, "--ui-profile", "reference", env=run_env)
        assert proc.returncode == 0, proc.stdout[-3000:]
        [scratch] = app_tmp.glob("imagejourney-serve-*")
        assert list((scratch / "exports").glob("*.png")) and any(p.is_file() for p in (scratch / "gradio").rglob("*"))
    # torch's compile cache is shared and reused by design; nothing else may stay
    assert sorted(p.name for p in app_tmp.iterdir() if p.name != "torchinductor_root") == []


def test_ctrl_c_stops_the_reference_app_quietly_and_cleans_up(tmp_path):
    from imagejourney.journeys.target import fetch_info, free_port

    port = free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "imagejourney.reference_app", "--port", str(port), "--model", "tiny"],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    deadline = time.monotonic() + 120
    while fetch_info(f"http://127.0.0.1:{port}/") is None and time.monotonic() < deadline:
        time.sleep(0.25)
    assert len(list(tmp_path.glob("imagejourney-serve-*"))) == 1  # its exports and Gradio's uploads
    app.send_signal(signal.SIGINT)
    out, err = app.communicate(timeout=30)
    assert app.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "torchinductor_root") == []


def test_fault_injection_is_visible_to_the_runner_and_the_report(tmp_path):
    """Against an app whose finals are all blank and whose jobs all fail after the first two:
    acceptance rejects the blanks (TTUI not reached), failures carry the injected error, and
    the report says fault injection was on."""
    from imagejourney.journeys.target import ReferenceApp

    faults = ("--fault-blank-rate", "1.0", "--fault-latency-ms", "50")
    with ReferenceApp("tiny", tmp_path / "app.log", extra_args=faults) as app:
        assert app.info["faults"]["blank_rate"] == 1.0
        proc, runs = run_e2e(
            tmp_path, "--base-url", app.url, "--ui-profile", "reference", steps="[prompt, generate, reroll]"
        )
    assert proc.returncode == 0, proc.stdout[-3000:]  # the UI worked; the images are useless
    html = (runs[0] / "report.html").read_text()
    assert "fault injection was on" in html and "not reached" in html
    assert "final(s) were blank (one flat colour, as from a safety filter): never useful" in html
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["acceptance_rate"] == 0.0 and summary["ttui_ms"]["reached"] == 0
    assert "0 / 1" in html  # journey runs that reached a useful image

    with ReferenceApp("tiny", tmp_path / "app2.log", extra_args=("--fault-error-rate", "1.0")) as app:
        (tmp_path / "errors").mkdir()
        proc, runs = run_e2e(
            tmp_path / "errors", "--base-url", app.url, "--ui-profile", "reference", steps="[prompt, generate]"
        )
    assert proc.returncode == 1
    assert "injected fault: the server failed this job" in proc.stdout


def test_a_stalled_action_fails_with_one_sentence_and_the_journey_goes_on(tmp_path, monkeypatch):
    from imagejourney.journeys.target import ReferenceApp

    pack = PACK.replace("action_timeout_s: 60", "action_timeout_s: 4")
    app_tmp = tmp_path / "app-tmp"
    app_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(app_tmp))  # the app's process inherits it
    with ReferenceApp("tiny", tmp_path / "app.log", extra_args=("--fault-stall-rate", "1.0")) as app:
        (tmp_path / "pack.yaml").write_text(pack.format(steps="[prompt, generate, reroll]"))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "e2e/",
                "--journey",
                str(tmp_path / "pack.yaml"),
                "--base-url",
                app.url,
                "--ui-profile",
                "reference",
                "--results-dir",
                str(tmp_path / "results"),
                "-p",
                "no:cacheprovider",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={name: value for name, value in os.environ.items() if name != "TMPDIR"},
        )
    assert proc.returncode == 1
    assert "step 1 (generate) failed: the generate was not done within 4 s (action_timeout_s)" in proc.stdout
    assert "step 2 (reroll) failed: the reroll was not done within 4 s" in proc.stdout
    # stopped (SIGTERM) with jobs still stalled, the app left before being killed, and cleaned up
    assert app.process.returncode == 0
    assert sorted(p.name for p in app_tmp.iterdir() if p.name != "torchinductor_root") == []


def test_validation_messages_reach_the_runner_and_the_app_keeps_serving(tmp_path):
    pack = PACK.replace(
        '{{id: cat, text: "portrait of a cat", seed: 7}}',
        '{{id: empty, text: "", seed: 7}}\n  - {{id: cat, text: "portrait of a cat", seed: 7}}',
    )
    (tmp_path / "pack.yaml").write_text(pack.replace("size: 64", "size: 100").format(steps="[prompt, generate]"))
    (tmp_path / "ok.yaml").write_text(PACK.format(steps="[prompt, generate]"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "e2e/",
            "--journey",
            str(tmp_path / "pack.yaml"),
            "--journey",
            str(tmp_path / "ok.yaml"),
            "--results-dir",
            str(tmp_path / "results"),
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "the UI reported an error: Error · generate · the prompt is empty: type what you want to see" in proc.stdout
    assert "Error · generate · size must be a multiple of 8 between 64 and 1024" in proc.stdout
    assert "2 failed, 1 passed" in proc.stdout  # the same app went on serving the valid journey


RESUME_PACK = """
name: resumable
description: three journey runs, so a kill can fall between and inside them
settings: {steps: 3, size: 64, guidance: 0.0}
prompts:
  - {id: cat, text: "portrait of a cat", seed: 7}
  - {id: dog, text: "portrait of a dog", seed: 8}
  - {id: owl, text: "portrait of an owl", seed: 9}
steps: [prompt, generate, reroll, export]
acceptance: {rule: not_blank, min_pixel_std: 1.0}
"""


@pytest.mark.parametrize("kill_at", random.Random(13).sample(range(2, 22), 2))
def test_resume_after_kill_9_gives_a_clean_runs_steps(tmp_path, kill_at):
    """Kill the whole session (pytest, browser, app) with SIGKILL once `kill_at` events are
    recorded, resume once: the steps are exactly a clean run's, none twice."""
    pack = tmp_path / "pack.yaml"
    pack.write_text(RESUME_PACK)
    results = tmp_path / "results"
    command = [
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
    ]
    crash_tmp = tempfile.mkdtemp(prefix="ij-")  # what SIGKILL leaves (app, browser); short for Chromium's socket path
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "TMPDIR": crash_tmp},
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        events = list(results.glob("*/events.jsonl"))
        if events and len(events[0].read_text().splitlines()) >= kill_at:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for orphan in psutil.process_iter(["cmdline"]):  # Playwright starts Chromium in a process group of its own
        if any(crash_tmp in arg for arg in orphan.info["cmdline"] or ()):
            orphan.kill()
    run = next(results.glob("*"))
    stopped = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(run)], capture_output=True, text=True
    )
    assert stopped.returncode == 0 and json.loads((run / "summary.json").read_text())["complete"] is False

    resumed = subprocess.run([*command, "--resume", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    assert sorted(results.glob("*")) == [run]  # the same run directory
    steps = [(r["prompt_id"], r["step_index"], r["action"]) for r in rows(run)]
    expected = [
        (p, str(i), a) for p in ("cat", "dog", "owl") for i, a in ((1, "generate"), (2, "reroll"), (3, "export"))
    ]
    assert sorted(steps) == sorted(expected)  # every step once: none lost, none twice
    assert all(r["status"] == "ok" for r in rows(run))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is True and summary["ttui_ms"]["reached"] == 3 and summary["flaky_journey_runs"] == []
    shutil.rmtree(crash_tmp)


def test_resume_with_another_config_is_refused(tmp_path):
    proc, runs = run_e2e(tmp_path, steps="[prompt, generate]")
    assert proc.returncode == 0
    events = (runs[0] / "events.jsonl").read_text().splitlines()
    (runs[0] / "events.jsonl").write_text("\n".join(events[:2]) + "\n")  # as if stopped right after it started
    changed = tmp_path / "changed.yaml"
    changed.write_text(PACK.format(steps="[prompt, generate]").replace("size: 64", "size: 128"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "e2e/",
            "--journey",
            str(changed),
            "--resume",
            str(runs[0]),
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "--resume: " in proc.stdout and "was recorded with config hash" in proc.stdout


def test_a_journey_that_passes_on_retry_is_flaky(tmp_path):
    """Half the app's jobs fail (seeded): the first attempt fails, the retry passes."""
    from imagejourney.journeys.target import ReferenceApp

    with ReferenceApp(
        "tiny", tmp_path / "app.log", extra_args=("--fault-error-rate", "0.5", "--fault-seed", "3")
    ) as app:
        proc, runs = run_e2e(
            tmp_path, "--base-url", app.url, "--ui-profile", "reference", "--retries", "3", steps="[prompt, generate]"
        )
    summary = json.loads((runs[0] / "summary.json").read_text())
    events = [json.loads(line) for line in (runs[0] / "events.jsonl").read_text().splitlines()]
    attempts = [e["attempt"] for e in events if e["event"] == "journey_finished"]
    assert attempts == [1, 2]  # fault seed 3: the first job fails, the second passes
    assert proc.returncode == 0 and summary["flaky_journey_runs"] == ["cat"]
    assert [r["attempt"] for r in rows(runs[0])] == [str(attempts[-1])]  # metrics from the last attempt only
    assert sum(1 for e in events if e["event"] == "step_failed") == len(attempts) - 1  # earlier attempts kept


def test_two_shards_in_two_processes_merge_into_the_unsharded_run(tmp_path):
    pack = tmp_path / "pack.yaml"
    pack.write_text(RESUME_PACK)
    command = [sys.executable, "-m", "pytest", "e2e/", "--journey", str(pack), "-p", "no:cacheprovider"]
    shards = [
        subprocess.Popen(
            [*command, "--shard", f"{i}/2", "--results-dir", str(tmp_path / f"shard{i}")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    for shard in shards:
        output = shard.communicate(timeout=300)[0]
        assert shard.returncode == 0, output[-3000:]
    one, two = (next((tmp_path / f"shard{i}").glob("*")) for i in (1, 2))
    assert json.loads((one / "manifest.json").read_text())["journey_runs"] == ["cat", "owl"]
    assert json.loads((two / "manifest.json").read_text())["journey_runs"] == ["dog"]
    merged = tmp_path / "merged"
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "merge", str(one), str(two), "--out", str(merged)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(merged / "report.html")
    steps = sorted((r["prompt_id"], r["step_index"], r["action"]) for r in rows(merged))
    assert steps == sorted(
        (p, str(i), a) for p in ("cat", "dog", "owl") for i, a in ((1, "generate"), (2, "reroll"), (3, "export"))
    )
    summary = json.loads((merged / "summary.json").read_text())
    assert summary["complete"] and summary["ttui_ms"]["journey_runs"] == 3 and summary["ttui_ms"]["reached"] == 3
    manifest = json.loads((merged / "manifest.json").read_text())
    assert [s["shard"] for s in manifest["shards"]] == ["1/2", "2/2"] and manifest["journey_runs"] == [
        "cat",
        "dog",
        "owl",
    ]
    other = tmp_path / "other-config"
    shutil.copytree(two, other)
    changed = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**changed, "config_hash": "0000000000"}))
    for args, sentence in [
        ((str(one), str(one)), "both hold the journey run 'cat': the shards overlap"),
        ((str(one), str(other)), "only shards of one configuration merge"),
        ((str(one), str(two)), "already exists and is not empty"),
    ]:
        bad = subprocess.run(
            [sys.executable, "-m", "imagejourney.cli", "merge", *args, "--out", str(merged)],
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and sentence in bad.stderr


def test_shard_out_of_range_is_one_sentence():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "e2e/", "--collect-only", "-q", "--shard", "3/2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--shard 3/2 must read I/N with 1 ≤ I ≤ N, e.g. --shard 1/2" in proc.stderr


def test_the_reference_app_drawn_on_a_canvas_is_timed_by_its_draw_calls(tmp_path):
    """--output canvas draws the app's output on a canvas redrawn every frame, with a highlight,
    a progress bar and a cursor trail, as a node-graph UI does: each action is timed by the
    pictures drawn, not by those, and the finals kept are the pictures drawn (the app's own
    PNGs, as the export downloads them), not the canvas."""
    proc, runs = run_e2e(tmp_path, "--ui-profile", "reference-canvas", "--app-args", "--output canvas --model tiny")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    steps = {r["action"]: r for r in rows(runs[0])}
    for action in ("generate", "reroll", "edit"):
        row = steps[action]
        assert row["status"] == "ok" and row["paint_method"] == "draw-call", row
        assert int(row["previews_painted"]) <= int(row["previews_produced"])
        assert float(row["click_to_final_ms"]) >= float(row["server_final_ts_ms"]) - float(row["click_ts_ms"])
    final = Image.open(runs[0] / steps["edit"]["image"])
    exported = Image.open(runs[0] / steps["export"]["image"])
    assert final.size == exported.size == (64, 64)  # the picture at its own size, not the 480×360 canvas
    assert final.convert("RGB").tobytes() == exported.convert("RGB").tobytes()
