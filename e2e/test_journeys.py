"""One test per (journey, prompt): `-k fisherman` and `--junitxml` work as usual."""

from journeys.runner import JourneyRunner, install_probe


def test_journey(page, target, journey_run, journey_pack, ui_profile, journey_prompt):
    install_probe(page, ui_profile)
    runner = JourneyRunner(
        page, base_url=target.url, profile=ui_profile, pack=journey_pack, prompt=journey_prompt, run=journey_run
    )
    failures = runner.run()
    assert not failures, "; ".join(
        f"step {f.step_index} ({f.action}) failed: {f.error} [screenshot: {f.screenshot}, run: {journey_run.path}]"
        for f in failures
    )
