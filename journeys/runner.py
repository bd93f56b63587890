"""Drive one journey run (one prompt of a pack) through a product UI with Playwright.

Each timed action goes: tell the probe which control to watch → click it (a real, trusted
input event) → wait until the profile's done condition holds and the shown image has painted
→ read the probe's record → write a steps.csv row and the final image. A failed step is
recorded with a screenshot and the journey goes on with the next step.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .pack import JourneyPack, Prompt, Step, UIProfile
from .rundir import RunDirectory
from .screencast import OutputRegionFrames, screencast_record
from .timing import measure_action
from .traces import redact_trace

PROBE_SOURCE = (Path(__file__).parent / "probe.js").read_text()

CANVAS_AS_BASE64 = """(output) => {
  const canvas = [...document.querySelectorAll(output + " canvas")].pop();
  return canvas ? canvas.toDataURL("image/png").split(",")[1] : null;
}"""
FETCH_AS_BASE64 = """async (url) => {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}"""


class StepFailed(Exception):
    """The product did not complete a step; the message says what was seen."""


@dataclass
class Failure:
    step_index: int
    action: str
    error: str
    screenshot: str | None


def install_probe(page: Page, output: str, final_image: str = "img") -> None:
    """Add the timing probe to every document the page loads, watching the `output` region."""
    config = {"output": output, "final_image": final_image}
    page.add_init_script(f"{PROBE_SOURCE}({json.dumps(config)});")


class JourneyRunner:
    def __init__(self, page: Page, *, base_url: str, profile: UIProfile, pack: JourneyPack, prompt: Prompt,
                 run: RunDirectory, tracing: str = "off"):
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + profile.path
        self.profile = profile
        self.pack = pack
        self.prompt = prompt
        self.run_dir = run
        self.tracing = tracing  # on | off | retain-on-failure
        self.timeout_ms = pack.action_timeout_s * 1000
        self.failures: list[Failure] = []

    def run(self) -> list[Failure]:
        self.run_dir.event("journey_started", journey=self.pack.name, prompt_id=self.prompt.id, url=self.url)
        try:
            self.log_in()  # before tracing starts: typed credentials never reach a trace
        except (StepFailed, PlaywrightError) as exc:
            self.fail(-1, "login", first_line(exc))
            return self.failures
        if self.tracing != "off":
            # DOM snapshots only: the screencast behind trace screenshots competes with the page
            # for CPU and slowed click-to-final by 190–250 ms on a 2-core machine (snapshots: 40–85 ms).
            self.page.context.tracing.start(title=f"{self.pack.name} · {self.prompt.id}", screenshots=False, snapshots=True)
        try:
            self.open()
            for index, step in enumerate(self.pack.steps):
                if index and self.pack.think_time_ms:
                    self.page.wait_for_timeout(self.pack.think_time_ms)
                with self.trace_group(f"step {index}: {step.kind}"):
                    try:
                        self.do_step(index, step)
                    except (StepFailed, PlaywrightError, ValueError) as exc:
                        self.fail(index, step.kind, first_line(exc))
        except (StepFailed, PlaywrightError) as exc:
            self.fail(-1, "open", first_line(exc))
        finally:
            self.finish_trace()
        self.run_dir.event("journey_finished", prompt_id=self.prompt.id, failures=len(self.failures))
        return self.failures

    def log_in(self) -> None:
        if log_in(self.page, self.base_url, self.profile):
            self.run_dir.event("logged_in", prompt_id=self.prompt.id)

    def open(self) -> None:
        try:
            self.page.goto(self.url)
        except PlaywrightError as exc:
            raise StepFailed(f"could not open {self.url}: {first_line(exc)}") from None
        try:
            self.page.wait_for_selector(self.profile.ready, timeout=self.timeout_ms)
        except PlaywrightError:
            raise StepFailed(
                f"the ready selector '{self.profile.ready}' did not appear on {self.url} within "
                f"{self.pack.action_timeout_s:g} s; run `imagejourney profile check` to see what the page has"
            ) from None
        self.require("output region", self.profile.output)
        self.require("prompt field", self.profile.fields["prompt"])

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
            path = self.run_dir.traces / f"{self.prompt.id}.zip"
            self.page.context.tracing.stop(path=path)
            redact_trace(path)
            self.run_dir.event("trace_saved", prompt_id=self.prompt.id, path=self.run_dir.relative(path))
        else:
            self.page.context.tracing.stop()

    def do_step(self, index: int, step: Step) -> None:
        fields = self.profile.fields
        if step.kind == "prompt":
            self.set_field("prompt", self.prompt.text)
            if "seed" in fields:
                self.set_field("seed", str(self.prompt.seed))
            if self.prompt.negative and "negative_prompt" in fields:
                self.set_field("negative_prompt", self.prompt.negative)
            settings = {**self.pack.settings, **self.prompt.settings}
            for name, value in settings.items():  # steps, size, guidance, aspect where the UI has them
                if name in fields:
                    self.set_field(name, str(value))
            self.run_dir.event("prompt_entered", prompt_id=self.prompt.id, seed=self.prompt.seed)
        elif step.kind == "think":
            self.page.wait_for_timeout(step.ms)
        elif step.kind == "export":
            self.export(index)
        else:
            if step.kind == "edit":
                self.set_field("edit_prompt", step.prompt)
                if "strength" in fields:
                    self.set_field("strength", str(step.strength))
                    self.page.press(fields["strength"], "Enter")
                if "mask" in fields:  # an edit without a mask edits the whole image
                    self.set_field("mask", step.mask or "none")
            self.image_action(index, step.kind)

    def set_field(self, name: str, value: str) -> None:
        """Type into a field; a field whose selector holds `{value}` is a choice (a radio
        button, a chip): the element it names with the value filled in is clicked."""
        selector = self.profile.fields[name]
        if "{value}" in selector:
            choice = selector.replace("{value}", value)
            self.require(f"{name} field (choice '{value}')", choice)
            self.page.click(choice)
        else:
            self.page.fill(selector, value)

    def begin(self, action: str, require_image: bool = True) -> str:
        control = self.profile.controls[action]
        self.require(f"{action} control", control)
        self.page.evaluate(
            "([name, control, done, error, image]) => window.__imagejourney.begin(name, control, done, error, image)",
            [action, control, self.profile.done, self.profile.error, require_image],
        )
        return control

    def output_is_canvas(self) -> bool:
        """Paint times from screencast frames: when the profile says so, or (auto) when the
        output region holds a <canvas> and no <img>, which Element Timing cannot see."""
        if self.profile.paint != "auto":
            return self.profile.paint == "screencast"
        return self.page.evaluate(
            "(o) => !!document.querySelector(o + ' canvas') && !document.querySelector(o + ' img')", self.profile.output
        )

    def image_action(self, index: int, action: str) -> None:
        frames = OutputRegionFrames(self.page) if self.output_is_canvas() else None
        control = self.begin(action, require_image=frames is None)
        if frames:
            frames.start()
        try:
            self.page.click(control)
            state = self.page.wait_for_function(
                "() => { const s = window.__imagejourney.state(); return s !== 'pending' && s; }",
                timeout=self.timeout_ms,
            ).json_value()
        except PlaywrightTimeout:
            if not frames and self.output_is_canvas():
                raise StepFailed(
                    f"the output region '{self.profile.output}' shows a <canvas>, which Element Timing cannot see; "
                    "set `paint: screencast` in the UI profile"
                ) from None
            if self.page.evaluate("window.__imagejourney.conditionsHold()"):
                raise StepFailed(
                    f"the UI said the {action} was done but painted no new final image in '{self.profile.output}' "
                    f"within {self.pack.action_timeout_s:g} s (the same image as before the click?)"
                ) from None
            raise StepFailed(
                f"the {action} was not done within {self.pack.action_timeout_s:g} s (action_timeout_s): the done "
                f"condition {json.dumps(self.profile.done)} did not hold with a final painted since the click"
            ) from None
        finally:
            if frames:
                frames.stop()
        if state.startswith("error"):
            raise StepFailed(f"the UI reported an error: {state.removeprefix('error: ')}")
        record = self.page.evaluate("window.__imagejourney.collect()")
        if frames:
            changes = frames.changes(self.page.evaluate("performance.timeOrigin"), record["boxes"])
            record = screencast_record(record["click"], changes)
        self.run_dir.event("action", prompt_id=self.prompt.id, step_index=index, action=action, probe=record)
        timing = measure_action(record)
        image = self.save_shown_image(f"{self.prompt.id}-{index:02d}-{action}.png")
        server = self.server_times(index, timing.final_paint_ts_ms)
        self.run_dir.add_step(
            {
                **self.row_base(index, action),
                **server,
                "seed": self.seed_shown(),
                "click_ts_ms": timing.click_ts_ms,
                "first_preview_paint_ts_ms": timing.first_preview_paint_ts_ms,
                "final_paint_ts_ms": timing.final_paint_ts_ms,
                "click_to_preview_ms": timing.click_to_preview_ms,
                "click_to_final_ms": timing.click_to_final_ms,
                "previews_painted": timing.previews_painted,
                "paint_method": timing.paint_method,
                "status": "ok",
                "image": image,
            }
        )

    def export(self, index: int) -> None:
        """Click export, let the browser download the file, save and verify it. The end time is
        the page's performance.now() read just after the file is verified on disk."""
        control = self.begin("export")
        with self.page.expect_download(timeout=self.timeout_ms) as download_info:
            self.page.click(control)
        target = self.run_dir.images / f"{self.prompt.id}-{index:02d}-export.png"
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
            "export", prompt_id=self.prompt.id, step_index=index, format=file_format, embedded_text=embedded,
            suggested_filename=download_info.value.suggested_filename,
        )
        self.run_dir.add_step(
            {
                **self.row_base(index, "export"),
                "click_ts_ms": round(click, 1),
                "click_to_export_ms": round(saved_at - click, 1),
                "paint_method": "download-saved",
                "status": "ok",
                "image": self.run_dir.relative(target),
            }
        )

    def server_times(self, index: int, final_paint_ts_ms: float) -> dict:
        """The server's own times for the action just done (profile `server_timings`), moved
        from epoch ms to the page's timeline. Exact when server and browser share a clock (the
        reference app); against a remote server the difference includes clock offset."""
        spec = self.profile.server_timings
        if not spec:
            return {}
        match = re.search(spec["job_pattern"], self.page.inner_text(spec["job_selector"]))
        if not match:
            self.run_dir.event("server_times_missing", step_index=index, reason="no job number in the page")
            return {}
        response = self.page.request.get(self.base_url + spec["url"].format(job=match.group(1)))
        if not response.ok:
            self.run_dir.event("server_times_missing", step_index=index, reason=f"HTTP {response.status}")
            return {}
        times = response.json()
        self.run_dir.event("server_times", prompt_id=self.prompt.id, step_index=index, times=times)
        origin = self.page.evaluate("performance.timeOrigin")

        def on_page(epoch_ms):
            return None if epoch_ms is None else round(epoch_ms - origin, 1)

        previews = times.get("previews_produced") or []
        final = on_page(times.get("final_produced"))
        return {
            "server_job": match.group(1),
            "server_received_ts_ms": on_page(times.get("request_received")),
            "server_inference_start_ts_ms": on_page(times.get("inference_start")),
            "server_first_preview_ts_ms": on_page(previews[0]) if previews else None,
            "server_final_ts_ms": final,
            "previews_produced": len(previews),
            "delivery_ms": None if final is None else round(final_paint_ts_ms - final, 1),
        }

    def save_shown_image(self, name: str) -> str:
        url = self.page.evaluate("window.__imagejourney.shownImageUrl()")
        if url:
            encoded = self.page.evaluate(FETCH_AS_BASE64, url)
        else:
            encoded = self.page.evaluate(CANVAS_AS_BASE64, self.profile.output)
        if not encoded:
            raise StepFailed(f"the output region '{self.profile.output}' shows no image or canvas to keep")
        data = base64.b64decode(encoded)
        target = self.run_dir.images / name
        Image.open(io.BytesIO(data)).save(target, format="PNG")
        return self.run_dir.relative(target)

    def seed_shown(self) -> int | None:
        selector = self.profile.fields.get("seed")
        if not selector:
            return None
        try:
            return int(float(self.page.input_value(selector)))
        except (PlaywrightError, ValueError):
            return None

    def row_base(self, index: int, action: str) -> dict:
        return {
            "journey": self.pack.name,
            "prompt_id": self.prompt.id,
            "prompt": self.prompt.text,
            "seed": self.prompt.seed,
            "step_index": index,
            "action": action,
            "mask": self.pack.steps[index].mask if index >= 0 else None,
        }

    def fail(self, index: int, action: str, error: str) -> None:
        screenshot = self.run_dir.images / f"{self.prompt.id}-{index:02d}-{action}-failure.png"
        try:
            self.page.screenshot(path=screenshot)
            shot = self.run_dir.relative(screenshot)
        except PlaywrightError:
            shot = None
        self.failures.append(Failure(index, action, error, shot))
        self.run_dir.event("step_failed", prompt_id=self.prompt.id, step_index=index, action=action, error=error)
        self.run_dir.add_step({**self.row_base(index, action), "status": "failed", "error": error, "screenshot": shot})


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
        raise StepFailed(f"login failed: '{login['success']}' did not appear within 15 s of submitting; check {names}") from None
    return True


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
