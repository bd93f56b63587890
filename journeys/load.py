"""Many creators at once (`--creators N`): how the product feels under load.

Each creator is one simulated person: its own thread, its own Playwright, its own browser
(launched here, or a connection to a remote one) and its own context (cookies, session). At
a level of N creators, all N browsers are opened first; then creator k starts at
(k − 1) × ramp / N seconds and walks every journey run of the pack once, in order, with the
same runner as a single journey (journeys/runner.py): the timing stays in each page, on its
own browser's clocks. A level is bounded in count (each journey run once per creator) and in
time (no journey run starts after the time limit; those are recorded as skipped).

The runner records; the audit (reports/audits/load.py) turns the events into throughput,
click-to-final by the number of creators active at the click, queue wait and errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from .pack import JourneyPack
from .plan import Creator, LoadPlan, journey_run_id
from .profile import UIProfile
from .rundir import RunDirectory
from .runner import first_line, install_probe, run_journey

SETUP_TIMEOUT_S = 180  # for every creator's browser to open before the level starts


def run_level(
    creators: int,
    *,
    plan: LoadPlan,
    pack: JourneyPack,
    profile: UIProfile,
    base_url: str,
    run: RunDirectory,
    open_browser: Callable[[Playwright], Browser],
    context_args: dict,
    tracing: str = "off",
    retries: int = 0,
    on_start: Callable[[], None] | None = None,
    on_walked: Callable[[Page, Creator], None] | None = None,
) -> list[str]:
    """Walk the pack with `creators` creators at once; returns one line per failed step.
    `on_start` runs once every browser is open, `on_walked` with each creator's page after its
    walk (`imagejourney bench overhead` reads the page's own record there)."""
    failures: list[str] = []
    started = {}

    def level_starts() -> None:  # once every creator's browser is open (or has failed to open)
        started["at"] = time.monotonic()
        if on_start:
            on_start()
        run.event("load_level_started", creators=creators, ramp_s=plan.ramp_s, time_limit_s=plan.time_limit_s)

    ready = threading.Barrier(creators, action=level_starts, timeout=SETUP_TIMEOUT_S)

    def fail(index: int, what: str, exc: BaseException) -> None:
        run.event("creator_failed", creators=creators, creator=index, error=f"{what}: {first_line(exc)}")
        failures.append(f"creator {index} of {creators}: {what}: {first_line(exc)}")

    def creator_thread(index: int) -> None:
        creator = Creator(creators, index)
        page = None
        try:
            with sync_playwright() as playwright:
                try:
                    page = open_browser(playwright).new_context(**context_args).new_page()
                    install_probe(page, profile.output, profile.final_image, profile.preview_image)
                except Exception as exc:  # noqa: BLE001 - recorded: a creator without a browser is an error under load
                    fail(index, "could not open its browser", exc)
                if wait_for_all(index) and page is not None:
                    walk(index, creator, page)
        except Exception as exc:  # noqa: BLE001 - recorded: Playwright could not start in this thread, or stop
            fail(index, "could not start Playwright" if page is None else "stopped", exc)
            if page is None:
                wait_for_all(index)  # its place at the start line, so the other creators are not held

    def wait_for_all(index: int) -> bool:
        try:
            ready.wait()
            return True
        except threading.BrokenBarrierError:
            failures.append(
                f"creator {index} of {creators}: the creators' browsers did not all open within {SETUP_TIMEOUT_S} s"
            )
            return False

    def walk(index: int, creator: Creator, page: Page) -> None:
        time.sleep((index - 1) * plan.ramp_s / creators)
        run.event("creator_started", creators=creators, creator=index)
        try:
            for prompt in pack.prompts:
                name = journey_run_id(prompt.id, creator)
                if time.monotonic() - started["at"] > plan.time_limit_s:
                    run.event(
                        "journey_skipped",
                        prompt_id=name,
                        creators=creators,
                        creator=index,
                        reason=f"the load time limit ({plan.time_limit_s:g} s) had passed",
                    )
                    continue
                for f in run_journey(
                    page,
                    base_url=base_url,
                    profile=profile,
                    pack=pack,
                    prompt=prompt,
                    run=run,
                    tracing=tracing,
                    retries=retries,
                    creator=creator,
                ):
                    failures.append(f"creator {index}: {name} step {f.step_index} ({f.action}): {f.error}")
            if on_walked:
                on_walked(page, creator)
        except Exception as exc:  # noqa: BLE001 - recorded: e.g. its browser crashed or the connection dropped
            fail(index, "stopped", exc)
        run.event("creator_finished", creators=creators, creator=index)
        browser = page.context.browser
        assert browser is not None, "the page's context was made by Browser.new_context"
        browser.close()

    threads = [
        threading.Thread(target=creator_thread, args=(index,), name=f"creator-{index}")
        for index in range(1, creators + 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.event("load_level_finished", creators=creators)
    return failures
