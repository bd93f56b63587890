"""One test per (journey, prompt): `-k fisherman` and `--junitxml` work as usual."""

from journeys.runner import JourneyRunner, install_probe


def test_journey(page, target, run_dir, ui_profile, journey_case, pytestconfig):
    pack, prompt = journey_case
    install_probe(page, ui_profile.output, ui_profile.final_image)
    runner = JourneyRunner(page, base_url=target.url, profile=ui_profile, pack=pack, prompt=prompt, run=run_dir,
                           tracing=pytestconfig.ij_tracing)
    failures = runner.run()
    assert not failures, "; ".join(
        f"step {f.step_index} ({f.action}) failed: {f.error} [screenshot: {run_dir.path / f.screenshot if f.screenshot else 'none'}; "
        f"trace: {run_dir.traces / (prompt.id + '.zip')}]"
        for f in failures
    )
