"""pytest entry: `pytest e2e/ --journey portrait [--journey stylized] [--target NAME]`.

Thin on purpose: options, fixtures and hooks that hand pytest-playwright's browser to the
journey runner (journeys/) and render the reports (reports/) when the session ends.
pytest-playwright's own options work as usual; its artifacts (--screenshot, --video) go to the
run directory, and --tracing decides which of imagejourney's per-journey traces are kept.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from imagejourney.journeys.browser import (
    ONLY_CHROMIUM,
    NoBrowser,
    RemoteBrowser,
    chromium_launch_args,
    did_not_start,
    video_recorder_missing,
)
from imagejourney.journeys.browser import (
    open_browser as open_one,
)
from imagejourney.journeys.config import load_config, resolve_target
from imagejourney.journeys.manifest import build_manifest
from imagejourney.journeys.pack import load_pack
from imagejourney.journeys.plan import parse_creators, parse_shard, shard_of
from imagejourney.journeys.product_api import fetch_about
from imagejourney.journeys.profile import check_compatible, load_profile
from imagejourney.journeys.rundir import RunDirectory
from imagejourney.journeys.target import ReferenceApp, RemoteTarget, TargetUnavailable
from imagejourney.journeys.yaml_reader import ConfigError
from imagejourney.reports.compare import CompareError, resolve_side
from imagejourney.reports.history import HistoryStore, StoreError
from imagejourney.reports.judges import LPIPS_NETS, judge_run
from imagejourney.reports.records import RunDirError, read_records
from imagejourney.reports.render import render_report
from imagejourney.reports.run import load_run
from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    group = parser.getgroup("imagejourney")
    group.addoption("--journey", action="append", help="journey pack: a built-in name or a YAML path (repeatable)")
    group.addoption("--target", help="a target from playwright.config.py (default: reference)")
    group.addoption(
        "--ui-profile", help="UI profile (built-in name or YAML path) for --base-url or to override a target's"
    )
    group.addoption("--results-dir", help="where run directories go (default: journey-results/)")
    group.addoption("--lpips-net", default="alex", help="LPIPS network for the judges: alex (default), vgg, squeeze")
    group.addoption(
        "--clip-model",
        help="CLIP model for the clip_score judge: a local directory or a Hub id (cached, else downloaded)",
    )
    group.addoption(
        "--gpu-hour-usd", type=float, help="GPU price per hour for cost per usable image (overrides the target's)"
    )
    group.addoption(
        "--baseline",
        help="a baseline run directory, or a store reference (run id, last, last-passing, "
        "pinned): compare with it; exit 1 when a metric is slower or quality is worse",
    )
    group.addoption("--app-args", help='options for the bundled reference app, e.g. "--fault-latency-ms 200"')
    group.addoption(
        "--retries",
        type=int,
        default=0,
        help="re-run a journey run with a failed step up to N times; one that then passes is reported flaky",
    )
    group.addoption(
        "--resume",
        help="a run directory left by a stopped run: run only its journey runs that did not "
        "finish, into the same directory",
    )
    group.addoption(
        "--shard",
        help="I/N: run only this deterministic share of each pack's journey runs "
        "(`imagejourney merge` joins the shards' run directories)",
    )
    group.addoption(
        "--store",
        help="history store URL for a --baseline reference (default: IMAGEJOURNEY_STORE or "
        "sqlite:///journey-results/history.db)",
    )
    group.addoption(
        "--min-effect", type=float, default=5.0, help="smallest change in percent called slower (default 5)"
    )
    group.addoption(
        "--creators",
        help="N, or N1,N2,… for a sweep: that many creators walk the pack at once, each in "
        "its own browser context (the report gains a load section)",
    )
    group.addoption(
        "--ramp-s", type=float, default=0.0, help="start the creators evenly over this many seconds (default 0)"
    )
    group.addoption(
        "--load-time-limit-s",
        type=float,
        default=600.0,
        help="under --creators, start no journey run after this many seconds of a level (default 600)",
    )
    group.addoption(
        "--browser-ws",
        help="connect to a Playwright browser server (ws://HOST:PORT/…) instead of launching Chromium here",
    )
    group.addoption(
        "--cdp", help="connect to a Chromium with remote debugging (http://HOST:PORT) instead of launching one here"
    )


def pytest_configure(config):
    try:
        settings = load_config(ROOT / "playwright.config.py")
        if any(name != "chromium" for name in config.getoption("--browser") or []):
            raise ConfigError(ONLY_CHROMIUM)
        if config.getoption("--lpips-net") not in LPIPS_NETS:
            raise ConfigError(
                f"unknown LPIPS network '{config.getoption('--lpips-net')}'; use --lpips-net {'|'.join(LPIPS_NETS)}"
            )
        baseline = config.getoption("--baseline")
        if baseline:
            try:
                if "/" in baseline or Path(baseline).exists():
                    load_run(Path(baseline))
                else:
                    HistoryStore(config.getoption("--store"))  # an unreachable store is said now, before the run
            except (RunDirError, StoreError) as exc:
                raise ConfigError(f"--baseline: {exc}") from None
        if config.getoption("--retries") < 0:
            raise ConfigError(f"--retries must be 0 or more, not {config.getoption('--retries')}")
        config.ij_remote = RemoteBrowser.from_options(config.getoption("--browser-ws"), config.getoption("--cdp"))
        config.ij_load = None
        if config.getoption("--creators"):
            config.ij_load = parse_creators(
                config.getoption("--creators"), config.getoption("--ramp-s"), config.getoption("--load-time-limit-s")
            )
            if config.getoption("--resume"):
                raise ConfigError("--resume continues a run of single journeys; a --creators run is started afresh")
        packs = [load_pack(name) for name in config.getoption("--journey") or ["portrait"]]
        if config.getoption("--shard"):
            index, count = parse_shard(config.getoption("--shard"))
            packs = [shard_of(pack, index, count) for pack in packs]
        config.ij_resume = (
            read_resume(Path(config.getoption("--resume")), packs) if config.getoption("--resume") else None
        )
        target = resolve_target(
            settings, config.getoption("--target"), config.getoption("base_url"), config.getoption("--ui-profile")
        )
        if config.getoption("--app-args") and not target.started_here:
            raise ConfigError("--app-args sets options of the bundled reference app, which this target does not start")
        profile = load_profile(target.ui_profile)
        for pack in packs:
            check_compatible(pack, profile)
        if config.getoption("--video") != "off" and profile.login and "fill" in profile.login:
            raise ConfigError(
                f"--video would record the login form of the UI profile '{profile.name}' as its credentials are typed; "
                "log in with `login: {storage_state: FILE}` instead, or run without --video"
            )
        if config.getoption("--video") != "off":
            browsers = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
            problem = video_recorder_missing(browsers)
            if problem:
                raise ConfigError(problem)
        storage_state = profile.login and profile.login.get("storage_state")
        if storage_state and not (Path(profile.source).parent / storage_state).is_file():
            raise ConfigError(
                f"the login storage state {storage_state} (relative to {profile.source}) does not exist; "
                "save one with `playwright codegen --save-storage=FILE URL`"
            )
    except ConfigError as exc:
        pytest.exit(str(exc), returncode=2)  # bad input: one sentence, exit 2 (README, "Exit codes")
    config.ij_settings, config.ij_packs, config.ij_target, config.ij_profile = settings, packs, target, profile
    # imagejourney records one trace per journey run into the run directory (grouped by step);
    # pytest-playwright's own tracing is switched off so the two do not clash.
    config.ij_tracing = config.getoption("--tracing")
    config.option.tracing = "off"
    config.ij_reports, config.ij_breaches, config.ij_regressions, config.ij_notes = [], [], [], []


def read_resume(path: Path, packs) -> dict:
    """What a stopped run left: its pack, and which journey runs finished (those are kept)."""
    try:
        records = read_records(path)
    except RunDirError as exc:
        raise ConfigError(f"--resume: {exc}") from None
    name = records.manifest["journey"]["name"]
    if [pack.name for pack in packs] != [name]:
        raise ConfigError(f"--resume {path} continues the journey '{name}'; pass --journey with that pack and no other")
    started = [e for e in records.events if e.get("event") == "journey_started"]
    return {
        "run": RunDirectory(path),
        "manifest": records.manifest,
        "journey": name,
        "finished": {str(e.get("prompt_id")) for e in records.events if e.get("event") == "journey_finished"},
        "attempts": {str(e.get("prompt_id")): int(e.get("attempt") or 1) for e in started},
    }


def pytest_generate_tests(metafunc):
    load = metafunc.config.ij_load
    if "load_case" in metafunc.fixturenames:
        cases = [(pack, creators) for pack in metafunc.config.ij_packs for creators in (load.levels if load else ())]
        metafunc.parametrize("load_case", cases, ids=[f"{pack.name}-{n}creators" for pack, n in cases])
    if "journey_case" in metafunc.fixturenames:
        if load:
            metafunc.parametrize("journey_case", [])
            return
        resume = metafunc.config.ij_resume
        cases = [
            (pack, prompt)
            for pack in metafunc.config.ij_packs
            for prompt in pack.prompts
            if not (resume and pack.name == resume["journey"] and prompt.id in resume["finished"])
        ]
        metafunc.parametrize("journey_case", cases, ids=[f"{pack.name}-{prompt.id}" for pack, prompt in cases])


def pytest_collection_modifyitems(config, items):
    """Under --creators only the load tests run, otherwise only the single journeys: the other
    kind is deselected, not shown as skipped."""
    wanted = "load_case" if config.ij_load else "journey_case"
    other = [
        item
        for item in items
        if "load_case" in getattr(item, "fixturenames", ()) or "journey_case" in getattr(item, "fixturenames", ())
    ]
    dropped = [item for item in other if wanted not in item.fixturenames]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
        config.ij_deselected_why = (
            "the load test runs only with --creators"
            if not config.ij_load
            else "single journeys do not run under --creators"
        )


def pytest_report_collectionfinish(config, items):
    """Say why pytest's "N deselected" is there."""
    why = getattr(config, "ij_deselected_why", None)
    return f"imagejourney: deselected: {why}" if why else None


@pytest.fixture(scope="session")
def ui_profile(pytestconfig):
    return pytestconfig.ij_profile


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, browser_type, browser_channel, pytestconfig):
    """Add imagejourney's Chromium flags; use the system Chromium when Playwright's is missing
    (a remote browser gets the flags only: its machine has its own Chromium)."""
    pytestconfig.ij_browser_source = browser_channel or "playwright"
    if browser_channel:
        return browser_type_launch_args
    if pytestconfig.ij_remote:
        pytestconfig.ij_browser_source = pytestconfig.ij_remote.source
        return {
            **browser_type_launch_args,
            "args": [*browser_type_launch_args.get("args", []), *pytestconfig.ij_settings["BROWSER"]["args"]],
        }
    try:
        args, pytestconfig.ij_browser_source = chromium_launch_args(
            browser_type_launch_args, browser_type.executable_path, pytestconfig.ij_settings["BROWSER"]["args"]
        )
    except NoBrowser as exc:
        pytest.exit(str(exc), returncode=4)
    return args


@pytest.fixture(scope="session")
def browser(launch_browser, browser_type, browser_type_launch_args, pytestconfig):
    """pytest-playwright's browser, or one on another machine (--browser-ws, --cdp)."""
    remote = pytestconfig.ij_remote
    try:
        browser = remote.connect(browser_type, browser_type_launch_args) if remote else launch_browser()
    except PlaywrightError as exc:  # Chromium exited while launching
        pytest.exit(str(did_not_start(exc, browser_type_launch_args)), returncode=4)
    except NoBrowser as exc:
        pytest.exit(str(exc), returncode=4)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def open_browser(browser_type_launch_args, pytestconfig):
    """For creators (--creators): opens one more browser in the calling thread's Playwright,
    the same way as the session's browser."""
    return lambda playwright: open_one(playwright, browser_type_launch_args, pytestconfig.ij_remote)


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, pytestconfig, ui_profile):
    args = {
        **browser_context_args,
        "viewport": pytestconfig.ij_settings["BROWSER"]["viewport"],
        "accept_downloads": True,
    }
    if ui_profile.login and "storage_state" in ui_profile.login:
        args["storage_state"] = str(Path(ui_profile.source).parent / ui_profile.login["storage_state"])
    return args


@pytest.fixture(scope="session")
def target(pytestconfig, tmp_path_factory):
    """The running product: the reference app started here, or a URL that must answer."""
    spec = pytestconfig.ij_target
    try:
        if not spec.started_here:
            yield RemoteTarget.check(spec.url)
            return
        app_args = (*spec.app_args, *shlex.split(pytestconfig.getoption("--app-args") or ""))
        with ReferenceApp(
            spec.model, tmp_path_factory.mktemp("reference-app") / "reference-app.log", extra_args=app_args
        ) as app:
            yield app
    except TargetUnavailable as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
def run_dirs(pytestconfig, browser, target, ui_profile):
    """One run directory per journey pack, made when its first test starts; each gets its
    report when the session ends."""
    results = Path(pytestconfig.getoption("--results-dir") or ROOT / pytestconfig.ij_settings["RESULTS_DIR"])
    browser_info = {
        "name": browser.browser_type.name,
        "version": browser.version,
        "source": pytestconfig.ij_browser_source,
        "viewport": pytestconfig.ij_settings["BROWSER"]["viewport"],
    }
    made: dict[str, RunDirectory] = {}

    def run_dir_for(pack) -> RunDirectory:
        if pack.name not in made:
            manifest = build_manifest(
                pack=pack,
                profile=ui_profile,
                target_name=pytestconfig.ij_target.name,
                target_url=target.url,
                app_info=target.info,
                browser=browser_info,
                tracing=pytestconfig.ij_tracing,
                repo=ROOT,
                cost=pytestconfig.ij_target.cost,
                started_here=pytestconfig.ij_target.started_here,
                shard=pytestconfig.getoption("--shard"),
                load=pytestconfig.ij_load,
                product=fetch_about(target.url, ui_profile.about),
            )
            resume = pytestconfig.ij_resume
            if resume and resume["journey"] == pack.name:
                if manifest["config_hash"] != resume["manifest"]["config_hash"]:
                    pytest.exit(
                        f"--resume: {resume['run'].path} was recorded with config hash "
                        f"{resume['manifest']['config_hash']}, this session's is {manifest['config_hash']} (the "
                        "journey, UI profile, target, model or browser differ); resume with the same settings",
                        returncode=2,
                    )
                made[pack.name] = resume["run"]
                resume["run"].event("run_resumed", finished_before=sorted(resume["finished"]))
            else:
                made[pack.name] = RunDirectory.create(results, manifest)
        return made[pack.name]

    yield run_dir_for
    for run in made.values():
        finish_run(pytestconfig, run, target.log_path)


def finish_run(pytestconfig, run: RunDirectory, app_log: Path | None) -> None:
    """Close the record, judge the finals and write summary.json and the report."""
    run.event("run_finished")
    if app_log:
        shutil.copy(app_log, run.path / "reference-app.log")
    baseline = None
    if pytestconfig.getoption("--baseline"):
        manifest = json.loads((run.path / "manifest.json").read_text())
        try:
            baseline = resolve_side(
                pytestconfig.getoption("--baseline"),
                pytestconfig.getoption("--store"),
                journey=manifest["journey"]["name"],
                exclude=manifest["run_id"],
            )
        except CompareError as exc:  # the run is recorded and its report still written, without the comparison
            pytestconfig.ij_notes.append(f"not compared with the baseline: {exc}")
    # Judges run after the browser work, never inside a timed action.
    judge_run(
        run.path,
        pytestconfig.getoption("--lpips-net"),
        pytestconfig.getoption("--clip-model"),
        baseline.runs[-1].path if baseline else None,
    )
    report, breaches = render_report(
        run.path, pytestconfig.getoption("--gpu-hour-usd"), baseline, min_effect=pytestconfig.getoption("--min-effect")
    )
    pytestconfig.ij_reports.append(report)
    pytestconfig.ij_breaches.extend(breaches)
    if baseline:
        comparison = json.loads((run.path / "summary.json").read_text())["comparison"]
        pytestconfig.ij_regressions.extend(
            f"{metric} slower than baseline ({run.path.name})" for metric in comparison["regressions"]
        )
        pytestconfig.ij_regressions.extend(
            f"{metric} worse than baseline ({run.path.name})" for metric in comparison.get("quality_regressions", [])
        )


@pytest.fixture
def run_dir(run_dirs, journey_case):
    return run_dirs(journey_case[0])


@pytest.fixture
def first_attempt(pytestconfig, journey_case) -> int:
    """1; when resuming, one more than the attempts the stopped run made of this journey run."""
    resume = pytestconfig.ij_resume
    if resume and resume["journey"] == journey_case[0].name:
        return resume["attempts"].get(journey_case[1].id, 0) + 1
    return 1


@pytest.fixture
def output_path(run_dir, journey_case):
    """pytest-playwright's artifacts (--screenshot, --video) go to the run directory."""
    return str(run_dir.path / "playwright" / journey_case[1].id)


def pytest_sessionfinish(session):
    config = session.config
    resume = getattr(config, "ij_resume", None)
    if resume and session.testscollected == 0:  # every journey run had finished before the stop
        if not read_records(resume["run"].path).complete:
            finish_run(config, resume["run"], None)  # only the record was left open
        config.ij_notes.append(f"nothing to resume: every journey run of {resume['run'].path} had finished")
        session.exitstatus = 0
    if (config.ij_breaches or config.ij_regressions) and session.exitstatus == 0:
        session.exitstatus = 1  # a breached budget or a regression fails the job (nightly CI)


def pytest_unconfigure(config):
    """Print breached budgets and the report paths as the very last lines of the session."""
    for breach in getattr(config, "ij_breaches", []):
        sys.stdout.write(f"\nbudget breached: {breach}")
    for regression in getattr(config, "ij_regressions", []):
        sys.stdout.write(f"\nregression: {regression}")
    for note in getattr(config, "ij_notes", []):
        sys.stdout.write(f"\nimagejourney: {note}")
    for report in getattr(config, "ij_reports", []):
        sys.stdout.write(f"\nimagejourney report: {report}")
    if getattr(config, "ij_reports", None):
        sys.stdout.write("\n")
