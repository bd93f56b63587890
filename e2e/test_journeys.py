"""One test per (journey, prompt): `-k fisherman` and `--junitxml` work as usual. Under
`--creators N`, one test per (journey, N) instead: N creators walk the pack at once."""

from imagejourney.journeys.load import run_level
from imagejourney.journeys.runner import describe_failures, install_probe, run_journey


def test_journey(page, target, run_dir, ui_profile, journey_case, pytestconfig, first_attempt):
    pack, prompt = journey_case
    install_probe(page, ui_profile.output, ui_profile.final_image, ui_profile.preview_image)
    failures = run_journey(
        page,
        base_url=target.url,
        profile=ui_profile,
        pack=pack,
        prompt=prompt,
        run=run_dir,
        tracing=pytestconfig.ij_tracing,
        first_attempt=first_attempt,
        retries=pytestconfig.getoption("--retries"),
    )
    assert not failures, describe_failures(failures, run_dir, prompt.id)


def test_creators(load_case, target, run_dirs, ui_profile, pytestconfig, open_browser, browser_context_args):
    pack, creators = load_case
    failures = run_level(
        creators,
        plan=pytestconfig.ij_load,
        pack=pack,
        profile=ui_profile,
        base_url=target.url,
        run=run_dirs(pack),
        open_browser=open_browser,
        context_args=browser_context_args,
        tracing=pytestconfig.ij_tracing,
        retries=pytestconfig.getoption("--retries"),
    )
    assert not failures, f"{len(failures)} failed under load with {creators} creators: " + "; ".join(failures[:10])
