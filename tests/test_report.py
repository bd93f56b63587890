"""The report is computed from a run directory alone; here one is written by hand."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.reports.render import render_report
from imagejourney.reports.run import load_run
from imagejourney.reports.summary import summarize
from PIL import Image

HOSTILE = '<script>alert("x")</script> portrait'


def image(path, flat: bool):
    pixels = (
        np.full((32, 32, 3), 128, np.uint8)
        if flat
        else np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    )
    Image.fromarray(pixels).save(path)
    return path.name


def probe(click, previews, final, method="element-timing"):
    """A probe record as the page gives it: click time, paints (previews then the final)."""
    paints = [{"t": t, "method": method, "url": f"blob:{t}"} for t in [*previews, final]]
    return {"click": click, "final": paints[-1], "paints": paints}


MANIFEST = {
    "journey": {
        "name": "portrait",
        "prompts": [{"id": "a"}, {"id": "b"}],
        "steps": ["prompt", "generate", {"edit": {}}],
        "acceptance": {"rule": "not_blank", "min_pixel_std": 8.0},
        "think_time_ms": 0,
        "settings": {"steps": 4, "size": 128},
    },
    "config_hash": "0123456789",
    "target": {"name": "reference", "url": "http://127.0.0.1:1/"},
    "ui_profile": {"name": "reference"},
    "model": {"model": "tiny", "random_weights": True, "device": "cpu"},
    "browser": {"name": "chromium", "version": "156", "source": "system", "viewport": {"width": 1, "height": 1}},
    "hardware": {"cpu": "test cpu", "cpu_count": 2},
    "versions": {"python": "3.11"},
    "git_commit": None,
    "degraded": ["the reference app ran on the CPU, not a GPU"],
}


@pytest.fixture
def run_dir(tmp_path):
    run = RunDirectory.create(tmp_path, MANIFEST)
    a = {"journey": "portrait", "prompt_id": "a", "prompt": HOSTILE, "mask": None}
    b = {"journey": "portrait", "prompt_id": "b", "prompt": "b prompt", "mask": None}
    # Journey a: the generate final is flat (rejected), the reroll is accepted.
    run.event(
        "action",
        **a,
        seed=1,
        step_index=1,
        action="generate",
        probe=probe(1000.0, [1100.0, 1200.0, 1300.0], 1400.0),
        image="images/" + image(run.images / "a1.png", True),
        time_origin=0,
    )
    run.event(
        "action",
        **a,
        seed=1,
        seed_shown=2,
        step_index=2,
        action="reroll",
        probe=probe(1600.0, [1680.0, 1700.0, 1800.0], 1900.0),
        image="images/" + image(run.images / "a2.png", False),
    )
    image(run.images / "a3.png", False)
    run.event(
        "export", **a, seed=1, step_index=3, action="export", click=2000.0, saved_at=2025.0, image="images/a3.png"
    )
    # Journey b: generate accepted at once (no preview painted, timed by screencast); its edit failed.
    run.event(
        "action",
        **b,
        seed=3,
        step_index=1,
        action="generate",
        probe=probe(500.0, [], 700.0, "screencast"),
        image="images/" + image(run.images / "b1.png", False),
    )
    run.event(
        "step_failed",
        **b,
        seed=3,
        step_index=2,
        action="edit",
        error="the UI reported an error: <b>boom</b>",
        screenshot=None,
    )
    run.event("run_finished")
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
    namespaces = (
        'xmlns="http://www.w3.org/2000/svg"',
        'xmlns:xlink="http://www.w3.org/1999/xlink"',
    )  # names, not loads
    offline = html.replace("http://127.0.0.1:1/", "")
    for namespace in namespaces:
        offline = offline.replace(namespace, "")
    assert "http://" not in offline and "https://" not in offline
    assert "900 ms" in html and "not_blank" in html and "fewer than 20" in html
    assert 'src="images/a2.png"' in html
    assert "the reference app ran on the CPU" in html
    assert (
        "1 action(s) were timed by a fallback method" in html and "b step 1 (generate): <code>screencast</code>" in html
    )


def test_cli_renders_and_rejects_a_non_run_directory(run_dir, tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(run_dir)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.strip().endswith("report.html")
    bad = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "is not a run directory" in bad.stderr


def test_a_run_with_no_step_recorded_still_gets_a_report(tmp_path):
    run = RunDirectory.create(
        tmp_path,
        {
            "journey": {
                "name": "p",
                "acceptance": {"rule": "not_blank", "min_pixel_std": 1},
                "prompts": [],
                "steps": [],
            },
            "config_hash": "x",
            "target": {"name": "t", "url": "u"},
            "ui_profile": {"name": "p"},
            "browser": {"name": "chromium", "version": "1", "source": "system", "viewport": {"width": 1, "height": 1}},
            "hardware": {"cpu": "c", "cpu_count": 1},
            "versions": {},
            "degraded": [],
        },
    )
    html = render_report(run.path)[0].read_text()
    assert "No step failed" in html and "0 / 0" in html


FORMAT_1_RUN = Path(__file__).parent / "data" / "run-format-1"


def test_summary_json_has_the_design_keys(run_dir):
    render_report(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["schema"] == "imagejourney.summary/1"
    for key in (
        "run_id",
        "journey",
        "config_hash",
        "target",
        "started_at",
        "finished_at",
        "complete",
        "conditions",
        "actions",
        "ttui_ms",
        "iterations_to_useful",
        "acceptance_rate",
        "labels",
        "cost",
        "quality",
        "budgets",
        "failed_steps",
        "flaky_journey_runs",
        "comparison",
        "load",
    ):
        assert key in summary, key
    assert summary["complete"] is True and summary["journey"] == "portrait"
    assert summary["actions"]["generate"]["click_to_final_ms"] == {"n": 2, "p50": 300.0, "p95": 390.0}
    assert summary["actions"]["export"]["click_to_export_ms"]["p50"] == 25.0
    assert summary["ttui_ms"] == {"n": 2, "p50": 550.0, "p95": 865.0, "reached": 2, "journey_runs": 2}
    assert summary["iterations_to_useful"] == {"p50": 1.5, "max": 2}
    assert summary["failed_steps"] == 1 and summary["conditions"] == ["the reference app ran on the CPU, not a GPU"]


def test_steps_csv_is_the_audits_export_from_events(run_dir):
    render_report(run_dir)
    rows = list(csv.DictReader(open(run_dir / "steps.csv")))
    reroll = next(r for r in rows if r["action"] == "reroll")
    assert reroll["click_to_preview_ms"] == "80.0" and reroll["click_to_final_ms"] == "300.0"
    assert reroll["previews_painted"] == "3" and reroll["seed"] == "2" and reroll["step_index"] == "2"


def test_a_format_1_run_is_re_audited_with_todays_rules(tmp_path):
    """A run directory from before the audit moved to reports/: its steps.csv froze the
    metrics in. Re-rendering recomputes them from the probe records in events.jsonl."""
    run = tmp_path / "old-run"
    shutil.copytree(FORMAT_1_RUN, run)
    recorded = (run / "steps.csv").read_text()
    tampered = recorded.replace(",303.6,", ",99999.0,", 1)  # as if the old runner's rule had been wrong
    assert tampered != recorded
    (run / "steps.csv").write_text(tampered)
    render_report(run)
    assert (run / "steps.recorded.csv").read_text() == tampered  # the raw record is kept once
    rows = list(csv.DictReader(open(run / "steps.csv")))
    first = rows[0]
    assert first["prompt_id"] == "fisherman" and first["click_to_final_ms"] == "303.6"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    probes = {(e["prompt_id"], e["step_index"]): e["probe"] for e in events if e["event"] == "action"}
    for row in rows:
        if row["action"] in ("generate", "reroll", "edit"):
            probe = probes[(row["prompt_id"], int(row["step_index"]))]
            assert float(row["click_to_final_ms"]) == round(probe["final"]["t"] - probe["click"], 1)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is True and summary["ttui_ms"]["journey_runs"] == 3
    render_report(run)  # a second render reads the kept record again and gives the same figures
    assert json.loads((run / "summary.json").read_text())["actions"] == summary["actions"]


def test_a_killed_run_is_marked_incomplete_and_unstarted_journeys_count(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["journey_runs"] = ["a", "b", "c"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "run_finished"
    (run_dir / "events.jsonl").write_text("\n".join(lines[:-1]) + '\n{"event": "action", "prompt_id": "b", "pro')
    html = render_report(run_dir)[0].read_text()
    assert "Incomplete run." in html and "1 of 3 journey runs never started" in html
    assert "events.jsonl line 7 is not a complete record" in html
    assert "2 / 3" in html  # journey runs that reached a useful image, out of the three planned
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and summary["finished_at"] is None
    assert summary["ttui_ms"]["journey_runs"] == 3 and summary["ttui_ms"]["reached"] == 2


def test_ids_stay_strings_and_unsafe_or_missing_paths_are_not_linked(tmp_path):
    run = RunDirectory.create(tmp_path, MANIFEST)
    for number, (prompt_id, path) in enumerate(
        [
            ("NA", "javascript:alert(1)"),
            ("null", "../../../etc/passwd"),
            ("1", "images/gone.png"),
            ("007", "/etc/hostname"),
        ]
    ):
        run.event(
            "action",
            journey="portrait",
            prompt_id=prompt_id,
            prompt="p",
            seed=1,
            step_index=1,
            action="generate",
            probe=probe(100.0 * number, [], 100.0 * number + 50),
            image=path,
        )
    run.event("run_finished")
    html = render_report(run.path)[0].read_text()
    rows = list(csv.DictReader(open(run.path / "steps.csv")))
    assert [r["prompt_id"] for r in rows] == ["NA", "null", "1", "007"]
    assert all(r["image"] == "" for r in rows)
    assert "javascript:" not in html.split("What the audit skipped")[0] and 'href="javascript' not in html
    assert 'src="/etc' not in html and 'src="../' not in html
    assert "the image path &#39;javascript:alert(1)&#39; is absolute or leaves the run directory; not linked" in html
    assert "the image images/gone.png is missing from the run directory" in html


def test_a_run_directory_without_events_is_one_sentence(tmp_path):
    run = RunDirectory.create(tmp_path, MANIFEST)
    (run.path / "events.jsonl").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(run.path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "has no events.jsonl: nothing of this run was recorded" in proc.stderr


def test_one_percentile_definition():
    from imagejourney.reports.stats import distribution, percentile

    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([], 50) is None
    assert percentile([10.0] * 19 + [110.0], 95) == pytest.approx(15.0)  # rank 18.05: 5 % of the way to 110
    assert distribution([None, float("nan"), 3.0]) == {"n": 1, "p50": 3.0, "p95": 3.0, "few": True}


def test_cost_per_image_and_per_usable_image(run_dir):
    run = load_run(run_dir)
    assert summarize(run)["cost"] is None  # no price given: no cost, never an invented one
    cost = summarize(run, gpu_hour_usd=3.6)["cost"]
    # click-to-final 400 + 300 + 200 ms = 0.9 GPU-s at $3.6/h = $0.0009; 3 images, 2 accepted
    assert cost["basis"] == "click_to_final" and cost["gpu_hour_usd"] == 3.6
    assert cost["per_image_usd"] == pytest.approx(0.0003) and cost["per_usable_image_usd"] == pytest.approx(0.00045)
    run.manifest["cost"] = {"gpu_hour_usd": 7.2}  # the target's price, from playwright.config.py
    assert summarize(run)["cost"]["per_image_usd"] == pytest.approx(0.0006)
    html = render_report(run_dir, gpu_hour_usd=3.6)[0].read_text()
    assert "cost per usable image" in html and "$0.00045" in html and "$0.0003 per image" in html


def test_acceptance_by_cohort_tag(run_dir):
    run = load_run(run_dir)
    run.manifest["cohorts"] = {"a": ["people", "hard"], "b": ["people"]}
    by_tag = summarize(run)["acceptance_by_cohort"]
    assert by_tag["people"] == {"n": 3, "acceptance_rate": pytest.approx(2 / 3)}
    assert by_tag["hard"] == {"n": 2, "acceptance_rate": 0.5}


def test_report_opens_with_the_one_minute_summary_and_draws_its_charts(run_dir):
    html = render_report(run_dir)[0].read_text()
    assert html.index('id="summary"') < html.index('id="timings"')
    assert "2 of 2 journey runs reached a useful image; not compared with a baseline; 1 failed step(s)." in html
    for title in (
        "Click to preview (circles) and click to final (squares), per action",
        "Waterfall of journey run a",
        "Waterfall of journey run b",
    ):
        assert title in html  # text stays text in the SVG
    assert html.count('<figure class="chart" role="img" aria-label="') == 3
    assert (
        "Distribution of click-to-preview and click-to-final per action: generate preview median 100 ms (N=1)" in html
    )
    assert "<script" not in html.split("<svg", 1)[1].split("</svg>")[0]  # matplotlib's SVG holds no script


def test_large_finals_get_cached_webp_thumbnails(run_dir):
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (512, 512, 3), np.uint8)).save(
        run_dir / "images" / "a2.png"
    )
    html = render_report(run_dir)[0].read_text()
    thumb = run_dir / "thumbnails" / "images" / "a2.webp"
    assert thumb.is_file() and max(Image.open(thumb).size) == 256
    assert 'src="thumbnails/images/a2.webp"' in html and 'src="images/b1.png"' in html  # small finals as they are
    made = thumb.stat().st_mtime_ns
    render_report(run_dir)
    assert thumb.stat().st_mtime_ns == made  # made once


def test_bundle_opens_anywhere_and_keeps_traces_out_unless_asked(run_dir, tmp_path):
    import re
    import zipfile

    (run_dir / "traces" / "a.zip").write_bytes(b"trace")
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(run_dir), "--bundle"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    assert bundle.name.endswith("-report.zip") and bundle.is_file()
    unpacked = tmp_path / "elsewhere"
    zipfile.ZipFile(bundle).extractall(unpacked)
    root = unpacked / run_dir.name
    assert {"report.html", "summary.json", "steps.csv", "manifest.json"} <= {p.name for p in root.iterdir()}
    assert not (root / "traces").exists()
    html = (root / "report.html").read_text()
    links = re.findall(r'(?:src|href)="([^"#:]+)"', html)
    assert links and all((root / link).is_file() for link in links if not link.startswith("traces/")), links
    with_traces = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "report", str(run_dir), "--bundle", "--with-traces"],
        capture_output=True,
        text=True,
    )
    assert f"{run_dir.name}/traces/a.zip" in zipfile.ZipFile(with_traces.stdout.strip().splitlines()[-1]).namelist()


def test_segments_and_failures_grouped_by_reason(run_dir):
    run = load_run(run_dir)
    run.manifest["journey"]["prompts"] = [{"id": "a", "settings": {"aspect": "9:16"}}, {"id": "b"}]
    summary = summarize(run)
    by_aspect = {row["segment"]: row for row in summary["segments"]["aspect"]}
    assert by_aspect["9:16"]["n"] == 2 and by_aspect["1:1"]["n"] == 1
    assert by_aspect["9:16"]["acceptance_rate"] == 0.5 and by_aspect["9:16"]["click_to_final_ms"]["p50"] == 350.0
    assert [row["segment"] for row in summary["segments"]["prompt"]] == ["a", "b"]
    assert summary["failures_by_reason"][0]["count"] == 1 and "boom" in summary["failures_by_reason"][0]["reason"]
    html = render_report(run_dir)[0].read_text()
    assert 'id="segments"' in html and "&lt;b&gt;boom&lt;/b&gt;" in html


def test_summary_json_rounds_times_to_a_tenth_of_a_ms(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FORMAT_1_RUN, run)
    render_report(run)
    summary = json.loads((run / "summary.json").read_text())
    times = [d[q] for metrics in summary["actions"].values() for d in metrics.values() for q in ("p50", "p95")]
    times += [summary["ttui_ms"]["p50"], summary["ttui_ms"]["p95"]]
    assert times and all(t == round(t, 1) for t in times)
    assert any(t != round(t) for t in times)  # rounded, not truncated to whole ms
    audit = summarize(load_run(run))  # the audit keeps full precision
    assert audit["ttui"]["p50"] != round(audit["ttui"]["p50"], 1) or audit["ttui"]["p95"] != round(
        audit["ttui"]["p95"], 1
    )


def test_report_names_metrics_and_judges_in_words():
    from imagejourney.reports.render import fmt_judged, in_words

    assert in_words("time_to_recognisable_preview_ms") == "time to recognisable preview"
    assert in_words("click_to_final_ms") == "click to final" and in_words("reroll_diversity") == "reroll diversity"
    assert fmt_judged(366.2, "time_to_recognisable_preview_ms") == "366 ms"
    assert fmt_judged(0.9012, "prompt_match") == "0.90"


def test_contact_sheet_says_what_prompt_match_saw(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FORMAT_1_RUN, run)
    (run / "judgements.csv").write_text(
        "image,judge,value,model,calibrated\n"
        "images/dancer-01-generate.png,prompt_match,0.41,prompt-match CNN: asked red hair · saw <b>blond</b>,yes\n"
        "images/dancer-01-generate.png,prompt_match:hair_colour,0.02,prompt-match CNN: asked red · saw blond,yes\n"
        "images/dancer-02-reroll.png,prompt_match,0.97,prompt-match CNN: all seen,yes\n"
    )
    html = render_report(run)[0].read_text()
    assert "asked red hair · saw &lt;b&gt;blond&lt;/b&gt;" in html  # the judge's words, escaped
    assert ">all seen<" in html and "prompt match 0.41" in html
    assert "prompt match: hair colour" not in html  # per-attribute values stay in judgements.csv
    quality = json.loads((run / "summary.json").read_text())["quality"]
    assert quality["prompt_match"] == {
        "p50": 0.69,
        "n": 2,
        "not_judged": 0,
        "model": "prompt-match CNN",
        "calibrated": True,
    }
    assert quality["attributes"] == [
        {"attribute": "hair_colour", "n": 1, "seen_as_asked_rate": 0.0, "seen_instead": "blond"}
    ]
    assert '<td>hair colour</td><td class="n">1</td><td class="n">0%</td><td>blond</td>' in html


def test_report_shows_quality_verdicts_against_a_baseline(tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    shutil.copytree(FORMAT_1_RUN, base)
    shutil.copytree(FORMAT_1_RUN, new)
    render_report(base)
    html = render_report(new, baseline=str(base))[0].read_text()
    summary = json.loads((new / "summary.json").read_text())
    quality = {q["metric"]: q for q in summary["comparison"]["quality"]}
    assert "acceptance_rate" in quality and summary["comparison"]["quality_regressions"] == []
    assert '<td title="acceptance_rate">acceptance rate</td>' in html
    assert "quality not worse" in html and "quality metrics worse" in html


def test_report_says_quality_is_worse_when_the_finals_are_not_useful(tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    shutil.copytree(FORMAT_1_RUN, base)
    shutil.copytree(FORMAT_1_RUN, new)
    finals = sorted(p.name for p in (new / "images").glob("*.png") if "export" not in p.name)
    rows = "".join(f"images/{name},no,lead,2026-11-23T12:00:00+00:00,\n" for name in finals)
    (new / "labels.csv").write_text("image,useful,reviewer,labelled_at,note\n" + rows)
    html = render_report(new, baseline=str(base))[0].read_text()
    assert json.loads((new / "summary.json").read_text())["comparison"]["quality_regressions"] == ["acceptance_rate"]
    assert "quality worse: acceptance rate" in html
