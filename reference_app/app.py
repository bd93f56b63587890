"""The Gradio UI of the reference app: prompt → Generate / Reroll / Edit → Export.

Edit is image-to-image of the current image (generated or uploaded), or inpainting of one
region of it when a mask region is chosen.

Every action streams one preview per denoising step into the output image, then the final.
The status line under the image says when an action is done (`Done · <action> · seed N ·
job N`) or failed (`Error · …`); the imagejourney UI profile for this app keys on it.
"""

from __future__ import annotations

import atexit
import copy
import queue
import random
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from . import portrait_world as world
from .live import LiveChannels, preview_message
from .pipeline import MASK_REGIONS, LoadedModel, run_diffusion

MAX_PROMPT_CHARS = 1000
STEPS_RANGE = (1, 100)
SIZE_RANGE = (64, 1024)
GUIDANCE_RANGE = (0.0, 30.0)
ASPECTS = {"1:1": (1, 1), "4:5": (4, 5), "9:16": (9, 16), "16:9": (16, 9)}  # width : height; size is the long side
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")
UPLOAD_MAX_BYTES = 10 * 1024 * 1024
UPLOAD_SIDE_RANGE = (64, 4096)
NO_MASK = "none"  # the mask choice that edits the whole image (image-to-image)


@dataclass
class Settings:
    """Generation settings of one action (the app's defaults come from `serve` flags)."""

    steps: int
    size: int
    guidance: float
    aspect: str = "1:1"

    @property
    def width(self) -> int:
        return self.side(0)

    @property
    def height(self) -> int:
        return self.side(1)

    def side(self, index: int) -> int:
        """`size` for the long side; the short side in proportion, rounded to a multiple of 8."""
        ratio = ASPECTS[self.aspect]
        return max(32, round(self.size * ratio[index] / max(ratio) / 8) * 8)

    @classmethod
    def from_ui(cls, steps, size, guidance, aspect="1:1") -> Settings | str:
        """The settings, or one sentence saying which value is out of bounds."""
        if steps is None or not STEPS_RANGE[0] <= steps <= STEPS_RANGE[1]:
            return f"steps must be between {STEPS_RANGE[0]} and {STEPS_RANGE[1]}"
        if size is None or size % 8 or not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
            return f"size must be a multiple of 8 between {SIZE_RANGE[0]} and {SIZE_RANGE[1]}"
        if guidance is None or not GUIDANCE_RANGE[0] <= guidance <= GUIDANCE_RANGE[1]:
            return f"guidance must be between {GUIDANCE_RANGE[0]:g} and {GUIDANCE_RANGE[1]:g}"
        if aspect not in ASPECTS:
            return f"unknown aspect ratio '{aspect}'; choose one of {', '.join(ASPECTS)}"
        return cls(steps=int(steps), size=int(size), guidance=float(guidance), aspect=aspect)


def epoch_ms() -> float:
    return time.time() * 1000.0


@dataclass
class Holds:
    """Test mode: hold each preview `preview_ms` before showing it, and the final until
    `final_ms` after the request was received, so a tester can check its timings against
    known delays. Zero means no hold."""

    preview_ms: int = 0
    final_ms: int = 0


@dataclass
class Faults:
    """Fault injection for testing a tester; all off by default. Rates are probabilities per
    job, drawn from a generator seeded with `seed` so a run can be repeated."""

    latency_ms: int = 0  # added before inference starts
    error_rate: float = 0.0  # the action fails visibly (status line says Error)
    blank_rate: float = 0.0  # the final is a black image, as from a safety filter
    stall_rate: float = 0.0  # previews, then no final at all
    quality_rate: float = 0.0  # the job is conditioned on a perturbed prompt: its named attributes are wrong
    seed: int = 0

    def active(self) -> bool:
        return bool(self.latency_ms or self.error_rate or self.blank_rate or self.stall_rate or self.quality_rate)


def perturbed_prompt(prompt: str, rng: random.Random) -> str:
    """The prompt a quality fault conditions on: every portrait-world attribute the prompt names
    is swapped for another value of that attribute ("red hair" → "grey hair"), so the image
    shows the wrong ones. A prompt the world cannot read becomes the empty prompt (nothing asked
    is conditioned on)."""
    try:
        named = world.parse(prompt)
    except world.UnknownWord:
        return ""
    if not named:
        return ""
    wrong = {name: rng.choice([v for v in world.ATTRIBUTES[name] if v != value]) for name, value in named.items()}
    return world.describe(wrong)


STALL_S = 600  # a stalled job holds its connection this long, then gives up


MAX_SEED = 2**32  # seeds are 0 ≤ seed < 2**32 (what torch.Generator.manual_seed takes without surprise)


class ReferenceApp:
    KEPT_JOBS = 1000
    KEPT_EXPORTS = 256  # export files kept in the temporary export directory; older ones are deleted

    HISTORY = 12  # finals kept in the history gallery

    def __init__(
        self,
        model: LoadedModel,
        defaults: Settings,
        holds: Holds | None = None,
        faults: Faults | None = None,
        concurrency: int = 1,
        live: LiveChannels | None = None,
        max_jobs: int = 16,
        export_dir: Path | None = None,
    ):
        self.model = model
        self.defaults = defaults
        self.holds = holds or Holds()
        self.faults = faults or Faults()
        self.fault_rng = random.Random(self.faults.seed)
        # Its own generator: the error, blank and stall draws stay the same with or without it.
        self.quality_rng = random.Random(f"quality-{self.faults.seed}")
        self.live = live  # None: previews go through Gradio's image streaming
        if export_dir is None:  # in-process use (tests): a directory of its own, removed at exit
            export_dir = Path(tempfile.mkdtemp(prefix="imagejourney-exports-"))
            atexit.register(shutil.rmtree, export_dir, ignore_errors=True)
        export_dir.mkdir(parents=True, exist_ok=True)
        self.export_dir = export_dir
        # Jobs running or waiting for a model copy; past max_jobs a new one is told "busy".
        self.max_jobs = max_jobs
        self.jobs_in_flight = 0
        self.job_counter = 0
        self.counter_lock = threading.Lock()
        # `concurrency` copies of the pipelines; a job waits for a free one (its queue wait).
        self.concurrency = concurrency
        self.workers: queue.Queue[LoadedModel] = queue.Queue()
        # The diffusion runs on a fixed pool of threads, one per model copy, not a thread per job.
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="diffusion")
        self.workers.put(model)
        for _ in range(concurrency - 1):
            self.workers.put(copy.deepcopy(model))
        self.jobs: OrderedDict[int, dict] = OrderedDict()  # server-side times of recent jobs

    def next_job(self, action: str) -> tuple[int, dict]:
        """A new job number and its record of server times (epoch ms)."""
        with self.counter_lock:
            self.job_counter += 1
            job = self.job_counter
            times = {
                "job": job,
                "action": action,
                "request_received": epoch_ms(),
                "inference_start": None,
                "inference_end": None,
                "previews_produced": [],
                "final_produced": None,
                "export_written": None,
                "holds": {"preview_ms": self.holds.preview_ms, "final_ms": self.holds.final_ms},
            }
            self.jobs[job] = times
            while len(self.jobs) > self.KEPT_JOBS:
                self.jobs.popitem(last=False)
            return job, times

    def stream(
        self,
        action: str,
        prompt: str,
        seed: int,
        settings: Settings,
        negative: str = "",
        history=(),
        init_image=None,
        strength=0.6,
        mask_region=None,
        session: str | None = None,
    ):
        """Yield (image, status, export_path, current, seed) tuples: previews, then the final.
        A job past the bounded queue is answered "busy" at once instead of waiting unboundedly."""
        with self.counter_lock:
            busy = self.jobs_in_flight >= self.max_jobs
            if not busy:
                self.jobs_in_flight += 1
        if busy:
            yield error_frame(
                action, f"busy: {self.max_jobs} jobs are already running or waiting; try again in a moment"
            )
            return
        try:
            yield from self.run_job(
                action, prompt, seed, settings, negative, history, init_image, strength, mask_region, session
            )
        finally:
            with self.counter_lock:
                self.jobs_in_flight -= 1

    def run_job(self, action, prompt, seed, settings, negative, history, init_image, strength, mask_region, session):
        job, times = self.next_job(action)
        with self.counter_lock:  # one draw per fault per job, in job order
            error, blank, stall = (
                self.fault_rng.random() < rate
                for rate in (self.faults.error_rate, self.faults.blank_rate, self.faults.stall_rate)
            )
            quality = self.faults.quality_rate > 0 and self.quality_rng.random() < self.faults.quality_rate
            conditioned = perturbed_prompt(prompt, self.quality_rng) if quality else prompt
        times["faults"] = {
            "error": error,
            "blank": blank,
            "stall": stall,
            "latency_ms": self.faults.latency_ms,
            "quality": quality,
        }
        if quality:
            times["faults"]["conditioned_on"] = conditioned  # what the image shows instead of the prompt
        times["mask"] = mask_region
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        if error:
            yield error_frame(action, f"injected fault: the server failed this job · job {job}")
            return
        previews: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work():
            model = self.workers.get()
            try:
                times["inference_start"] = epoch_ms()
                outcome["image"] = run_diffusion(
                    model,
                    prompt=conditioned,
                    negative_prompt=negative,
                    seed=seed,
                    steps=settings.steps,
                    width=settings.width,
                    height=settings.height,
                    guidance=settings.guidance,
                    on_preview=previews.put,
                    init_image=init_image,
                    strength=strength,
                    mask_region=mask_region,
                )
            except Exception as exc:  # shown in the UI, the server keeps serving
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                times["inference_end"] = epoch_ms()
                self.workers.put(model)
                previews.put(None)

        self.pool.submit(work)
        step = 0
        while (preview := previews.get()) is not None:
            step += 1
            if self.holds.preview_ms:
                time.sleep(self.holds.preview_ms / 1000)
            live = self.live is not None and self.live.publish(
                session, preview_message(job, step, preview, settings.width)
            )
            times["previews_produced"].append(epoch_ms())
            status = f"Working · {action} · step {step}/{settings.steps} · job {job}"
            shown = gr.skip() if live else preview.resize((settings.width, settings.height), Image.NEAREST)
            yield shown, status, gr.skip(), gr.skip(), gr.skip()
        if "error" in outcome:
            yield error_frame(action, f"{outcome['error']} · job {job}")
            return
        if stall:
            time.sleep(STALL_S)
            return
        image = Image.new("RGB", outcome["image"].size) if blank else outcome["image"]
        params = {
            "prompt": prompt,
            "negative_prompt": negative,
            "seed": str(seed),
            "steps": str(settings.steps),
            "guidance": str(settings.guidance),
            "size": f"{settings.width}x{settings.height}",
            "aspect": settings.aspect,
            "model": self.model.name,
            "sampler": self.model.sampler,
            "action": action,
            "job": str(job),  # also makes every final's file, and so its URL, unique
        }
        if init_image is not None:
            params["strength"] = str(strength)
        if mask_region is not None:
            params["mask"] = mask_region
        if quality:
            params["injected_fault"] = f"quality: conditioned on '{conditioned}'"
        export_path = self.write_export(image, params, job)
        times["export_written"] = epoch_ms()
        caption = f"{action} · seed {seed}"
        current = {
            "image": image,
            "prompt": prompt,
            "seed": seed,
            "history": [(image, caption), *history][: self.HISTORY],
        }
        hold_until = times["request_received"] + self.holds.final_ms
        if epoch_ms() < hold_until:
            time.sleep((hold_until - epoch_ms()) / 1000)
        times["final_produced"] = epoch_ms()
        # The final is shown from the export file: its bytes (with the job number) are unique, so
        # Gradio serves it at a new URL even when the picture repeats (a blank safety-filter image).
        yield str(export_path), f"Done · {action} · seed {seed} · job {job}", str(export_path), current, seed

    def write_export(self, image: Image.Image, params: dict, job: int) -> Path:
        """PNG with the generation parameters embedded as PNG text chunks."""
        info = PngInfo()
        for key, value in params.items():
            info.add_text(key, value)
        path = self.export_dir / f"imagejourney-job{job}-{params['action']}.png"
        image.save(path, pnginfo=info)
        kept = sorted(self.export_dir.glob("imagejourney-job*.png"), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[: max(0, len(kept) - self.KEPT_EXPORTS)]:  # a bounded directory, cleaned as it goes
            old.unlink(missing_ok=True)
        return path

    # Event handlers ------------------------------------------------------------------------

    def on_generate(self, prompt, negative, seed, steps, size, guidance, aspect, current, request: gr.Request):
        yield from self.checked(
            "generate", prompt, negative, seed, (steps, size, guidance, aspect), current, session=request.session_hash
        )

    def on_reroll(self, prompt, negative, seed, steps, size, guidance, aspect, current, request: gr.Request):
        yield from self.checked(
            "reroll",
            prompt,
            negative,
            (seed or 0) + 1,
            (steps, size, guidance, aspect),
            current,
            session=request.session_hash,
        )

    def on_edit(
        self, edit_prompt, strength, mask, negative, seed, steps, size, guidance, aspect, current, request: gr.Request
    ):
        """Image-to-image of the current image, or inpainting of one region of it (mask)."""
        if not current:
            yield error_frame("edit", "generate or upload an image first, then edit it")
            return
        if strength is None or not 0.0 < strength <= 1.0:
            yield error_frame("edit", "edit strength must be above 0 and at most 1")
            return
        if mask != NO_MASK and mask not in MASK_REGIONS:
            yield error_frame("edit", f"unknown mask '{mask}'; choose {NO_MASK} or one of {', '.join(MASK_REGIONS)}")
            return
        yield from self.checked(
            "edit",
            edit_prompt,
            negative,
            seed,
            (steps, size, guidance, aspect),
            current,
            init_image=current["image"],
            strength=float(strength),
            mask_region=None if mask == NO_MASK else mask,
            session=request.session_hash,
        )

    def on_upload(self, path, current):
        """Make an uploaded image the current one, to edit it; bad files get one sentence."""
        image = read_upload(path)
        if isinstance(image, str):
            return error_frame("upload", image)
        job, times = self.next_job("upload")
        params = {
            "action": "upload",
            "source": Path(path).name,
            "size": f"{image.width}x{image.height}",
            "job": str(job),
        }
        export_path = self.write_export(image, params, job)
        times["export_written"] = times["final_produced"] = epoch_ms()
        history = [(image, "upload"), *(current or {}).get("history", [])][: self.HISTORY]
        current = {"image": image, "prompt": "", "seed": 0, "history": history}
        status = f"Done · upload · {image.width}×{image.height} px · job {job}"
        return str(export_path), status, str(export_path), current, gr.skip()

    def checked(self, action, prompt, negative, seed, ui_settings, current, **edit):
        """Validate the inputs; show one sentence in the status line when one is wrong."""
        settings = Settings.from_ui(*ui_settings)
        problem = (
            validate_prompt(prompt) or (settings if isinstance(settings, str) else None) or validate_negative(negative)
        )
        if problem:
            yield error_frame(action, problem)
            return
        if seed is not None and not (float(seed).is_integer() and 0 <= seed < MAX_SEED):
            yield error_frame(action, f"seed must be a whole number from 0 to {MAX_SEED - 1}, not {seed:g}")
            return
        history = (current or {}).get("history", [])
        yield from self.stream(
            action, prompt.strip(), int(seed or 0), settings, (negative or "").strip(), history, **edit
        )


def error_frame(action: str, problem: str):
    return gr.skip(), f"Error · {action} · {problem}", gr.skip(), gr.skip(), gr.skip()


def validate_prompt(prompt: str | None) -> str | None:
    if not prompt or not prompt.strip():
        return "the prompt is empty: type what you want to see"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"the prompt has {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}"
    return None


def read_upload(path: str | None) -> Image.Image | str:
    """The uploaded image (RGB), or one sentence saying what is wrong with the file. Checks the
    bytes, not the file name; the size limits hold before any pixel is decoded."""
    if not path:
        return "no file was uploaded; choose a PNG, JPEG or WebP image"
    size = Path(path).stat().st_size
    if size > UPLOAD_MAX_BYTES:
        return f"the uploaded file is {size / 2**20:.1f} MB; the limit is {UPLOAD_MAX_BYTES // 2**20} MB"
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError):
        return "the uploaded file is not an image; upload a PNG, JPEG or WebP image"
    if image.format not in UPLOAD_FORMATS:
        return f"the uploaded image is {image.format}; upload a PNG, JPEG or WebP image"
    low, high = UPLOAD_SIDE_RANGE
    if not (low <= image.width <= high and low <= image.height <= high):
        return f"the uploaded image is {image.width}×{image.height} px; each side must be {low} to {high} px"
    try:
        return image.convert("RGB")
    except OSError as exc:  # truncated or corrupt data
        return f"the uploaded image could not be read ({exc}); upload it again or export it anew"


def validate_negative(negative: str | None) -> str | None:
    if negative and len(negative) > MAX_PROMPT_CHARS:
        return f"the negative prompt has {len(negative)} characters; the limit is {MAX_PROMPT_CHARS}"
    return None


LIVE_CSS = """
#output-area { position: relative; }
#live-preview { position: absolute; inset: 0; z-index: 5; pointer-events: none; padding: 0; border: 0; background: none; }
#live-preview img { max-height: 100%; margin: 0 auto; object-fit: contain; image-rendering: pixelated; }
"""


def build_ui(app: ReferenceApp, output: str = "image") -> gr.Blocks:
    """The app's page; `output` "canvas" also draws the output on a canvas (canvas_output.py)."""
    from .canvas_output import CANVAS_HTML

    s = app.defaults
    with gr.Blocks(title="imagejourney reference app") as demo:
        gr.Markdown(
            f"### imagejourney reference app\nmodel `{app.model.name}` on {app.model.device} "
            f"({app.model.dtype}){' · random weights' if app.model.random_weights else ''} · "
            f"sampler {app.model.sampler}",
            elem_id="model-info",
        )
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt")
                negative = gr.Textbox(label="Negative prompt", elem_id="negative-prompt")
                with gr.Row():
                    seed = gr.Number(label="Seed", value=42, precision=0, elem_id="seed")
                    steps = gr.Number(label="Steps", value=s.steps, precision=0, elem_id="steps")
                    size = gr.Number(label="Size (px)", value=s.size, precision=0, elem_id="size")
                    guidance = gr.Number(label="Guidance", value=s.guidance, elem_id="guidance")
                aspect = gr.Radio(
                    list(ASPECTS),
                    value="1:1",
                    label="Aspect ratio (width:height; size is the long side)",
                    elem_id="aspect",
                )
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", elem_id="generate")
                    reroll = gr.Button("Reroll", elem_id="reroll")
                edit_prompt = gr.Textbox(label="Edit prompt", elem_id="edit-prompt")
                strength = gr.Slider(0.1, 1.0, value=0.6, step=0.05, label="Edit strength", elem_id="strength")
                mask = gr.Radio(
                    [NO_MASK, *MASK_REGIONS],
                    value=NO_MASK,
                    elem_id="mask",
                    label="Edit only this region (inpainting); none edits the whole image",
                )
                with gr.Row():
                    edit = gr.Button("Edit", elem_id="edit")
                    upload = gr.UploadButton("Upload image to edit", type="filepath", elem_id="upload")
            with gr.Column():
                if output == "canvas":
                    gr.HTML(CANVAS_HTML, elem_id="canvas-area")
                with gr.Column(elem_id="output-area"):  # live previews show over the output image
                    gr.HTML('<img alt="live preview" style="display: none">', elem_id="live-preview")
                    output = gr.Image(label="Output", type="pil", format="png", interactive=False, elem_id="output")
                status = gr.Markdown("Ready", elem_id="status")
                export = gr.DownloadButton("Export PNG", elem_id="export")
        history = gr.Gallery(label="History (newest first)", columns=6, height="auto", elem_id="history")
        current = gr.State(None)
        current.change(lambda c: (c or {}).get("history", []), current, history, show_progress="hidden")

        outputs = [output, status, export, current, seed]
        # Gradio runs every event at once; the app's own worker queue holds jobs until a model
        # copy is free, so the wait shows in the server times (inference start − request received).
        progress = dict(show_progress="hidden", concurrency_limit=None)
        settings = [negative, seed, steps, size, guidance, aspect, current]
        generate.click(app.on_generate, [prompt, *settings], outputs, **progress)
        prompt.submit(app.on_generate, [prompt, *settings], outputs, **progress)
        reroll.click(app.on_reroll, [prompt, *settings], outputs, **progress)
        edit.click(app.on_edit, [edit_prompt, strength, mask, *settings], outputs, **progress)
        upload.upload(app.on_upload, [upload, current], outputs, **progress)
    return demo
