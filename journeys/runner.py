"""Drive one journey run (one prompt of a pack) through a product UI with Playwright.

Each timed action is three round trips to the page: tell the probe which control to watch
(`prepare`) → click it (a real, trusted input event) → wait until the profile's done condition
holds and a new final image is shown (`whenShown`). The final's paint time comes with Element
Timing's entry, which Chromium delivers about a frame after the paint; meanwhile the action is
"unsettled" and the runner saves the final, reads the seed and the server's times. The next
action's `prepare` waits in the page until the entry has come and hands the record (click,
paints) over: the raw record is appended to events.jsonl, in step order, right after that
action's click (the click goes first: it is on the path from the paint). So the harness
never acts on the page before the last final's frame is on screen (acting sooner delayed
that frame by one more on a busy machine: see "What the harness costs" in the README).
Before any other event, and at the end of the journey run, the runner waits for unsettled
actions (`settle`). (`imagejourney bench overhead` measures what this costs per step.)
Actions timed from screencast frames wait for their frames (`whenDone`). A failed step is
recorded with a screenshot and the journey goes on with the next step. Nothing here computes
a metric: the audit (reports/) does, from events.jsonl, so a corrected rule applies to old
runs too.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .operations import Operation, OperationFailed, perform
from .pack import JourneyPack, Prompt, Step
from .plan import Creator, journey_run_id
from .product_api import ServerWatch
from .profile import UIProfile
from .redact import redact_trace, redact_url
from .rundir import RunDirectory, UnsafePath
from .screencast import OutputRegionFrames, screencast_record

PROBE_SOURCE = (Path(__file__).parent / "probe.js").read_text()

CANVAS_AS_BASE64 = """() => {
  const canvas = window.__imagejourney.regionCanvases().pop();
  return canvas ? canvas.toDataURL("image/png").split(",")[1] : null;
}"""
FETCH_AS_BASE64 = """async (url) => {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}"""


PREVIEWS_KEPT = 12  # per action, evenly spread over the previews painted
PREVIEW_SIDE = 256  # px, the long side of a kept preview
IMAGE_STEPS = ("generate", "reroll", "edit", "repeat")
PAGE_RELOADED = "the page was reloaded before the paint of its final image was seen"


class StepFailed(Exception):
    """The product did not complete a step; the message says what was seen."""


class ActionStalled(StepFailed):
    """The action was clicked but not done in time, or the UI said it failed: the page may still
    be busy with it (a Gradio tab ignores clicks while an event is pending), so the runner
    recovers. (A control that could not be clicked started nothing: no recovery, the page keeps
    what it shows.)"""


class RecoveryFailed(StepFailed):
    """Recovering after a failed step did not work: the journey run ends."""


@dataclass
class Failure:
    step_index: int
    action: str
    error: str
    screenshot: str | None


@dataclass
class Unsettled:
    """An image action whose final is shown and saved, waiting for the final's paint: its
    `action` event, less the probe's record and the previews, which come with the paint."""

    index: int
    action: str
    event: dict


@dataclass
class Prepared:
    """What the probe's prepare said about an action about to start: its control, how its
    paints are watched, where a click on the control lands, and what settled meanwhile."""

    control: str
    watch: str
    point: dict
    settled: list[dict]


def install_probe(page: Page, output: str, final_image: str = "img", preview_image: str = "img") -> None:
    """Add the timing probe to every document the page loads, watching the `output` region:
    its `final_image` and `preview_image` elements (selectors inside it) can be this action's
    final and previews; other images there (a gallery) never are."""
    config = {"output": output, "final_image": final_image, "preview_image": preview_image}
    page.add_init_script(f"{PROBE_SOURCE}({json.dumps(config)});")


class JourneyRunner:
    def __init__(
        self,
        page: Page,
        *,
        base_url: str,
        profile: UIProfile,
        pack: JourneyPack,
        prompt: Prompt,
        run: RunDirectory,
        tracing: str = "off",
        attempt: int = 1,
        creator: Creator | None = None,
    ):
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + profile.path
        self.profile = profile
        self.pack = pack
        self.prompt = prompt
        self.creator = creator  # under load (--creators): which creator walks this journey run
        self.journey_run = journey_run_id(prompt.id, creator)
        self.run_dir = run
        self.tracing = tracing  # on | off | retain-on-failure
        self.attempt = attempt  # 2, 3 …: a retry, or a resume after the run was stopped
        self.timeout_ms = pack.action_timeout_s * 1000
        self.failures: list[Failure] = []
        self.unsettled: Unsettled | None = None  # at most one: the next prepare waits for its paint
        self.last_generated: tuple[int, int | None] | None = None  # (step index, seed) of the last generate/reroll
        self.server_watch = ServerWatch(page, profile.server_timings)  # the job's answer and frames, per action

    def run(self) -> list[Failure]:
        self.run_dir.event(
            "journey_started",
            journey=self.pack.name,
            prompt_id=self.journey_run,
            attempt=self.attempt,
            url=self.redact(self.url),
        )
        try:
            self.log_in()  # before tracing starts: typed credentials never reach a trace
        except (StepFailed, PlaywrightError) as exc:
            self.clear_login_form()
            self.fail(-1, "login", first_line(exc))
            return self.failures
        if self.tracing != "off":
            # DOM snapshots only: the screencast behind trace screenshots competes with the page
            # for CPU and slowed click-to-final by 190–250 ms on a 2-core machine (snapshots: 40–85 ms).
            self.page.context.tracing.start(
                title=f"{self.pack.name} · {self.journey_run}", screenshots=False, snapshots=True
            )
        try:
            self.open()
            for index, step in enumerate(self.pack.steps):
                if index and self.pack.think_time_ms:
                    self.page.wait_for_timeout(self.pack.think_time_ms)
                with self.trace_group(f"step {index}: {step.kind}"):
                    try:
                        self.do_step(index, step)
                    except ActionStalled as exc:  # the step fails; the page is made usable, the journey goes on
                        self.fail(index, step.kind, first_line(exc))
                        try:
                            self.recover(index)
                        except RecoveryFailed as ended:
                            self.fail(index, "recover", str(ended))
                            break
                    except (StepFailed, PlaywrightError, UnsafePath) as exc:  # the step fails; the journey goes on
                        self.fail(index, step.kind, first_line(exc))
        except (StepFailed, PlaywrightError) as exc:
            self.fail(-1, "open", first_line(exc))
        finally:
            self.settle()
            self.finish_trace()
        self.run_dir.event(
            "journey_finished", prompt_id=self.journey_run, attempt=self.attempt, failures=len(self.failures)
        )
        return self.failures

    def log_in(self) -> None:
        if log_in(self.page, self.base_url, self.profile):
            self.run_dir.event("logged_in", prompt_id=self.journey_run)

    def clear_login_form(self) -> None:
        """Empty the login form's fields, so the failure screenshot shows no typed secret."""
        for selector in (self.profile.login or {}).get("fill", {}):
            try:
                self.page.fill(selector, "", timeout=2_000)
            except PlaywrightError:
                pass

    def known_secrets(self) -> tuple[str, ...]:
        """Values no kept file may hold: the typed login credentials and every cookie value."""
        typed = [os.environ.get(v.removeprefix("$"), "") for v in (self.profile.login or {}).get("fill", {}).values()]
        return tuple(typed + [cookie["value"] for cookie in self.page.context.cookies()])

    def redact(self, url: str) -> str:
        return redact_url(url, tuple(self.profile.keep_query))

    def recover(self, index: int) -> None:
        """After a stalled or failed action, make the page usable before the next step, as a
        creator would: the profile's cancel control, else reload the page, log in again if it
        asks, do the open: steps and enter the journey's prompt and settings again. Recorded as
        a `recovered` event with how long it took; no action's time includes it."""
        started = time.monotonic()
        how = "cancel" if self.profile.cancel else "reload"
        restored = None
        try:
            if self.profile.cancel:
                self.page.locator(self.profile.cancel).first.click(timeout=10_000)
                self.wait_until_enabled(self.profile.controls["generate"])
            else:
                for attempt in (1, 2):  # making the image again may stall too: reload and try once more
                    self.open(again=True)
                    self.enter_prompt()
                    try:
                        restored = self.restore_image(index)
                        break
                    except StepFailed:
                        if attempt == 2:
                            raise
        except (StepFailed, PlaywrightError) as exc:
            raise RecoveryFailed(
                f"the journey run ended after step {index} failed: recovering by {how} did not work ({first_line(exc)})"
            ) from None
        self.run_dir.event(
            "recovered",
            prompt_id=self.journey_run,
            step_index=index,
            how=how,
            restored_seed=restored,
            ms=round((time.monotonic() - started) * 1000, 1),
        )

    def restore_image(self, index: int) -> int | None:
        """After a reload the product no longer shows the journey's current image. When a later
        edit or export needs it, make it again as a creator would: the last generate's or reroll's
        seed, through the generate control, waited for and not recorded as an action. Returns
        the seed, or None when nothing needed restoring."""
        later = [s.kind for s in self.pack.steps[index + 1 :]]
        needs_image = next((k for k in later if k in ("generate", "reroll", "edit", "export", "repeat")), None)
        if self.last_generated is None or needs_image not in ("edit", "export"):
            return None
        seed = self.last_generated[1]
        if seed is not None and "seed" in self.profile.fields:
            self.set_field("seed", str(seed))
        prepared = self.begin(index, "restore", "generate", self.profile.paint, require_image=None)
        self.click("restore", prepared)
        done = self.probe("whenDone", self.timeout_ms, 0)
        if done["state"] != "done":
            raise StepFailed(f"making the journey's current image again after the reload ended in '{done['state']}'")
        return seed

    def wait_until_enabled(self, selector: str) -> None:
        deadline = time.monotonic() + self.pack.action_timeout_s
        while not self.page.locator(selector).first.is_enabled():
            if time.monotonic() > deadline:
                raise StepFailed(f"the control '{selector}' stayed disabled after the cancel")
            self.page.wait_for_timeout(100)

    def open(self, again: bool = False) -> None:
        """Open the page and wait until it is ready; `again` (a recovery) logs in once more if
        the page asks for it."""
        try:
            self.page.goto(self.url)
        except PlaywrightError as exc:
            raise StepFailed(f"could not open {self.url}: {first_line(exc)}") from None
        login = self.profile.login
        if again and login and self.login_asked():  # (login_asked is False without a login)
            if not login.get("fill"):
                raise StepFailed(
                    "the page asked to log in again, and the stored state (login: storage_state) no "
                    "longer lets it in; save a fresh one"
                )
            self.log_in()
            self.page.goto(self.url)
        try:
            self.page.wait_for_selector(self.profile.ready, timeout=self.timeout_ms)
        except PlaywrightError:
            raise StepFailed(
                f"the ready selector '{self.profile.ready}' did not appear on {self.url} within "
                f"{self.pack.action_timeout_s:g} s; run `imagejourney profile check` to see what the page has"
            ) from None
        self.operate(-1, "open", self.profile.open)
        self.require("prompt field", self.profile.fields["prompt"])  # the output region may come with the first image

    def login_asked(self) -> bool:
        """Whether the page shows the profile's login form (or a login URL) instead of the UI."""
        login = self.profile.login
        if not login:
            return False
        form = next(iter(login.get("fill", {})), None)
        ready = self.page.locator(self.profile.ready)
        either = ready.or_(self.page.locator(form)) if form else ready
        try:
            either.first.wait_for(state="attached", timeout=self.timeout_ms)
        except PlaywrightError:
            pass
        if form and self.page.locator(form).count():
            return True
        return "url" in login and self.page.url.split("?")[0].endswith(login["url"]) and not ready.count()

    def operate(self, index: int, where: str, operations: tuple[Operation, ...]) -> None:
        """Do untimed steps around an action (or on opening the page), each recorded."""
        if operations:
            self.settle()  # the unsettled action's event comes first
        for operation in operations:
            try:
                acted = perform(self.page, operation, where)
            except OperationFailed as exc:
                raise StepFailed(str(exc)) from None
            self.run_dir.event(
                "operation",
                prompt_id=self.journey_run,
                step_index=index,
                where=where,
                operation=operation.kind,
                target=operation.target,
                acted=acted,
            )

    def require(self, role: str, selector: str) -> None:
        """Fail with one sentence when a profile selector matches nothing (after a short wait)."""
        try:
            self.page.wait_for_selector(selector, state="attached", timeout=5_000)
        except PlaywrightError:
            raise StepFailed(
                f"the {role} selector '{selector}' matches nothing on {self.page.url}; "
                "run `imagejourney profile check` to see what the page has instead"
            ) from None

    @contextmanager
    def trace_group(self, name: str):
        if self.tracing == "off":
            yield
            return
        self.page.context.tracing.group(name)
        try:
            yield
        finally:
            self.page.context.tracing.group_end()

    def finish_trace(self) -> None:
        if self.tracing == "off":
            return
        if self.tracing == "on" or self.failures:
            name = self.journey_run if self.attempt == 1 else f"{self.journey_run}-a{self.attempt}"
            path = self.run_dir.inside(self.run_dir.traces / f"{name}.zip")
            self.page.context.tracing.stop(path=path)
            redact_trace(path, secrets=self.known_secrets(), keep_query=self.profile.keep_query)
            self.run_dir.event("trace_saved", prompt_id=self.journey_run, path=self.run_dir.relative(path))
        else:
            self.page.context.tracing.stop()

    def do_step(self, index: int, step: Step) -> None:
        """One journey step, with the untimed steps around it: the profile's for its control,
        then the journey step's own (before); the step's own, then the profile's (after)."""
        control = "generate" if step.kind == "repeat" else step.kind
        self.operate(index, f"before {step.kind}", (*self.profile.before.get(control, ()), *step.before))
        self.do_action_step(index, step)
        self.operate(index, f"after {step.kind}", (*step.after, *self.profile.after.get(control, ())))

    def do_action_step(self, index: int, step: Step) -> None:
        fields = self.profile.fields
        if step.kind not in IMAGE_STEPS:
            self.settle()  # its event comes after the unsettled action's event
        if step.kind == "prompt":
            self.enter_prompt()
        elif step.kind == "think":
            self.page.wait_for_timeout(step.ms)
        elif step.kind == "export":
            self.export(index)
        elif step.kind == "repeat":  # the last generate/reroll again, with its seed: a determinism check
            if self.last_generated is None or self.last_generated[1] is None:
                raise StepFailed("repeat needs a generate or reroll before it that succeeded and showed its seed")
            repeated, seed = self.last_generated
            self.set_field("seed", str(seed))
            self.image_action(index, "repeat", control_action="generate", repeats=repeated)
        else:
            if step.kind == "edit":
                self.set_field("edit_prompt", step.edit_text(self.prompt.text))
                if "strength" in fields:
                    self.set_field("strength", str(step.strength))
                    self.page.press(fields["strength"], "Enter")
                if "mask" in fields:  # an edit without a mask edits the whole image
                    self.set_field("mask", step.mask or "none")
            self.image_action(index, step.kind)

    def enter_prompt(self) -> None:
        """The journey's prompt, seed, negative prompt and settings, each read back from the UI."""
        fields = self.profile.fields
        accepted = {"prompt": self.set_field("prompt", self.prompt.text)}
        if "seed" in fields:
            accepted["seed"] = self.set_field("seed", str(self.prompt.seed))
        if self.prompt.negative and "negative_prompt" in fields:
            accepted["negative_prompt"] = self.set_field("negative_prompt", self.prompt.negative)
        settings = {**self.pack.settings, **self.prompt.settings}
        for name, value in settings.items():  # steps, size, guidance, aspect where the UI has them
            if name in fields:
                accepted[name] = self.set_field(name, str(value))
        # What the UI accepted, read back from it; the seed the pack asked for only as asked.
        self.run_dir.event(
            "prompt_entered",
            prompt_id=self.journey_run,
            seed_requested=self.prompt.seed,
            seed=parse_seed(accepted.get("seed")),
            accepted=accepted,
        )

    def set_field(self, name: str, value: str) -> str | dict | None:
        """Enter `value` in a field and return what the UI shows there afterwards. A field whose
        selector holds `{value}` is a choice (a radio button, a chip): the element it names with
        the value filled in is clicked. `size` may be {width: SELECTOR, height: SELECTOR}."""
        selector = self.profile.fields[name]
        if isinstance(selector, dict):
            return {part: self.enter(f"{name} {part}", one, value) for part, one in selector.items()}
        if "{value}" in selector:
            choice = selector.replace("{value}", value)
            self.require(f"{name} field (choice '{value}')", choice)
            self.page.click(choice)
            return value
        return self.enter(name, selector, value)

    def enter(self, name: str, selector: str, value: str) -> str:
        """Fill a field, leave it and read it back. When the UI shows another value (a number
        widget that undoes a programmatic fill), enter it as a person would: select all, type,
        Tab, and read it back again. A field that is missing, hidden or disabled, or still shows another value,
        fails the step in one sentence naming it."""
        field = self.page.locator(selector).first
        self.require(f"{name} field", selector)
        if not field.is_visible():
            raise StepFailed(
                f"the {name} field '{selector}' is hidden (inside a collapsed panel?); open it with an "
                "`open:` or `before:` step in the UI profile"
            )
        if not field.is_editable():
            raise StepFailed(
                f"the {name} field '{selector}' is disabled or read-only (is a 'random' toggle on?); turn "
                "that off with an `open:` or `before:` step in the UI profile"
            )
        field.fill(value, timeout=self.timeout_ms)
        field.blur()  # as leaving the box does: a widget that commits (or undoes) a value on blur has done so
        if same_value(shown := shown_value(field), value):
            return shown
        field.click()
        field.press("ControlOrMeta+a")
        field.press_sequentially(value)
        field.press("Tab")
        if same_value(shown := shown_value(field), value):
            return shown
        raise StepFailed(
            f"the {name} field '{selector}' shows {shown!r} after {value!r} was entered; the UI did not "
            "take the value (out of its range, or rounded?)"
        )

    def probe(self, method: str, *args):
        """Call the in-page probe's `method` and await its answer, which crosses as one JSON
        string: Playwright's own value serialisation took about 0.5 ms longer per answer on the
        2-core machine, on the path from a final's paint to the next click."""
        return json.loads(
            self.page.evaluate(
                "([method, args]) => Promise.resolve(window.__imagejourney[method](...args)).then((answer) => JSON.stringify(answer))",
                [method, list(args)],
            )
        )

    def begin(
        self,
        index: int,
        action: str,
        control_action: str | None = None,
        paint: str = "element-timing",
        require_image: bool | None = True,
    ) -> Prepared:
        """Start watching one action, in one round trip to the page (the probe's prepare):
        returns the control, how paints are watched and where a click on the control lands.
        The page first waits for the unsettled action's paint: `click` records it.
        How paints are watched: "element-timing" (<img>), "screencast" (frames of the output
        region: the profile says so, or, under paint: auto, the region holds a <canvas> and no
        <img>, which Element Timing cannot see), or "both" (auto, and the region holds no image
        at all at the click: a canvas may appear with the first image)."""
        control = self.profile.controls[control_action or action]
        in_page = [
            control,
            self.profile.output,
            self.profile.final_image,
            self.profile.preview_image,
            *[
                c[k]
                for c in [*self.profile.done, *([self.profile.error] if self.profile.error else [])]
                for k in ("selector", "hidden", "enabled", "disabled", "visible")
                if k in c
            ],
        ]
        prepared = self.probe(
            "prepare",
            {
                "id": index,
                "name": action,
                "control": control,
                "conditions": self.profile.done,
                "error": self.profile.error,
                "paint": paint,
                "requireImage": require_image,
                "selectors": in_page,
                "cap": PREVIEWS_KEPT,
                "settleFirst": [self.unsettled.index] if self.unsettled else [],
                "sameContentExpected": action in ("repeat", "restore"),
            },
        )  # the same seed again: the same picture
        if "notCss" in prepared:
            raise StepFailed(
                f"the UI profile selector '{prepared['notCss']}' is not plain CSS, which the in-page probe needs for "
                "controls, the output region and done conditions (Playwright's :has-text, text= and >> work for fields "
                "only); use a CSS selector such as button.primary"
            )
        if prepared["point"].get("reason") == "missing":
            self.record_settled(prepared["settled"])
            self.require(f"{action} control", control)
        return Prepared(control, prepared["watch"], prepared["point"], prepared["settled"])

    def click(self, action: str, prepared: Prepared) -> None:
        """A trusted click on the control: straight at its centre when the probe found it
        clickable (one input round trip), else Playwright's click, which waits until it is
        visible, enabled, stable and not covered. Either way the click's time is the page's
        own event.timeStamp. Then the action that settled in prepare is recorded: writing its
        event to disk is not on the path from the last final's paint to this click."""
        self.server_watch.begin()
        try:
            if "x" in prepared.point:
                self.page.mouse.click(prepared.point["x"], prepared.point["y"])
            else:
                self.page.click(prepared.control, timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise StepFailed(
                f"the {action} control '{prepared.control}' could not be clicked within "
                f"{self.pack.action_timeout_s:g} s (it stayed hidden, disabled or covered)"
            ) from None
        finally:
            self.record_settled(prepared.settled)
            self.lose_unsettled(PAGE_RELOADED)

    def image_action(self, index: int, action: str, control_action: str | None = None, **extra) -> None:
        prepared = self.begin(index, action, control_action, self.profile.paint, require_image=None)
        if prepared.watch == "element-timing":
            self.click(action, prepared)
            shown = self.probe("whenShown", self.timeout_ms, PREVIEWS_KEPT)
            self.check_done(shown["state"], action, watched_frames=False)
            event = self.shown_event(index, action, prepared.watch, extra, shown["shown"], shown["timeOrigin"])
            self.unsettled = Unsettled(index, action, event)
            self.record_settled(shown["settled"])
            seed = event["seed_shown"]
        else:
            seed = self.frames_action(index, action, prepared, extra)
        if action in ("generate", "reroll"):
            self.last_generated = (index, seed)

    def frames_action(self, index: int, action: str, prepared: Prepared, extra: dict) -> int | None:
        """An image action on a canvas output, timed by its draw calls ("draw-calls"), or from
        screencast frames of the output region ("screencast"), or any of those ("both": an empty
        region at the click): recorded when done, since the frames are read then. The frames are
        recorded beside the draw calls: a canvas that drew no image source (pixels made by a
        shader) is timed from them, and its method says so."""
        frames = OutputRegionFrames(self.page)
        frames.start()
        try:
            self.click(action, prepared)
            finished = self.probe("whenDone", self.timeout_ms, PREVIEWS_KEPT)
        finally:
            frames.stop()
        self.check_done(finished["state"], action, watched_frames=True)
        record = finished["record"]
        timed_by_frames = prepared.watch == "screencast" or record["final"] is None  # "both": an <img> final wins
        if timed_by_frames:
            record = screencast_record(record["click"], frames.changes(finished["timeOrigin"], record["boxes"]))
        if record["click"] is None:
            raise StepFailed("the probe saw no trusted click on the action's control")
        if record["final"] is None:
            raise StepFailed(f"no image was painted in the output region '{self.profile.output}' after the click")
        event = self.shown_event(index, action, prepared.watch, extra, finished["shown"], finished["timeOrigin"])
        previews = [] if timed_by_frames else self.save_previews(index, action, finished["previews"])
        self.run_dir.event("action", **event, previews=previews, probe=self.redact_record(record))
        return event["seed_shown"]

    def shown_event(
        self, index: int, action: str, watch: str, extra: dict, url: str | None, time_origin: float
    ) -> dict:
        """The `action` event but for the probe's record and the previews: the final shown
        (saved), the seed that ran (from the product's API where the profile says so, else as the
        page shows it) and the server's times."""
        server = self.server_watch.collect(self.page, self.base_url)
        api_seed = (server or {}).get("seed")
        seed, source = (api_seed, "api") if api_seed is not None else (self.seed_shown(), "page")
        return {
            **self.step_record(index, action),
            "seed_shown": seed,
            "seed_source": source if seed is not None else None,
            "watch": watch,
            **extra,
            "image": self.save_shown_image(f"{self.file_stem(index)}-{action}.png", url),
            "time_origin": time_origin,
            "server": server,
        }

    def check_done(self, state: str, action: str, watched_frames: bool) -> None:
        if state == "timeout":
            self.explain_timeout(action, watched_frames)
        if state.startswith("error"):
            raise ActionStalled(f"the UI reported an error: {state.removeprefix('error: ')}")

    def record_settled(self, settled: list[dict]) -> None:
        """Record the unsettled action if the probe has settled it: its `action` event with its
        previews, or, when its final never painted, its failure. (Other ids the probe hands over
        are steps that failed after their final was shown, and are recorded so.)"""
        pending = self.unsettled
        if pending is None:
            return
        item = next((i for i in settled if i["id"] == pending.index), None)
        if item is None:
            return
        self.unsettled = None
        if item.get("expired"):
            self.record_failure(
                pending.index,
                pending.action,
                (
                    f"the {pending.action} showed a new final image in '{self.profile.output}', but Element Timing saw "
                    f"no paint of it within {self.pack.action_timeout_s:g} s (is the output region out of view?)"
                ),
            )
            return
        previews = self.save_previews(pending.index, pending.action, item["previews"])
        self.run_dir.event("action", **pending.event, previews=previews, probe=self.redact_record(item["record"]))

    def settle(self) -> None:
        """Wait until the unsettled action's final has painted (or its time is up) and record it."""
        if self.unsettled is None:
            return
        try:
            self.record_settled(self.probe("whenSettled", [self.unsettled.index], PREVIEWS_KEPT))
        except PlaywrightError as exc:
            self.lose_unsettled(f"the page broke before the paint of its final image was seen ({first_line(exc)})")
        self.lose_unsettled(PAGE_RELOADED)

    def lose_unsettled(self, reason: str) -> None:
        """The unsettled action fails if it is still unsettled after the page was asked for it:
        the page no longer knows of it (it was reloaded, or closed)."""
        if self.unsettled is not None:
            pending, self.unsettled = self.unsettled, None
            self.record_failure(pending.index, pending.action, reason)

    def explain_timeout(self, action: str, watched_frames: bool) -> None:
        """Why an action was not done in time, in one sentence."""
        if not self.page.evaluate("(o) => !!document.querySelector(o)", self.profile.output):
            raise ActionStalled(
                f"the {action} was not done within {self.pack.action_timeout_s:g} s, and the output region selector "
                f"'{self.profile.output}' matches nothing on {self.page.url}; run `imagejourney profile check`"
            )
        canvas_only = self.page.evaluate(
            "(o) => !document.querySelector(o + ' img') && !!document.querySelector(o + ' canvas')", self.profile.output
        )
        if not watched_frames and canvas_only:
            raise ActionStalled(
                f"the output region '{self.profile.output}' shows a <canvas>, which Element Timing cannot see; "
                "set `paint: auto` (its draw calls) or `paint: screencast` in the UI profile"
            )
        if self.probe("conditionsHold"):
            raise ActionStalled(
                f"the UI said the {action} was done but painted no new final image in '{self.profile.output}' "
                f"within {self.pack.action_timeout_s:g} s (the same image as before the click?)"
            )
        raise ActionStalled(
            f"the {action} was not done within {self.pack.action_timeout_s:g} s (action_timeout_s): the done "
            f"condition {json.dumps(self.profile.done)} did not hold with a final painted since the click"
        )

    def redact_record(self, record: dict) -> dict:
        """The probe's record with every image URL redacted (signed storage URLs)."""

        def paint(p):
            return {**p, "url": self.redact(p.get("url") or "")}

        return {**record, "final": paint(record["final"]), "paints": [paint(p) for p in record["paints"]]}

    def export(self, index: int) -> None:
        """Click export, let the browser download the file, save and verify it. The end time is
        the page's performance.now() read just after the file is verified on disk."""
        prepared = self.begin(index, "export")
        with self.page.expect_download(timeout=self.timeout_ms) as download_info:
            self.click("export", prepared)
        target = self.run_dir.image_path(f"{self.file_stem(index)}-export.png")
        download_info.value.save_as(target)
        try:
            with Image.open(target) as exported:
                exported.load()
                embedded = sorted(getattr(exported, "text", {}))
                file_format = exported.format
        except OSError as exc:
            raise StepFailed(f"the exported file is not a readable image ({exc})") from None
        saved_at, click = self.page.evaluate("[performance.now(), window.__imagejourney.clickTime()]")
        if click is None:
            raise StepFailed("the probe saw no trusted click on the export control")
        self.run_dir.event(
            "export",
            **self.step_record(index, "export"),
            click=click,
            saved_at=saved_at,
            time_origin=self.page.evaluate("performance.timeOrigin"),
            image=self.run_dir.relative(target),
            format=file_format,
            embedded_text=embedded,
            suggested_filename=download_info.value.suggested_filename,
        )

    def save_shown_image(self, name: str, url: str | None) -> str:
        """Keep the image the output region shows (`url`, or its <canvas>) as PNG: PNG bytes as
        they came, anything else converted."""
        target = self.run_dir.image_path(name)
        data: bytes | None
        if url:
            try:
                data = self.image_bytes(url)
            except ValueError as exc:  # a data: URL whose base64 is broken
                raise StepFailed(f"the image the output region shows is not a readable image ({exc})") from None
            except PlaywrightError as exc:  # a revoked blob: URL, a source the page may no longer fetch
                raise StepFailed(
                    f"the image the output region shows could not be fetched by the page "
                    f"({first_line(exc).split(': ', 1)[-1]})"
                ) from None  # without "Page.evaluate: "
        else:
            encoded = self.page.evaluate(CANVAS_AS_BASE64)
            data = base64.b64decode(encoded) if encoded else None
        if not data:
            raise StepFailed(f"the output region '{self.profile.output}' shows no image or canvas to keep")
        try:
            with Image.open(io.BytesIO(data)) as shown:
                if shown.format == "PNG":
                    shown.verify()
                    target.write_bytes(data)
                else:
                    shown.save(target, format="PNG")
        except (OSError, SyntaxError) as exc:  # PIL's verify() reports a broken PNG as SyntaxError
            raise StepFailed(f"the image the output region shows is not a readable image ({exc})") from None
        return self.run_dir.relative(target)

    def save_previews(self, index: int, action: str, sources: list[dict]) -> list[dict]:
        """Keep the previews the page painted for this action (at most PREVIEWS_KEPT, as small
        JPEGs) with their paint times: the raw material of visual progress and the filmstrip.
        Read after the action is done, so saving them costs the timed action nothing."""
        kept = []
        for number, preview in enumerate(sources):
            try:
                image = Image.open(io.BytesIO(self.image_bytes(preview["src"]))).convert("RGB")
            except (PlaywrightError, ValueError, OSError) as exc:  # its source is gone: said in the event, not kept
                kept.append({"t": preview["t"], "image": None, "not_kept": first_line(exc)[:200]})
                continue
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            target = self.run_dir.image_path(f"previews/{self.file_stem(index)}-{action}-{number:02d}.jpg")
            target.parent.mkdir(exist_ok=True)
            image.save(target, format="JPEG", quality=85)
            kept.append({"t": preview["t"], "image": self.run_dir.relative(target)})
        return kept

    def image_bytes(self, url: str) -> bytes:
        """The bytes behind an image URL: decoded from a data: URL, else fetched by the page."""
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            return base64.b64decode(payload) if header.endswith(";base64") else unquote_to_bytes(payload)
        return base64.b64decode(self.page.evaluate(FETCH_AS_BASE64, url) or "")

    def seed_shown(self) -> int | None:
        """The seed the page shows after the action (the one that ran), or None when not known."""
        selector = self.profile.fields.get("seed")
        if not selector:
            return None
        try:
            return parse_seed(shown_value(self.page.locator(selector).first))
        except PlaywrightError:
            return None

    def file_stem(self, index: int) -> str:
        """`fisherman-02`; a later attempt keeps its own files: `fisherman-a2-02`; creator 3 of 4:
        `fisherman.n4-c3-02`."""
        return (
            f"{self.journey_run}-{index:02d}"
            if self.attempt == 1
            else f"{self.journey_run}-a{self.attempt}-{index:02d}"
        )

    def step_record(self, index: int, action: str) -> dict:
        """What every step's event says about which step it is."""
        return {
            "attempt": self.attempt,
            "journey": self.pack.name,
            "prompt_id": self.journey_run,
            "creators": self.creator.creators if self.creator else None,
            "creator": self.creator.index if self.creator else None,
            "prompt": self.prompt.text,
            "seed_requested": self.prompt.seed,  # what ran is the action's seed_shown
            "step_index": index,
            "action": action,
            "mask": self.pack.steps[index].mask if index >= 0 else None,
        }

    def fail(self, index: int, action: str, error: str) -> None:
        try:
            screenshot = self.run_dir.image_path(f"{self.file_stem(index)}-{action}-failure.png")
            self.page.screenshot(path=screenshot)
            shot = self.run_dir.relative(screenshot)
        except (PlaywrightError, UnsafePath):
            shot = None
        self.settle()  # the steps before this one are recorded first
        self.record_failure(index, action, error, shot)

    def record_failure(self, index: int, action: str, error: str, screenshot: str | None = None) -> None:
        self.failures.append(Failure(index, action, error, screenshot))
        self.run_dir.event("step_failed", **self.step_record(index, action), error=error, screenshot=screenshot)


def run_journey(
    page: Page,
    *,
    base_url: str,
    profile: UIProfile,
    pack: JourneyPack,
    prompt: Prompt,
    run: RunDirectory,
    tracing: str = "off",
    first_attempt: int = 1,
    retries: int = 0,
    creator: Creator | None = None,
) -> list[Failure]:
    """One journey run, tried again on a fresh page of the same context up to `retries` times
    while a step fails (every attempt is kept; one that then passes is reported flaky).
    Returns the last attempt's failures."""
    for attempt in range(first_attempt, first_attempt + retries + 1):
        if attempt > first_attempt:
            page = page.context.new_page()
            install_probe(page, profile.output, profile.final_image, profile.preview_image)
        failures = JourneyRunner(
            page,
            base_url=base_url,
            profile=profile,
            pack=pack,
            prompt=prompt,
            run=run,
            tracing=tracing,
            attempt=attempt,
            creator=creator,
        ).run()
        if not failures:
            break
    return failures


def describe_failures(failures: list[Failure], run: RunDirectory, journey_run: str) -> str:
    """The failed steps of a journey run, each with its screenshot, and the trace where one was kept."""
    traces = sorted(run.traces.glob(f"{journey_run}.zip")) + sorted(run.traces.glob(f"{journey_run}-a*.zip"))
    trace = f"trace: {traces[-1]}" if traces else "no trace kept (--tracing on or retain-on-failure keeps one)"
    return "; ".join(
        f"step {f.step_index} ({f.action}) failed: {f.error} [screenshot: "
        f"{run.path / f.screenshot if f.screenshot else 'none'}; {trace}]"
        for f in failures
    )


def log_in(page: Page, base_url: str, profile: UIProfile) -> bool:
    """Log in by the profile's login step, credentials from the environment. Returns False when
    there is nothing to do (no login, or a storage state loaded with the context)."""
    login = profile.login
    if not login or "storage_state" in login:
        return False
    values = {}
    for selector, variable in login["fill"].items():
        name = variable.removeprefix("$")
        if name not in os.environ:
            raise StepFailed(f"login needs the environment variable {name} (the UI profile names it for {selector})")
        values[selector] = os.environ[name]
    page.goto(base_url.rstrip("/") + login.get("url", profile.path))
    for selector, value in values.items():
        page.fill(selector, value)
    page.click(login["submit"])
    try:
        page.wait_for_selector(login["success"], timeout=15_000)
    except PlaywrightError:
        names = ", ".join(v.removeprefix("$") for v in login["fill"].values())
        raise StepFailed(
            f"login failed: '{login['success']}' did not appear within 15 s of submitting; check {names}"
        ) from None
    return True


def shown_value(field) -> str:
    """What a field shows: an input's, textarea's or select's value, else its text."""
    try:
        return field.input_value(timeout=2_000)
    except PlaywrightError:
        return field.inner_text(timeout=2_000).strip()


NUMBER_SEPARATORS = re.compile(r"[,_'\s\u00a0\u202f\u2009]")  # 156,680,208,700,286 · 1 234 · 1_234


def as_number(text: str) -> float | None:
    try:
        return float(NUMBER_SEPARATORS.sub("", text))
    except ValueError:
        return None


def same_value(shown: str, meant: str) -> bool:
    """The UI shows the value meant: the same text, or the same number however it is written."""
    if shown.strip() == meant.strip():
        return True
    a, b = as_number(shown), as_number(meant)
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def parse_seed(text) -> int | None:
    """A seed as a UI shows it (with thousands separators too), or None when it is not a whole number."""
    number = as_number(str(text)) if text is not None else None
    return int(number) if number is not None and number == int(number) else None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
