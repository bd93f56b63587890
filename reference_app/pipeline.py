"""The diffusion side of the reference app: load or build a pipeline, generate with previews.

The default model is `portrait-world`: a small Stable Diffusion pipeline trained in this
repository on the portrait world (reference_app/portrait_world.py, reference_app/train.py),
committed under reference_app/models/. It draws recognisable portraits on a CPU in well under
a second. `tiny` is the same architecture family shrunk down with random weights and a CLIP
tokenizer built in memory: noise-like images, but every code path (text encoder, UNet
denoising loop, VAE decode, img2img), for the tests of the UI, the previews and the timings.
"""

from __future__ import annotations

import contextlib
import functools
import json
import string
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    AutoPipelineForImage2Image,
    AutoPipelineForInpainting,
    AutoPipelineForText2Image,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from PIL import Image, ImageDraw, ImageOps
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

# Linear approximation of the SD 1.x VAE decoder: latent channels (4) -> RGB. Good enough to
# show a creator the composition forming; needs no weights.
LATENT_RGB_FACTORS = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)


MODELS_DIR = Path(__file__).parent / "models"
# The models trained here, by name: committed pipeline directories (see reference_app/train.py).
TRAINED_MODELS = ("portrait-world", "portrait-world-early")
TRAINED_FILES = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/tokenizer.json",
    "text_encoder/model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
)


class ModelNotAvailable(Exception):
    """Raised with one sentence naming what is missing and how to get it."""


@dataclass
class LoadedModel:
    text2img: DiffusionPipeline
    img2img: DiffusionPipeline
    inpaint: DiffusionPipeline
    name: str
    device: str
    dtype: str
    sampler: str
    random_weights: bool
    preview_method: str = "latent-rgb"  # or "taesd"
    taesd: AutoencoderTiny | None = None
    latent_rgb: tuple | None = None  # (4×3 factors, 3 biases) of this VAE's linear preview; None: SD's


def tiny_clip_tokenizer():
    """A CLIP tokenizer built in memory: characters as tokens, no merges, 77 positions."""
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
        vocab[symbol + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def sd_vae(block_out_channels, layers_per_block: int, norm_num_groups: int, sample_size: int) -> AutoencoderKL:
    """Stable Diffusion's VAE shape (four blocks: 8× downsampling, 4 latent channels), random."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=block_out_channels,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups,
        sample_size=sample_size,
    )


def euler_scheduler(**spacing) -> EulerDiscreteScheduler:
    """SD's noise schedule with the Euler sampler; `spacing` picks how timesteps are spaced."""
    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, **spacing
    )


def build_tiny_pipeline(device: str = "cpu"):
    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    # Four blocks so the VAE downsamples by 8, like SD: a 128 px image has a 16 px latent.
    vae = sd_vae((8, 16, 16, 16), layers_per_block=1, norm_num_groups=8, sample_size=128)
    scheduler = euler_scheduler(steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe.to(device)


# The real Stable Diffusion architectures, for realistic compute cost with random weights and
# no download: SD 1.5 (CLIP ViT-L text encoder) and SD-Turbo (SD 2.1: OpenCLIP ViT-H text
# encoder, linear attention projections, trailing timesteps).
class Architecture(TypedDict):
    """Keyword arguments of each part: UNet2DConditionModel, CLIPTextConfig, euler_scheduler."""

    unet: dict[str, Any]
    text: dict[str, Any]
    scheduler: dict[str, Any]


ARCHITECTURES: dict[str, Architecture] = {
    "sd15-random": {
        "unet": dict(cross_attention_dim=768, attention_head_dim=8),
        "text": dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            hidden_act="quick_gelu",
        ),
        "scheduler": dict(timestep_spacing="leading", steps_offset=1),
    },
    "sd-turbo-random": {
        "unet": dict(cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True),
        "text": dict(
            hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16, hidden_act="gelu"
        ),
        "scheduler": dict(timestep_spacing="trailing"),
    },
}


def sd_models(name: str):
    """UNet (~860M parameters), text encoder and VAE of a full-size SD architecture, random."""
    arch = ARCHITECTURES[name]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, **arch["unet"])  # diffusers' defaults are SD's UNet
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **arch["text"]))
    vae = sd_vae((128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, sample_size=512)
    return unet, text_encoder, vae


def build_sd_architecture(name: str, device: str = "cpu", dtype=torch.float32):
    """A full-size SD pipeline with random weights: real compute, noise images. The tokenizer
    is the in-memory one; token ids only need to be in range."""
    arch = ARCHITECTURES[name]
    unet, text_encoder, vae = sd_models(name)
    scheduler = euler_scheduler(**arch["scheduler"])
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe.to(device, dtype)


def load_trained(name: str, device: str, dtype) -> tuple[StableDiffusionPipeline, tuple | None]:
    """A committed model trained here, and its linear-preview factors. A missing or unreadable
    file is one sentence naming it and the command that rebuilds the model."""
    from safetensors import safe_open

    directory = MODELS_DIR / name
    rebuild = f"rebuild it with: imagejourney train-reference --out {directory}"
    for file in TRAINED_FILES:
        path = directory / file
        if not path.is_file():
            raise ModelNotAvailable(f"model '{name}': {path} is missing; {rebuild}")
        if path.suffix == ".safetensors":
            try:
                with safe_open(str(path), "pt") as weights:
                    weights.keys()
            except Exception as exc:  # truncated or not safetensors at all
                raise ModelNotAvailable(
                    f"model '{name}': {path} is corrupt ({str(exc).splitlines()[0]}); {rebuild}"
                ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = StableDiffusionPipeline.from_pretrained(
                directory, torch_dtype=dtype, local_files_only=True, safety_checker=None, requires_safety_checker=False
            )
    except Exception as exc:  # a config or tensor that does not fit: the folder is not what train-reference wrote
        raise ModelNotAvailable(
            f"model '{name}': {directory} does not load ({str(exc).splitlines()[0]}); {rebuild}"
        ) from None
    try:
        latent_rgb = json.loads((directory / "training.json").read_text())["latent_rgb"]
        factors = (torch.tensor(latent_rgb["factors"]), torch.tensor(latent_rgb["bias"]))
    except (OSError, ValueError, KeyError):
        factors = None  # previews fall back to SD's factors
    return pipe.to(device), factors


@contextlib.contextmanager
def quiet_loading():
    """Loading local weights, without diffusers' and transformers' advice and progress bars
    (install accelerate, config keys they wrote themselves): a failure still raises."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(levels[0])
        transformers_logging.set_verbosity(levels[1])
        for library in (diffusers_logging, transformers_logging):
            library.enable_progress_bar()


def load_model(
    model: str = "portrait-world", device: str = "auto", taesd: str | None = None, preview_method: str = "latent-rgb"
) -> LoadedModel:
    """`portrait-world` (and `portrait-world-early`, an early checkpoint of it) loads the model
    trained here; `tiny` builds the random tiny pipeline, `sd15-random` / `sd-turbo-random` the
    real architectures with random weights; anything else is a local diffusers directory or a
    Hugging Face id already in the local cache (never downloaded at run time).

    Previews are linear (`latent-rgb`) unless `preview_method` is `taesd` or a `taesd` directory
    is given; `taesd` alone uses the preview decoder trained with the model (portrait-world's
    `taesd/`), as ComfyUI's --preview-method taesd finds its own decoder."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    with quiet_loading():
        latent_rgb = None
        if model in TRAINED_MODELS:
            text2img, latent_rgb = load_trained(model, device, dtype)
            random_weights = False
        elif model == "tiny":
            text2img = build_tiny_pipeline(device)
            random_weights = True
        elif model in ARCHITECTURES:
            text2img = build_sd_architecture(model, device, dtype)
            random_weights = True
        elif model.startswith(("/", ".", "~")) and not Path(model).expanduser().is_dir():
            raise ModelNotAvailable(
                f"model directory '{model}' does not exist; pass a local diffusers directory "
                "(one with model_index.json) with --model, or --model tiny"
            )
        else:
            try:
                with warnings.catch_warnings():  # huggingface_hub's deprecation notes are not for our users
                    warnings.simplefilter("ignore", UserWarning)
                    text2img = AutoPipelineForText2Image.from_pretrained(
                        model, torch_dtype=dtype, local_files_only=True, safety_checker=None
                    ).to(device)
            except (OSError, ValueError) as exc:
                raise ModelNotAvailable(
                    f"model '{model}' is not available locally ({str(exc).splitlines()[0]}); "
                    "pass a local diffusers directory with --model, or --model portrait-world (or tiny)"
                ) from None
            random_weights = False
        text2img.set_progress_bar_config(disable=True)
        img2img = AutoPipelineForImage2Image.from_pipe(text2img)
        img2img.set_progress_bar_config(disable=True)
        inpaint = AutoPipelineForInpainting.from_pipe(text2img)
        inpaint.set_progress_bar_config(disable=True)
        tiny_vae = None
        if preview_method == "taesd" and not taesd:
            taesd = str(own_taesd(model))
        if taesd:
            try:
                tiny_vae = AutoencoderTiny.from_pretrained(taesd, torch_dtype=dtype, local_files_only=True).to(device)
            except (OSError, ValueError) as exc:
                raise ModelNotAvailable(
                    f"TAESD previews: '{taesd}' is not a local AutoencoderTiny directory ({str(exc).splitlines()[0]}); "
                    "save one with AutoencoderTiny.save_pretrained(DIR), or leave out --taesd for the linear previews"
                ) from None
        return LoadedModel(
            text2img=text2img,
            img2img=img2img,
            inpaint=inpaint,
            name=model,
            device=device,
            dtype=str(dtype).removeprefix("torch."),
            sampler=type(text2img.scheduler).__name__,
            random_weights=random_weights,
            preview_method="taesd" if tiny_vae is not None else "latent-rgb",
            taesd=tiny_vae,
            latent_rgb=latent_rgb,
        )


def own_taesd(model: str) -> Path:
    """The preview decoder trained with a model here; one sentence when there is none."""
    directory = MODELS_DIR / model / "taesd"
    if model != "portrait-world":  # the early copy is saved before the decoder trains
        raise ModelNotAvailable(
            f"--preview-method taesd: model '{model}' has no preview decoder trained with it; "
            "pass a local AutoencoderTiny directory with --taesd DIR, or use --preview-method latent-rgb"
        )
    weights = directory / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise ModelNotAvailable(
            f"--preview-method taesd: model '{model}' has no preview decoder ({weights} is missing); "
            f"rebuild it with: imagejourney train-reference --out {MODELS_DIR / model}, "
            "or use --preview-method latent-rgb"
        )
    return directory


def preview_image(model: LoadedModel, latents: torch.Tensor) -> Image.Image:
    """One preview of the current latents at the resolution it really has: TAESD (a tiny
    learned decoder, full size) when loaded, else the linear approximation (latent size, 1/8 of
    the image: the page scales it up, which costs nothing to send)."""
    if model.taesd is None:
        return latents_to_preview(latents, model.latent_rgb)
    with torch.inference_mode():
        pixels = model.taesd.decode(latents.to(model.taesd.dtype)).sample[0]
    array = ((pixels.float().clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def latents_to_preview(latents: torch.Tensor, latent_rgb: tuple | None = None) -> Image.Image:
    """Cheap preview of one latent (1×4×h×w) as an RGB image of the latent's size (no VAE):
    `latent_rgb` (factors, bias) fitted for the model's VAE, else SD's LATENT_RGB_FACTORS."""
    if latent_rgb is None:
        rgb = latents[0].float().permute(1, 2, 0).cpu() @ LATENT_RGB_FACTORS
    else:
        factors, bias = latent_rgb
        rgb = latents[0].float().permute(1, 2, 0).cpu() @ factors + bias
    pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


# Inpainting masks by region: white is repainted, black is kept. (x0, y0, x1, y1) as shares of
# the side; "background" is everything but "center".
MASK_REGIONS = {
    "center": (0.25, 0.25, 0.75, 0.75),
    "top": (0.0, 0.0, 1.0, 0.5),
    "bottom": (0.0, 0.5, 1.0, 1.0),
    "left": (0.0, 0.0, 0.5, 1.0),
    "right": (0.5, 0.0, 1.0, 1.0),
    "background": (0.25, 0.25, 0.75, 0.75),
}


def region_mask(region: str, width: int, height: int) -> Image.Image:
    """The inpainting mask ("L", width × height) of one of MASK_REGIONS."""
    left, top, right, bottom = MASK_REGIONS[region]
    x0, y0, x1, y1 = round(left * width), round(top * height), round(right * width), round(bottom * height)
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
    return ImageOps.invert(mask) if region == "background" else mask


def run_diffusion(
    model: LoadedModel,
    *,
    prompt: str,
    seed: int,
    steps: int,
    width: int,
    height: int,
    guidance: float,
    negative_prompt: str = "",
    on_preview: Callable[[Image.Image], None],
    init_image: Image.Image | None = None,
    strength: float = 0.6,
    mask_region: str | None = None,
) -> Image.Image:
    """Text-to-image; image-to-image when `init_image` is given; inpainting of `mask_region` of
    it when that is given too. `on_preview` gets one preview image per denoising step (see
    preview_image for its size). Returns the final."""

    def step_end(pipe, step, timestep, callback_kwargs):
        on_preview(preview_image(model, callback_kwargs["latents"]))
        return callback_kwargs

    generator = torch.Generator(device="cpu").manual_seed(seed)
    common = dict(
        prompt=prompt,
        negative_prompt=negative_prompt or None,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=generator,
        callback_on_step_end=step_end,
        callback_on_step_end_tensor_inputs=["latents"],
    )
    with torch.inference_mode():
        if init_image is None:
            return model.text2img(height=height, width=width, **common).images[0]
        source = ImageOps.fit(init_image.convert("RGB"), (width, height))  # centre crop, no distortion
        if mask_region is None:
            return model.img2img(image=source, strength=strength, **common).images[0]
        mask = region_mask(mask_region, width, height)
        painted = model.inpaint(
            image=source, mask_image=mask, height=height, width=width, strength=strength, **common
        ).images[0]
    # Like real inpainting UIs, paste the repainted region over the source: the VAE round trip
    # would otherwise change the pixels the creator asked to keep.
    return Image.composite(painted, source, mask)


def warm_up(model: LoadedModel, size: int) -> None:
    """One tiny text-to-image, image-to-image and inpainting run, so the first creator action
    does not pay for lazy initialisation (kernels, allocator, scheduler tables)."""
    square = functools.partial(
        run_diffusion,
        model,
        prompt="warm up",
        seed=0,
        steps=2,
        width=size,
        height=size,
        guidance=0.0,
        on_preview=lambda p: None,
    )
    image = square()
    square(init_image=image, strength=1.0)
    square(init_image=image, strength=1.0, mask_region="center")
