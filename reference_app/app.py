"""The Gradio UI of the reference app: prompt → Generate / Reroll / Edit → Export.

Every action streams one preview per denoising step into the output image, then the final.
The status line under the image says when an action is done (`Done · <action> · seed N ·
job N`) or failed (`Error · …`); the imagejourney UI profile for this app keys on it.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .pipeline import LoadedModel, run_diffusion

MAX_PROMPT_CHARS = 1000


@dataclass
class Settings:
    steps: int
    size: int
    guidance: float


class ReferenceApp:
    def __init__(self, model: LoadedModel, settings: Settings):
        self.model = model
        self.settings = settings
        self.export_dir = Path(tempfile.mkdtemp(prefix="imagejourney-exports-"))
        self.job_counter = 0
        self.lock = threading.Lock()  # one job on the model at a time

    def next_job(self) -> int:
        with self.lock:
            self.job_counter += 1
            return self.job_counter

    def stream(self, action: str, prompt: str, seed: int, init_image=None, strength=0.6):
        """Yield (image, status, export_path, current, seed) tuples: previews, then the final."""
        job = self.next_job()
        previews: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work():
            try:
                with self.lock:
                    outcome["image"] = run_diffusion(
                        self.model,
                        prompt=prompt,
                        seed=seed,
                        steps=self.settings.steps,
                        size=self.settings.size,
                        guidance=self.settings.guidance,
                        on_preview=previews.put,
                        init_image=init_image,
                        strength=strength,
                    )
            except Exception as exc:  # shown in the UI, the server keeps serving
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                previews.put(None)

        threading.Thread(target=work, daemon=True).start()
        step = 0
        while (preview := previews.get()) is not None:
            step += 1
            status = f"Working · {action} · step {step}/{self.settings.steps} · job {job}"
            yield preview, status, gr.skip(), gr.skip(), gr.skip()
        if "error" in outcome:
            yield gr.skip(), f"Error · {action} · {outcome['error']} · job {job}", gr.skip(), gr.skip(), gr.skip()
            return
        image = outcome["image"]
        params = {
            "prompt": prompt,
            "negative_prompt": "",
            "seed": str(seed),
            "steps": str(self.settings.steps),
            "guidance": str(self.settings.guidance),
            "size": f"{self.settings.size}x{self.settings.size}",
            "model": self.model.name,
            "sampler": self.model.sampler,
            "action": action,
        }
        if init_image is not None:
            params["strength"] = str(strength)
        export_path = self.write_export(image, params, job)
        current = {"image": image, "prompt": prompt, "seed": seed}
        yield image, f"Done · {action} · seed {seed} · job {job}", str(export_path), current, seed

    def write_export(self, image: Image.Image, params: dict, job: int) -> Path:
        """PNG with the generation parameters embedded as PNG text chunks."""
        info = PngInfo()
        for key, value in params.items():
            info.add_text(key, value)
        path = self.export_dir / f"imagejourney-job{job}-seed{params['seed']}.png"
        image.save(path, pnginfo=info)
        return path

    # Event handlers ------------------------------------------------------------------------

    def on_generate(self, prompt, seed, current):
        problem = validate_prompt(prompt)
        if problem:
            yield gr.skip(), f"Error · generate · {problem}", gr.skip(), gr.skip(), gr.skip()
            return
        yield from self.stream("generate", prompt.strip(), int(seed or 0))

    def on_reroll(self, prompt, seed, current):
        problem = validate_prompt(prompt)
        if problem:
            yield gr.skip(), f"Error · reroll · {problem}", gr.skip(), gr.skip(), gr.skip()
            return
        yield from self.stream("reroll", prompt.strip(), int(seed or 0) + 1)

    def on_edit(self, edit_prompt, strength, seed, current):
        if not current:
            yield gr.skip(), "Error · edit · generate an image first, then edit it", gr.skip(), gr.skip(), gr.skip()
            return
        problem = validate_prompt(edit_prompt)
        if problem:
            yield gr.skip(), f"Error · edit · {problem}", gr.skip(), gr.skip(), gr.skip()
            return
        yield from self.stream(
            "edit", edit_prompt.strip(), int(seed or 0), init_image=current["image"], strength=float(strength)
        )


def validate_prompt(prompt: str | None) -> str | None:
    if not prompt or not prompt.strip():
        return "the prompt is empty: type what you want to see"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"the prompt has {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}"
    return None


def build_ui(app: ReferenceApp) -> gr.Blocks:
    s = app.settings
    with gr.Blocks(title="imagejourney reference app") as demo:
        gr.Markdown(
            f"### imagejourney reference app\nmodel `{app.model.name}` on {app.model.device} "
            f"({app.model.dtype}){' · random weights' if app.model.random_weights else ''} · "
            f"{s.steps} steps · {s.size}×{s.size}",
            elem_id="model-info",
        )
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt")
                seed = gr.Number(label="Seed", value=42, precision=0, elem_id="seed")
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", elem_id="generate")
                    reroll = gr.Button("Reroll", elem_id="reroll")
                edit_prompt = gr.Textbox(label="Edit prompt", elem_id="edit-prompt")
                strength = gr.Slider(0.1, 1.0, value=0.6, step=0.05, label="Edit strength", elem_id="strength")
                edit = gr.Button("Edit", elem_id="edit")
            with gr.Column():
                output = gr.Image(
                    label="Output", type="pil", format="png", interactive=False, elem_id="output", height=s.size + 64
                )
                status = gr.Markdown("Ready", elem_id="status")
                export = gr.DownloadButton("Export PNG", elem_id="export")
        current = gr.State(None)

        outputs = [output, status, export, current, seed]
        progress = dict(show_progress="hidden")
        generate.click(app.on_generate, [prompt, seed, current], outputs, **progress)
        prompt.submit(app.on_generate, [prompt, seed, current], outputs, **progress)
        reroll.click(app.on_reroll, [prompt, seed, current], outputs, **progress)
        edit.click(app.on_edit, [edit_prompt, strength, seed, current], outputs, **progress)
    return demo
