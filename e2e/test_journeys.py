"""One test per (journey, prompt): `-k fisherman` and `--junitxml` work as usual."""

from journeys.runner import JourneyRunner, install_probe


def test_journey(page, target, run_dir, ui_profile, journey_case, pytestconfig, first_attempt):
    pack, prompt = journey_case
    last = first_attempt + pytestconfig.getoption("--retries")
    for attempt in range(first_attempt, last + 1):  # a retry starts on a fresh page; every attempt is kept
        if attempt > first_attempt:
            page = page.context.new_page()
        install_probe(page, ui_profile.output, ui_profile.final_image)
        runner = JourneyRunner(page, base_url=target.url, profile=ui_profile, pack=pack, prompt=prompt, run=run_dir,
                               tracing=pytestconfig.ij_tracing, attempt=attempt)
        failures = runner.run()
        if not failures:
            break
    assert not failures, "; ".join(
        f"step {f.step_index} ({f.action}) failed: {f.error} [screenshot: {run_dir.path / f.screenshot if f.screenshot else 'none'}; "
        f"trace: {run_dir.traces / (prompt.id + '.zip')}]"
        for f in failures
    )
