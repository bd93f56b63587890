"""The benchmarks' arithmetic and tables (the benchmarks themselves print figures, they are
not tests: `imagejourney bench fidelity` / `bench app`)."""

import subprocess
import sys

from imagejourney.bench.app import format_table as app_table
from imagejourney.bench.fidelity import format_table as fidelity_table
from imagejourney.bench.fidelity import stats


def test_error_statistics():
    s = stats([-3.0] + [1.0] * 18 + [40.0])
    # p95 by the one definition (reports/stats.py): rank 0.95 × 19 = 18.05, between 1.0 and 40.0
    assert s == {"n": 20, "p50": 1.0, "p95": 3.0, "max": 40.0, "abs_p95": 4.9}


def test_tables_show_methods_side_by_side_and_judge_targets():
    one = {"n": 20, "p50": 5.0, "p95": 8.0, "max": 9.0, "abs_p95": 8.0}
    far = {"n": 20, "p50": 300.0, "p95": 400.0, "max": 500.0, "abs_p95": 400.0}
    truth = {
        "truth_uncertainty_ms": {"p50": 0.7, "max": 1.9},
        "clock_drift_ms": -0.04,
        "reader_priority": "realtime",
        "screen_after_page_frame_ms": {"p50": 3.4, "min": 2.7, "max": 7.0},
    }
    table = fidelity_table({"cases": {"page-200ms": {"probe": one, "probe_paint_time": one, "naive": far, **truth}}})
    assert "page-200ms" in table and " yes " in table and "300.0" in table and "1.9" in table and "-0.04" in table
    assert "screen reader scheduling: realtime" in table
    assert "page-200ms      p50   3.4  min   2.7  max   7.0" in table
    pct = {"n": 20, "p50": 100.0, "p95": 150.0}
    slow = {"n": 20, "p50": 45.0, "p95": 60.0}
    case = {
        "click_to_first_preview_ms": pct,
        "click_to_final_ms": pct,
        "preview_delivery_ms": slow,
        "previews_produced": 80,
        "previews_painted": 78,
        "failed": 0,
    }
    conditions = {"model": "tiny (random weights), cpu float32", "browser": "chromium 156 (system)"}
    table = app_table({"conditions": conditions, "cases": {"live-128px": case, "live-512px": case}})
    assert table.startswith("model: tiny (random weights), cpu float32; browser: chromium 156 (system)")
    assert "78/80" in table and "delivery p50 ≤ 30 ms (live, 512²): 45.0 ms — NOT met" in table
    assert "first preview p50 ≤ 300 ms (live, 128²): 100.0 ms — met" in table


def test_app_bench_states_the_model_as_the_app_reports_it():
    from imagejourney.bench.app import model_conditions

    gpu = {
        "model": "sd-turbo-random",
        "random_weights": True,
        "device": "cuda",
        "dtype": "float16",
        "gpu": "NVIDIA H100 80GB HBM3",
    }
    assert model_conditions(gpu) == "sd-turbo-random (random weights), cuda float16, NVIDIA H100 80GB HBM3"
    local = {"model": "/models/sd-turbo", "random_weights": False, "device": "cpu", "dtype": "float32", "gpu": None}
    assert model_conditions(local) == "/models/sd-turbo, cpu float32"


def test_too_few_trials_is_one_sentence():
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "bench", "app", "--trials", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "imagejourney bench app: --trials must be at least 20 (percentiles on fewer mean little)"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "imagejourney.cli", "bench", "overhead", "--walks", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "imagejourney bench overhead: --walks must be at least 1 (one creator's walks, each in a fresh browser)"
    )


def test_judges_table_judges_its_goals():
    from imagejourney.bench.judges import format_table

    result = {
        "lpips_weights": "uncalibrated",
        "lpips_model": "lpips-alex",
        "same_seed_lpips_max": 0.0,
        "outside_mask_max": 0.0,
        "reroll_diversity_p50": 0.09,
        "lpips_pairs_per_s": {"128": 60.0, "256": 25.0, "512": 4.0},
        "lpips_pairs_per_s_one_at_a_time": {"128": 27.0, "256": 9.0, "512": 3.0},
        "failed_steps": 0,
        "conditions": {"run_dir": "/tmp/x"},
    }
    table = format_table(result)
    assert "goal ≤ 0.01: met" in table and "goal 0: met" in table and "at 256², batched: met" in table
    assert "25.0 |     9.0" in table
    slow = format_table(
        {**result, "same_seed_lpips_max": 0.2, "lpips_pairs_per_s": {"128": 1.0, "256": 2.0, "512": 1.0}}
    )
    assert "goal ≤ 0.01: NOT met" in slow and "at 256², batched: NOT met" in slow


def test_compare_bench_rates_on_known_pools():
    import numpy as np

    from imagejourney.bench.compare import format_table, verdict_rate

    rng = np.random.default_rng(1)
    same_a, same_b = rng.normal(300, 10, 200), rng.normal(300, 10, 200)
    slower = rng.normal(375, 10, 200)  # +25 %
    assert verdict_rate(same_a, same_b, 30, ("slower", "faster"), np.random.default_rng(0), trials=100) <= 0.1
    assert verdict_rate(same_a, slower, 30, ("slower",), np.random.default_rng(0), trials=100) == 1.0
    result = {
        "false_positive_rate": 0.03,
        "detection_rate": {"10": 0.6, "25": 1.0},
        "n_per_side": 30,
        "n_per_side_for_0_8_at_10": 45,
        "detection_rate_10_by_n": {"30": 0.6, "45": 0.85},
        "pool_medians_ms": {"A1": 300.0},
        "pool_sizes": {"A1": 60},
        "injected_latency_ms": {"10": 30, "25": 75},
    }
    table = format_table(result)
    assert "(goal ≤ 0.05: met)" in table and "(goal ≥ 0.8: met)" in table and "0.8 detection of +10 %: 45" in table


def test_compare_bench_quality_case_on_known_rates():
    import numpy as np

    from imagejourney.bench.compare import QUALITY_N, format_quality, quality_case, quality_rate

    rng = np.random.default_rng(0)
    assert quality_rate(0.6, 0.6, 120, ("better", "worse"), rng, trials=100) <= 0.1  # A/A
    assert quality_rate(0.6, 0.4, 200, ("worse",), rng, trials=100) >= 0.8  # a 20-point drop, many candidates
    assert quality_rate(0.6, 0.4, 6, ("worse",), rng, trials=100) <= 0.2  # too few to see it
    quality = quality_case(trials=20, progress=lambda line: None, aa_trials=20)
    assert set(quality["by_baseline_rate"]) == {"0.90", "0.75", "0.60"} and quality["drop_points"] == 20
    curve = quality["by_baseline_rate"]["0.60"]["detection_rate_by_n"]
    assert list(curve) == [str(n) for n in QUALITY_N] and curve[str(QUALITY_N[-1])] > curve[str(QUALITY_N[0])]
    table = format_quality(quality)
    assert "quality case: acceptance rate, a 20-point drop" in table and "N per side for 0.8 detection" in table
    assert quality["false_positive_n"] == (quality["n_per_side_for_0_8"] or QUALITY_N[-1])
    quality.update(false_positive_rate=0.2, n_per_side_for_0_8=None)
    table = format_quality(quality)
    assert "(goal ≤ 0.05: NOT met)" in table and "at no N up to 200 per side (goal NOT met)" in table


def test_report_bench_run_directory_renders_and_the_table_judges_goals(tmp_path):
    from imagejourney.reports.render import render_report

    from imagejourney.bench.report import format_table, synthetic_run

    run = synthetic_run(tmp_path, 52)  # 11 journey runs, the last cut short
    html = render_report(run)[0].read_text()
    assert html.count("<details") >= 11 and html.count("<details open>") < html.count(
        "<details"
    )  # later ones collapsed
    assert "Drawn for 5 journey runs" in html and "6 more are in <code>steps.csv</code>" in html
    assert (run / "cache" / "images.json").is_file()
    table = format_table(
        {
            "steps": 52,
            "images": 100,
            "run_dir": str(run),
            "build_s": 0.5,
            "build_again_s": 0.4,
            "build_unjudged_s": 0.6,
            "html_mb": 0.2,
            "chromium_first_render_ms": 2500.0,
        }
    )
    assert "build_s" in table and "(goal ≤ 5: met)" in table and "(goal ≤ 2000: NOT met)" in table


def test_soak_table_judges_memory_growth():
    from imagejourney.bench.soak import format_table

    result = {
        "actions_tried": 200,
        "actions_done": 170,
        "errors_seen": 30,
        "errors_injected": 27,
        "still_serving": True,
        "rss_start_mb": 1000.0,
        "rss_end_mb": 1050.0,
        "faults": "--fault-error-rate 0.1",
    }
    assert "(+5.0 %; goal ≤ +10 %: met)" in format_table(result) and "still serving at the end: yes" in format_table(
        result
    )
    assert "errors seen 30, errors injected 27 (goal: seen ≤ injected + 2 % of tried = 31: met)" in format_table(result)
    assert "= 26: NOT met" in format_table({**result, "errors_injected": 22})
    assert "NOT met" in format_table({**result, "rss_end_mb": 1200.0, "still_serving": False})


def test_overhead_level_measures_the_harness_against_the_pages_own_record(tmp_path, browser_type):
    """Two creators walk the instant page; every step's overhead and timing error come out of
    their records, and their processes' memory and CPU are counted."""
    from pathlib import Path

    from imagejourney.journeys.browser import chromium_launch_args
    from imagejourney.journeys.config import load_config

    from imagejourney.bench.fidelity import serve_fidelity_page
    from imagejourney.bench.overhead import level, walk

    config = load_config(Path(__file__).resolve().parent.parent / "playwright.config.py")
    launch, _ = chromium_launch_args({"headless": True}, browser_type.executable_path, config["BROWSER"]["args"])
    server = serve_fidelity_page()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        walks = [walk(2, 6, url, launch, {"viewport": config["BROWSER"]["viewport"]}, tmp_path) for _ in range(2)]
    finally:
        server.shutdown()
    result = level(walks)
    assert result["overhead_ms"]["n"] == 2 * 2 * 5  # both walks, steps after each creator's first
    assert result["walks"] == 2 and len(result["overhead_ms_p50_by_walk"]) == 2
    assert 0 < result["overhead_ms"]["p50"] < 2000  # a sanity bound; the figure is the bench's to print
    assert abs(result["timing_error_ms"]["p50"]) < 100  # the probe agrees with the page's own record
    assert result["browser_pss_mb_per_creator"] > 10 and result["driver_pss_mb_per_creator"] > 1
    assert result["cpu_cores_per_creator"] > 0


def test_overhead_table_judges_the_goal_and_estimates_1000_creators():
    from imagejourney.bench.overhead import format_table, paper_estimate

    estimate = paper_estimate(0.1, 300.0, {"cpu_count": 2, "memory_gb": 24.0})
    assert estimate == {"cores": 100.0, "memory_gb": 293.0, "machines_like_this_one": 50, "bound_by": "CPU"}
    d = {"n": 39, "p50": 12.0, "p95": 15.0}
    levels = [
        {
            "creators": n,
            "overhead_ms": d,
            "timing_error_ms": {**d, "abs_p95": 9.0},
            "browser_pss_mb_per_creator": 250.0,
            "driver_pss_mb_per_creator": 50.0,
            "cpu_cores_per_creator": 0.1,
            "steps_per_creator": 40,
        }
        for n in (1, 8)
    ]
    result = {
        "overhead_ms_p50": 12.0,
        "goal_ms": 20.0,
        "baseline_bare_playwright": {"overhead_ms": d},
        "levels": levels,
        "machine": {"cpu_count": 2, "memory_gb": 24.0},
        "browser": "system",
        "estimate_1000_creators": estimate,
    }
    table = format_table(result)
    assert "bare Playwright (baseline)" in table and "imagejourney, 8 creators" in table
    assert "goal ≤ 20 ms: met" in table and "50 machines like this one (bound by CPU)" in table
    levels[0].update(walks=3, overhead_ms_p50_by_walk=[11.5, 20.4, 12.0])
    table = format_table(result)
    assert "(1 creator, 3 walks, 39 steps): 12.0 ms; goal ≤ 20 ms: met" in table
    assert "each walk's own p50: 11.5, 20.4, 12.0 ms (1 of 3 over the goal)" in table
    assert "NOT met" in format_table({**result, "overhead_ms_p50": 20.1})


def test_model_table_gives_shares_with_intervals_and_judges_its_goals():
    import numpy as np
    import pytest

    from imagejourney.bench.model import format_table, share

    assert share([True] * 16 + [False] * 8)["ci95"] == pytest.approx([0.467, 0.820], abs=0.001)
    assert share([True] * 80 + [False] * 40)["ci95"] == pytest.approx([0.578, 0.745], abs=0.001)

    def model(change: list[bool], keep: list[bool], recognisable: float, final: float) -> dict:
        return {
            "prompt_match_p50": 1.0,
            "reroll_pixel_distance_mean": 30.0,
            "reroll_free_attribute_changed": 0.9,
            "edit_change_rate": float(np.mean(change)),
            "edit_keep_rate": float(np.mean(keep)),
            "shares": {"edit_change_rate": share(change), "edit_keep_rate": share(keep)},
            "same_seed_identical": True,
            "recognisable_p50_ms": recognisable,
            "final_p50_ms": final,
            "previews": {},
        }

    result = {
        "settings": {"steps": 8, "size": 64, "guidance": 6.0},
        "trials": 24,
        "lpips": "lpips-alex (uncalibrated)",
        "train_minutes": 77.3,
        "judge_heldout_accuracy_min": 0.999,
        "models": {
            "portrait-world": model([True] * 16 + [False] * 8, [True] * 69 + [False] * 3, 36.0, 246.0),
            "tiny": model([True] * 4 + [False] * 20, [True] * 26 + [False] * 46, 21.0, 115.0),
        },
    }
    table = format_table(result)
    change = next(line for line in table.splitlines() if line.startswith("edit makes the change"))
    assert "67% [47%, 82%]" in change and change.endswith("≥ 80%: NOT met")
    keep = next(line for line in table.splitlines() if line.startswith("edit keeps"))
    assert keep.endswith("≥ 90%: met")
    assert "< click to final: met" in table and "≥ 0.8: met" in table
