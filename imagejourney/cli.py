"""The `imagejourney` command: report, judge, compare, history, dashboard, merge, review, serve,
journeys, bench, profile check."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def json_output_problem(path: str) -> str | None:
    """Why --json PATH cannot be written, in one sentence, or None; asked before the command runs,
    so that a bench of many minutes does not end in a traceback. Missing folders are made, as
    pytest's --junitxml makes them."""
    target = Path(path).expanduser()
    if target.is_dir():
        return f"--json {path} is a folder; give a file name, e.g. --json {target / 'result.json'}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--json {path}: its folder cannot be made ({exc.strerror}); give a path in a folder you can write"
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"--json {path} cannot be written (permission denied); give a path you can write"
    return None


def write_json(path: str, data) -> None:
    import json

    Path(path).expanduser().write_text(json.dumps(data, indent=2))
    print(f"wrote {path}")


def cmd_report(args) -> int:
    from imagejourney.reports.compare import CompareError
    from imagejourney.reports.records import RunDirError
    from imagejourney.reports.render import render_report, write_bundle

    try:
        report, breaches = render_report(Path(args.run_dir), args.gpu_hour_usd, args.baseline, args.store)
    except (RunDirError, CompareError) as exc:
        print(f"imagejourney report: {exc}", file=sys.stderr)
        return 2
    for breach in breaches:
        print(f"budget breached: {breach}")
    print(report)
    if args.bundle:
        print(write_bundle(Path(args.run_dir), args.with_traces))
    return 1 if breaches else 0


def cmd_judge(args) -> int:
    """Judge a run's saved images (no browser), write judgements.csv and re-render the report."""
    from imagejourney.reports.judges import LPIPS_NETS, CLIPScore, JudgeUnavailable, judge_run
    from imagejourney.reports.records import RunDirError
    from imagejourney.reports.render import render_report
    from imagejourney.reports.run import load_run
    from imagejourney.reports.summary import summarize

    try:
        if args.lpips_net not in LPIPS_NETS:
            raise JudgeUnavailable(f"unknown LPIPS network '{args.lpips_net}'; use --lpips-net {'|'.join(LPIPS_NETS)}")
        load_run(Path(args.run_dir))  # one sentence for a bad run directory before any model loads
        if args.baseline:
            load_run(Path(args.baseline))
        if args.clip_model:
            CLIPScore(args.clip_model)  # a missing model is one sentence, before anything is written
        judgements = judge_run(
            Path(args.run_dir), args.lpips_net, args.clip_model, Path(args.baseline) if args.baseline else None
        )
        report, _ = render_report(Path(args.run_dir), args.gpu_hour_usd)
    except (RunDirError, JudgeUnavailable) as exc:
        print(f"imagejourney judge: {exc}", file=sys.stderr)
        return 2
    quality = summarize(load_run(Path(args.run_dir)), args.gpu_hour_usd)["quality"]
    for key, value in quality.items():
        print(f"{key:24} {value}")
    print(f"{len(judgements)} judgements in {Path(args.run_dir) / 'judgements.csv'}")
    if args.json:
        write_json(args.json, quality)
    print(report)
    return 0


def cmd_review(args) -> int:
    """Serve the run's contact sheet for human review until interrupted."""
    import time

    from imagejourney.reports.records import RunDirError
    from imagejourney.reports.review import ReviewServer

    try:
        server = ReviewServer(Path(args.run_dir), args.port, args.host, reviewer=args.reviewer)
    except (RunDirError, OSError) as exc:
        print(f"imagejourney review: {exc}", file=sys.stderr)
        return 2
    with server:
        try:  # the line printed is inside: a Ctrl-C right after it still stops quietly
            print(
                f"reviewing {len(server.candidates)} finals at {server.url} (Ctrl-C to stop; the URL carries this "
                f"session's token); labels go to {server.run.path / 'labels.csv'}",
                flush=True,
            )
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    print(f"done; re-render with: imagejourney report {args.run_dir}")
    return 0


def cmd_compare(args) -> int:
    """Compare two runs metric by metric; exit 1 when any metric is slower beyond --min-effect, or
    the acceptance rate or prompt match is worse."""
    from imagejourney.reports.compare import CompareError, compare, format_comparison, format_markdown, resolve_side
    from imagejourney.reports.records import RunDirError

    if not 0 < args.alpha < 1 or args.min_effect < 0:
        print(
            "imagejourney compare: --alpha must be between 0 and 1 and --min-effect at least 0 (percent)",
            file=sys.stderr,
        )
        return 2
    try:
        new = resolve_side(args.new, args.store)
        baseline = resolve_side(
            args.baseline,
            args.store,
            args.since,
            journey=new.manifest["journey"].get("name"),
            exclude=new.manifest.get("run_id"),
        )
        result = compare(baseline, new, args.alpha, args.min_effect)
    except (RunDirError, CompareError) as exc:
        print(f"imagejourney compare: {exc}", file=sys.stderr)
        return 2
    print(format_comparison(result))
    if os.environ.get("GITHUB_STEP_SUMMARY"):  # GitHub Actions shows this Markdown on the run's page
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as summary:
            summary.write(format_markdown(result))
    if args.json:
        write_json(args.json, result)
    return 1 if result["regressions"] or result["quality_regressions"] else 0


def cmd_history(args) -> int:
    """add / list / show / baseline set, on the history store (SQLite or PostgreSQL)."""
    import json

    from imagejourney.reports.history import HistoryStore, StoreError
    from imagejourney.reports.records import RunDirError

    try:
        store = HistoryStore(args.store)
        if args.history_command == "add":
            run_id, added = store.add(Path(args.run_dir))
            print(f"added {run_id} to {store.url}" if added else f"{run_id} is already in {store.url}; nothing added")
        elif args.history_command == "list":
            runs = store.runs(args.target, args.journey)
            if args.json:
                print(
                    json.dumps(
                        [
                            {
                                "run_id": r.run_id,
                                "target": r.target,
                                "journey": r.journey,
                                "started_at": r.started_at,
                                "complete": r.complete,
                                "passed": r.passed,
                                "path": r.path,
                                "ttui_ms_p50": r.summary["ttui_ms"]["p50"],
                            }
                            for r in runs
                        ],
                        indent=2,
                    )
                )
            elif not runs:
                print(
                    f"the history store {store.url} holds no run yet; add one with `imagejourney history add RUN_DIR`"
                )
            for r in [] if args.json else runs:
                ttui = r.summary["ttui_ms"]["p50"]
                print(
                    f"{r.run_id:48} {r.target:12} {r.journey:16} {'passed' if r.passed else 'FAILED':6} "
                    f"TTUI p50 {'—' if ttui is None else f'{ttui:.0f} ms'}"
                )
        elif args.history_command == "show":
            run = store.get(args.run_id)
            print(
                json.dumps(
                    {**run.summary, "path": run.path, "passed": run.passed, "steps": len(store.steps(run.run_id))},
                    indent=2,
                )
            )
        else:
            store.set_baseline(args.run_id)
            print(f"pinned baseline: {args.run_id}")
    except (StoreError, RunDirError) as exc:
        print(f"imagejourney history: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_dashboard(args) -> int:
    """Serve the history store's runs, trends and reports until interrupted."""
    import time

    from imagejourney.reports.dashboard import Dashboard
    from imagejourney.reports.history import StoreError

    try:
        dashboard = Dashboard(args.store, args.port, args.host)
    except (StoreError, OSError) as exc:
        print(f"imagejourney dashboard: {exc}", file=sys.stderr)
        return 2
    guarded = "; bound beyond loopback, it needs this URL's token for every request" if dashboard.guard_pages else ""
    with dashboard:
        try:  # the line printed is inside: a Ctrl-C right after it still stops quietly
            print(f"dashboard of {dashboard.store.url} at {dashboard.url} (Ctrl-C to stop{guarded})", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_merge(args) -> int:
    """Join the run directories of shards into one, with one report."""
    from imagejourney.reports.merge import merge_runs
    from imagejourney.reports.records import RunDirError
    from imagejourney.reports.render import render_report

    try:
        merged = merge_runs([Path(d) for d in args.run_dirs], Path(args.out))
        report, breaches = render_report(merged)
    except RunDirError as exc:
        print(f"imagejourney merge: {exc}", file=sys.stderr)
        return 2
    for breach in breaches:
        print(f"budget breached: {breach}")
    print(report)
    return 1 if breaches else 0


def cmd_serve(args) -> int:
    from imagejourney.reference_app.server import run

    return run(args)


def cmd_journeys(args) -> int:
    from imagejourney.journeys.pack import available_packs, load_pack

    for name in available_packs():
        pack = load_pack(name)
        print(f"{name:16} {len(pack.prompts)} prompts  {pack.description}")
    return 0


def cmd_truth_check(args) -> int:
    """bench fidelity --base-url URL --ui-profile PROFILE: the probe beside the screen on any UI."""
    from imagejourney.bench import BenchFailed, truth_check
    from imagejourney.bench.screen_truth import NoScreen
    from imagejourney.journeys.browser import NoBrowser
    from imagejourney.journeys.target import TargetUnavailable
    from imagejourney.journeys.yaml_reader import ConfigError

    where = "imagejourney bench fidelity"
    if not (args.base_url and args.ui_profile):
        print(f"{where}: --base-url and --ui-profile go together (the UI's URL and how to operate it)", file=sys.stderr)
        return 2
    if args.runs is not None and args.runs < 1:
        print(f"{where}: --runs must be at least 1 (journey runs, each on a fresh page)", file=sys.stderr)
        return 2
    try:
        result = truth_check.run(args.base_url, args.ui_profile, Path(args.config), args.journey, args.runs)
    except (ConfigError, TargetUnavailable, NoBrowser, NoScreen, BenchFailed) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return 2
    print(truth_check.format_table(result))
    if args.json:
        keys = ("action", "probe_preview_ms", "screen_preview_ms", "probe_final_ms", "screen_final_ms")
        written = {
            "actions": [{key: a[key] for key in keys} for a in result["actions"]],
            "error_ms": {key: result["error_ms"][key] for key in ("p50", "p95", "max")},
        }
        write_json(args.json, written)
    return 0


def cmd_bench(args) -> int:
    """Run one benchmark (at least 20 trials per case), print its table, optionally write JSON."""
    import importlib

    if args.bench_command == "fidelity" and (args.base_url or args.ui_profile or args.journey or args.runs):
        return cmd_truth_check(args)
    bench = importlib.import_module(f"imagejourney.bench.{args.bench_command}")
    if args.trials < 20:
        flag = {"report": "--steps", "soak": "--actions", "overhead": "--steps"}.get(args.bench_command, "--trials")
        print(
            f"imagejourney bench {args.bench_command}: {flag} must be at least 20 (percentiles on fewer mean little)",
            file=sys.stderr,
        )
        return 2
    if args.bench_command == "overhead" and args.walks < 1:
        print(
            "imagejourney bench overhead: --walks must be at least 1 (one creator's walks, each in a fresh browser)",
            file=sys.stderr,
        )
        return 2
    from imagejourney.bench import BenchFailed
    from imagejourney.bench.screen_truth import NoScreen
    from imagejourney.journeys.browser import NoBrowser
    from imagejourney.journeys.config import ConfigError
    from imagejourney.journeys.target import TargetUnavailable

    try:
        options = {"model": args.model} if args.bench_command == "app" else {}
        if args.bench_command == "overhead":
            options = {"walks_alone": args.walks}
        result = bench.run(args.trials, Path(args.config), **options)
    except (ConfigError, TargetUnavailable, NoBrowser, NoScreen, BenchFailed) as exc:
        print(f"imagejourney bench {args.bench_command}: {exc}", file=sys.stderr)
        return 2
    print(bench.format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


def cmd_profile_check(args) -> int:
    """Open the target's page in headless Chromium and check every selector of its UI profile."""
    import shutil
    import tempfile
    from contextlib import nullcontext

    from playwright.sync_api import sync_playwright

    from imagejourney.journeys.browser import NoBrowser, chromium_launch_args, launch_chromium
    from imagejourney.journeys.config import load_config, resolve_target
    from imagejourney.journeys.pack import load_pack
    from imagejourney.journeys.profile import check_compatible, load_profile
    from imagejourney.journeys.profile_check import act_generate, check_profile, format_checks
    from imagejourney.journeys.runner import StepFailed
    from imagejourney.journeys.target import ReferenceApp, RemoteTarget, TargetUnavailable
    from imagejourney.journeys.yaml_reader import ConfigError

    app_log = Path(tempfile.mkdtemp(prefix="imagejourney-profile-check-")) / "reference-app.log"
    try:
        config = load_config(Path(args.config))
        target = resolve_target(config, args.target, args.base_url, args.ui_profile)
        profile = load_profile(target.ui_profile)
        if args.journey and not args.act:
            raise ConfigError("--journey says which pack's settings --act generate uses; add --act generate")
        pack = load_pack(args.journey) if args.journey else None
        if pack is not None:
            if not any(s.kind == "generate" for s in pack.steps):
                raise ConfigError(f"the journey '{pack.name}' ({pack.source}) has no generate step to act on")
            check_compatible(pack, profile)
        with (
            ReferenceApp(target.model, app_log)
            if target.url is None  # started_here, spelled so that mypy knows the URL below is a str
            else nullcontext(RemoteTarget.check(target.url)) as running
        ):
            with sync_playwright() as p:
                launch, _ = chromium_launch_args(
                    {"headless": True}, p.chromium.executable_path, config["BROWSER"]["args"]
                )
                browser = launch_chromium(p, launch)
                storage = profile.login.get("storage_state") if profile.login else None
                context = browser.new_context(
                    viewport=config["BROWSER"]["viewport"],
                    storage_state=str(Path(profile.source).parent / storage) if storage else None,
                )
                checks = check_profile(context.new_page(), running.url, profile)
                acted = (
                    act_generate(context.new_page(), running.url, profile, app_log.parent, pack) if args.act else None
                )
                browser.close()
    except (ConfigError, TargetUnavailable, NoBrowser, StepFailed) as exc:
        if not (
            isinstance(exc, TargetUnavailable) and app_log.exists()
        ):  # else the app's log says why it did not start
            shutil.rmtree(app_log.parent)
        print(f"imagejourney profile check: {exc}", file=sys.stderr)
        return 2
    print(f"UI profile '{profile.name}' ({profile.source}) on {running.url.rstrip('/')}{profile.path}")
    print("\n".join(format_checks(checks)))
    failed = [c for c in checks if c.failed]
    print(
        f"{len(checks) - len(failed)} of {len(checks)} checks passed"
        + ("" if not failed else "; fix the ones in capitals")
    )
    if acted is not None:
        failed += describe_generate(*acted)
    shutil.rmtree(app_log.parent)
    return 1 if failed else 0


def describe_generate(failures: list, run) -> list:
    """What one generate (and its export) showed, from its run directory's audit: returns the failures."""
    from imagejourney.reports.run import load_run

    for failure in failures:
        print(f"generate: FAILED at {failure.action}: {failure.error}")
    rows = load_run(run.path).steps
    for row in rows[rows["action"] == "generate"].to_dict("records"):
        if row["status"] != "ok":
            continue
        preview = (
            "no preview"
            if row["click_to_preview_ms"] != row["click_to_preview_ms"]
            else f"first preview {row['click_to_preview_ms']:.0f} ms"
        )
        seed = "seed not known" if row["seed"] is None or str(row["seed"]) == "<NA>" else f"seed {row['seed']}"
        server = (
            "no server times"
            if row["server_job"] is None or row["server_job"] != row["server_job"]
            else f"server job {row['server_job']}"
        )
        print(
            f"generate: paint {row['paint_method']}, {int(row['previews_painted'])} previews painted, {preview}, "
            f"final {row['click_to_final_ms']:.0f} ms after the click, {seed}, {server}"
        )
    for row in rows[(rows["action"] == "export") & (rows["status"] == "ok")].to_dict("records"):
        print(f"export: downloaded {row['image']} {row['click_to_export_ms']:.0f} ms after the click")
    return failures


def cmd_train_reference(args) -> int:
    """Train the portrait-world reference model (tokenizer, text encoder, VAE, UNet) into --out."""
    from imagejourney.reference_app.train import DEFAULT_STEPS, IMAGES, TrainingError, train_reference

    try:
        out = train_reference(
            Path(args.out),
            steps=args.steps or DEFAULT_STEPS,
            seed=args.seed,
            resume=args.resume,
            images=args.images or IMAGES,
        )
    except TrainingError as exc:
        print(f"imagejourney train-reference: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} (and {out}-early); serve it with: imagejourney serve --model {out}")
    return 0


def with_examples(*lines: str) -> dict:
    """add_parser keywords that end the command's --help with its examples."""
    return {
        "epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def build_parser() -> argparse.ArgumentParser:
    from imagejourney.reference_app.server import add_serve_arguments

    parser = argparse.ArgumentParser(prog="imagejourney", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser(
        "report",
        help="render report.html from a run directory",
        **with_examples(
            "imagejourney report journey-results/RUN_ID",
            "imagejourney report journey-results/RUN_ID --baseline last-passing --bundle",
        ),
    )
    report.add_argument("run_dir")
    report.add_argument("--gpu-hour-usd", type=float, help="GPU price per hour, for cost per (usable) image")
    report.add_argument(
        "--baseline",
        help="a baseline run directory or a store reference (run id, last, last-passing, "
        "pinned): the report shows the comparison",
    )
    report.add_argument("--store", help="history store URL for a --baseline reference")
    report.add_argument("--bundle", action="store_true", help="also write one zip of the report and what it shows")
    report.add_argument("--with-traces", action="store_true", help="put the traces in the bundle too")
    report.set_defaults(func=cmd_report)

    judge = commands.add_parser(
        "judge",
        help="judge a run's saved images (LPIPS, CLIP, blank) and re-render its report",
        **with_examples("imagejourney judge journey-results/RUN_ID --json quality.json"),
    )
    judge.add_argument("run_dir")
    judge.add_argument("--lpips-net", default="alex", help="LPIPS network: alex (default), vgg or squeeze")
    judge.add_argument(
        "--clip-model", help="CLIP model: a local directory or a Hugging Face id (cached, else downloaded)"
    )
    judge.add_argument("--baseline", help="a baseline run directory: drift of each final against its final")
    judge.add_argument("--gpu-hour-usd", type=float, help="GPU price per hour, for cost per (usable) image")
    judge.add_argument("--json", help="also write the quality summary to this JSON file")
    judge.set_defaults(func=cmd_judge)

    comparison = commands.add_parser(
        "compare",
        help="compare a run with a baseline: medians, ratio CI, verdicts",
        **with_examples(
            "imagejourney compare journey-results/OLD journey-results/NEW --json out.json",
            "imagejourney compare last journey-results/NEW --since 7d --store sqlite:///h.db",
        ),
    )
    comparison.add_argument(
        "baseline", help="a run directory, or in the history store: a run id, last, last-passing, pinned"
    )
    comparison.add_argument("new", help="a run directory or a run id in the history store")
    comparison.add_argument(
        "--since", help="pool every stored baseline run of this window (7d, 36h) of the new run's journey"
    )
    comparison.add_argument(
        "--store", help="history store URL (default: IMAGEJOURNEY_STORE or sqlite:///journey-results/history.db)"
    )
    comparison.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    comparison.add_argument(
        "--min-effect", type=float, default=5.0, help="smallest change in percent called slower/faster (default 5)"
    )
    comparison.add_argument("--json", help="also write the comparison to this JSON file")
    comparison.set_defaults(func=cmd_compare)

    history = commands.add_parser(
        "history",
        help="the history store of runs (SQLite file or PostgreSQL)",
        **with_examples(
            "imagejourney history add journey-results/RUN_ID --store sqlite:///h.db",
            "imagejourney history list --journey portrait --json",
            "imagejourney history baseline set RUN_ID",
        ),
    )
    store_help = "store URL (default: IMAGEJOURNEY_STORE or sqlite:///journey-results/history.db)"
    history.add_argument("--store", help=store_help)
    history_commands = history.add_subparsers(dest="history_command", required=True)

    def history_command(name: str, about: str) -> argparse.ArgumentParser:
        """A history subcommand; it takes --store after its name too, as git and pip take options."""
        one = history_commands.add_parser(name, help=about)
        one.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
        return one

    history_add = history_command("add", "add a run directory's summary and steps")
    history_add.add_argument("run_dir")
    history_list = history_command("list", "list stored runs, oldest first")
    history_list.add_argument("--target")
    history_list.add_argument("--journey")
    history_list.add_argument("--json", action="store_true", help="a JSON list, one object per run")
    history_show = history_command("show", "one stored run's summary")
    history_show.add_argument("run_id")
    history_baseline = history_command("baseline", "the pinned baseline")
    history_baseline.add_argument("action", choices=["set"])
    history_baseline.add_argument("run_id")
    history.set_defaults(func=cmd_history)

    dashboard = commands.add_parser(
        "dashboard",
        help="serve the history store's runs, trends and reports",
        **with_examples("imagejourney dashboard --store sqlite:///h.db --port 0"),
    )
    dashboard.add_argument(
        "--store", help="store URL (default: IMAGEJOURNEY_STORE or sqlite:///journey-results/history.db)"
    )
    dashboard.add_argument("--port", type=int, default=8766, help="port (default 8766; 0: any free port)")
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1, this machine "
        "only; beyond it every request needs the token in the URL printed at start)",
    )
    dashboard.set_defaults(func=cmd_dashboard)

    merge = commands.add_parser(
        "merge",
        help="join shards' run directories (pytest --shard I/N) into one, with one report",
        **with_examples("imagejourney merge shard-1/RUN_ID shard-2/RUN_ID --out merged"),
    )
    merge.add_argument("run_dirs", nargs="+")
    merge.add_argument("--out", required=True, help="the merged run directory to write")
    merge.set_defaults(func=cmd_merge)

    review = commands.add_parser(
        "review",
        help="label a run's finals useful / not useful in the browser (labels.csv)",
        **with_examples("imagejourney review journey-results/RUN_ID --reviewer ana"),
    )
    review.add_argument("run_dir")
    review.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    review.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1, this machine only)"
    )
    review.add_argument("--reviewer", help="name written with each label (default: the login name)")
    review.set_defaults(func=cmd_review)

    serve = commands.add_parser("serve", help="run the reference app")
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    journeys = commands.add_parser("journeys", help="list the built-in journey packs")
    journeys.set_defaults(func=cmd_journeys)

    bench = commands.add_parser("bench", help="benchmarks that print their figures beside a baseline")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True)
    for name, about, flag, default, unit in (
        ("fidelity", "probe vs naive stopwatch against ground truth", "--trials", 20, "trials per case"),
        ("app", "reference app speed: live previews vs stock Gradio streaming", "--trials", 20, "actions per case"),
        ("judges", "judges on the reference app; LPIPS pairs per second", "--trials", 64, "LPIPS pairs timed per size"),
        (
            "compare",
            "false-positive and detection rates of compare's verdicts",
            "--trials",
            60,
            "rerolls measured per pool",
        ),
        (
            "report",
            "report build time, size and first render at 10,000 steps",
            "--steps",
            10_000,
            "steps in the synthetic run",
        ),
        ("soak", "the reference app under faults: actions done, errors, memory", "--actions", 200, "actions to try"),
        (
            "overhead",
            "what the harness adds per step; memory and CPU per creator at 1, 2, 4, 8",
            "--steps",
            40,
            "steps per creator",
        ),
        (
            "model",
            "the portrait-world model's quality beside tiny: prompt match, rerolls, edits, previews",
            "--trials",
            24,
            "prompts per model",
        ),
    ):
        one = bench_commands.add_parser(name, help=about)
        one.add_argument(flag, dest="trials", type=int, default=default, help=f"{unit} (at least 20)")
        one.add_argument("--json", help="also write the figures to this JSON file")
        one.add_argument("--config", default="playwright.config.py")
        if name == "fidelity":  # the truth check: on any UI
            one.add_argument("--base-url", help="check the probe on this UI instead (with --ui-profile)")
            one.add_argument("--ui-profile", help="a built-in profile name or a YAML path, for --base-url")
            one.add_argument("--journey", help="the journey pack to run (default: prompt, generate, three rerolls)")
            one.add_argument(
                "--runs", type=int, help="journey runs, each on a fresh page (default 3, or one per prompt)"
            )
        if name == "overhead":
            one.add_argument(
                "--walks",
                type=int,
                default=6,
                help="walks by one creator, and by the bare Playwright loop, each in a fresh browser (default 6)",
            )
        if name == "app":
            one.add_argument(
                "--model",
                default="tiny",
                help="the app's --model: tiny, sd-turbo-random or a local diffusers directory (default tiny)",
            )
        one.set_defaults(func=cmd_bench)

    profile = commands.add_parser("profile", help="UI profile tools")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    check = profile_commands.add_parser(
        "check",
        help="open the page and check the profile's selectors",
        **with_examples(
            "imagejourney profile check",
            "imagejourney profile check --base-url http://127.0.0.1:9090 --ui-profile my-product.yaml",
            "imagejourney profile check --base-url http://127.0.0.1:9090 --ui-profile invokeai --act generate "
            "--journey invokeai",
        ),
    )
    check.add_argument("--target", help="a target from playwright.config.py (default: reference)")
    check.add_argument("--base-url", help="the UI's base URL (with --ui-profile)")
    check.add_argument("--ui-profile", help="a built-in profile name or a YAML path")
    check.add_argument("--config", default="playwright.config.py")
    check.add_argument(
        "--act",
        choices=["generate"],
        help="also run one generate and say what it saw: paint method, previews, final, seed, server times",
    )
    check.add_argument(
        "--journey",
        help="with --act generate: the journey pack whose first prompt, settings and steps it runs "
        "(default: the product's own settings)",
    )
    check.set_defaults(func=cmd_profile_check)

    # Defaults live in reference_app/train.py, which imports diffusers: it is imported only when
    # the command runs, so building this parser (every `imagejourney` call) stays fast.
    train = commands.add_parser(
        "train-reference",
        help="train the portrait-world reference model on this machine",
        **with_examples(
            "imagejourney train-reference", "imagejourney train-reference --steps 50 --out /tmp/pw --resume"
        ),
    )
    train.add_argument(
        "--steps",
        type=int,
        help="optimiser steps in all: a quarter, at most 600, VAE; an eighth, at most 800, the preview "
        "decoder; the rest text encoder + UNet "
        "(default: as for the committed model)",
    )
    train.add_argument(
        "--out",
        default="reference_app/models/portrait-world",
        help="pipeline directory to write; the early copy goes to OUT-early (default: the committed one)",
    )
    train.add_argument("--resume", action="store_true", help="continue from OUT.checkpoint/state.pt")
    train.add_argument("--seed", type=int, default=0, help="seed of the world drawn and of training (default 0)")
    train.add_argument("--images", type=int, help="portraits drawn to train on (default: as for the committed model)")
    train.set_defaults(func=cmd_train_reference)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if isinstance(getattr(args, "json", None), str) and (problem := json_output_problem(args.json)):
        command = " ".join(word for word in (args.command, getattr(args, "bench_command", None)) if word)
        print(f"imagejourney {command}: {problem}", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
