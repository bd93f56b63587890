"""pytest entry: `pytest e2e/ --journey portrait [--target NAME]`.

Thin on purpose: options, fixtures and hooks that hand pytest-playwright's browser to the
journey runner (journeys/) and render the report (reports/) when the session ends.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from journeys.browser import NoBrowser, resolve_chromium
from journeys.config import load_config, resolve_target
from journeys.manifest import build_manifest
from journeys.pack import ConfigError, load_pack, load_profile
from journeys.rundir import RunDirectory
from journeys.target import ReferenceApp, TargetUnavailable
from reports.render import render_report

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    group = parser.getgroup("imagejourney")
    group.addoption("--journey", default="portrait", help="journey pack: a built-in name or a YAML path")
    group.addoption("--target", default=None, help="a target from playwright.config.py (default: reference)")
    group.addoption("--results-dir", default=None, help="where run directories go (default: journey-results/)")


def pytest_configure(config):
    try:
        settings = load_config(ROOT / "playwright.config.py")
        config.ij_settings = settings
        config.ij_pack = load_pack(config.getoption("--journey"))
        config.ij_target_name, config.ij_target = resolve_target(settings, config.getoption("--target"))
        config.ij_profile = load_profile(config.ij_target["ui_profile"])
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.ij_report = None


def pytest_generate_tests(metafunc):
    if "journey_prompt" in metafunc.fixturenames:
        pack = metafunc.config.ij_pack
        metafunc.parametrize("journey_prompt", pack.prompts, ids=[f"{pack.name}-{p.id}" for p in pack.prompts])


@pytest.fixture(scope="session")
def journey_pack(pytestconfig):
    return pytestconfig.ij_pack


@pytest.fixture(scope="session")
def ui_profile(pytestconfig):
    return pytestconfig.ij_profile


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, browser_type, browser_channel, pytestconfig):
    """Add imagejourney's Chromium flags; use the system Chromium when Playwright's is missing."""
    args = dict(browser_type_launch_args)
    pytestconfig.ij_browser_source = browser_channel or "playwright"
    if browser_type.name == "chromium" and not browser_channel:
        args["args"] = [*args.get("args", []), *pytestconfig.ij_settings["BROWSER"]["args"]]
        try:
            executable, pytestconfig.ij_browser_source = resolve_chromium(browser_type.executable_path)
        except NoBrowser as exc:
            pytest.exit(str(exc), returncode=4)
        if executable:
            args["executable_path"] = executable
    return args


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, pytestconfig):
    return {**browser_context_args, "viewport": pytestconfig.ij_settings["BROWSER"]["viewport"], "accept_downloads": True}


@pytest.fixture(scope="session")
def target(pytestconfig, tmp_path_factory):
    """The running product: the bundled reference app on a free local port."""
    log = tmp_path_factory.mktemp("reference-app") / "reference-app.log"
    try:
        with ReferenceApp(pytestconfig.ij_target.get("model", "tiny"), log) as app:
            yield app
    except TargetUnavailable as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
def journey_run(pytestconfig, browser, target, journey_pack, ui_profile):
    """The run directory for this session; the report is rendered from it at the end."""
    results = Path(pytestconfig.getoption("--results-dir") or ROOT / pytestconfig.ij_settings["RESULTS_DIR"])
    manifest = build_manifest(
        pack=journey_pack,
        profile=ui_profile,
        target_name=pytestconfig.ij_target_name,
        target_url=target.url,
        app_info=target.info,
        browser={
            "name": browser.browser_type.name,
            "version": browser.version,
            "source": pytestconfig.ij_browser_source,
            "viewport": pytestconfig.ij_settings["BROWSER"]["viewport"],
        },
        repo=ROOT,
    )
    run = RunDirectory.create(results, manifest)
    yield run
    run.event("run_finished")
    shutil.copy(target.log_path, run.path / "reference-app.log")
    pytestconfig.ij_report = render_report(run.path)


def pytest_unconfigure(config):
    """Print the report path as the very last line of the session."""
    if getattr(config, "ij_report", None):
        sys.stdout.write(f"\nimagejourney report: {config.ij_report}\n")
