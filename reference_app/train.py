"""Train the `portrait-world` reference model: a Stable Diffusion pipeline learnt from the portrait world.

Nothing can be downloaded here, so every part is trained in this repository, small enough for
a 2-core CPU: a word-level CLIP tokenizer (built, not learnt: one token per world word), then a
VAE (64 px images, 4× downsampling to 4×16×16 latents), then the CLIP text encoder and UNet
together (ε-prediction on SD's noise schedule, offset noise so backgrounds can be any colour,
min-SNR weighting, classifier-free guidance by dropping 10 % of prompts, EMA weights), then a
preview decoder: diffusers' AutoencoderTiny (TAESD's architecture) learnt from the VAE's
latents, saved in `<out>/taesd` for the app's `--preview-method taesd`. Prompts name a random
subset of each portrait's attributes, so unnamed attributes stay free, and vary their word
order, so that a word counts wherever it stands (see prompts_for).

Training is deterministic given its seed and resumable: every CHECKPOINT_EVERY steps the whole
state (weights, optimiser, EMA, random generators) goes to `<out>.checkpoint/state.pt`; a
resume may change --steps for a stage that has not started. The
result is `save_pretrained` into `<out>` (safetensors); an early copy goes to `<out>-early`.
"""

from __future__ import annotations

import copy
import json
import math
import string
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    DDPMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from tqdm.auto import tqdm
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from . import portrait_world as world

SIZE = 64
DEFAULT_STEPS = 8400  # the committed model: 600 VAE steps, 7,000 denoiser steps, 800 preview-decoder steps
VAE_STEPS = 600  # at most, and at most a quarter of --steps
DECODER_STEPS = 800  # at most, and at most an eighth of --steps: the rest trains the text encoder and UNet
VAE_CROP = 32  # the VAE is convolutional: it learns on 32 px crops, a quarter of the cost
EARLY_SHARE = 0.1  # of the denoiser's steps: when the early copy is saved
CHECKPOINT_EVERY = 250
IMAGES = 16000
PROMPT_DROP = 0.1
EDIT_PHRASING = 0.2
SHUFFLED = 0.3
OFFSET_NOISE = 0.1
MIN_SNR_GAMMA = 5.0
EMA_DECAY = 0.999
MAX_TOKENS = 32  # the world's longest prompt is 26 tokens


class TrainingError(Exception):
    """One sentence: why training cannot start or continue."""


def word_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose every world word is one token. The BPE merges compose each word
    letter by letter; a merge of another word can cut into a chain (`a n` inside "orange"), so
    each word still split gets a merge of its first two pieces until none is. Letters stay in
    the vocabulary, so free text still tokenizes (letter by letter)."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}

    def add(token):
        vocab.setdefault(token, len(vocab))

    for char in string.ascii_lowercase + string.digits + string.punctuation:
        add(char)
        add(char + "</w>")
    words = [*world.VOCABULARY, ","]
    merges = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        joined = pieces[0]
        for piece in pieces[1:]:
            if (joined, piece) not in merges:
                merges.append((joined, piece))
            joined += piece
            add(joined)
    while True:
        tokenizer = CLIPTokenizer(
            vocab=dict(vocab),
            merges=list(merges),  # type: ignore[arg-type]  # typed list[str]; it goes to tokenizers' BPE, which takes pairs
            model_max_length=MAX_TOKENS,
        )
        split = [tokenizer.tokenize(word) for word in words if len(tokenizer.tokenize(word)) > 1]
        if not split:
            return tokenizer
        for first, second, *_ in split:
            merges.append((first, second))
            add(first + second)


def build_models(vocab_size: int):
    """The three trained parts, at the shapes the time budget allows (parameters: see train log)."""
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=256,
            num_attention_heads=4,
            num_hidden_layers=3,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        norm_num_groups=16,
        sample_size=SIZE,
    )
    unet = UNet2DConditionModel(
        sample_size=SIZE // 4,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    return text_encoder, vae, unet


def build_preview_decoder() -> AutoencoderTiny:
    """TAESD's architecture at this VAE's 4× scale (3 blocks, so 2 up-samplings) and 32 channels:
    a 64 px preview decodes in about 5 ms on this CPU."""
    return AutoencoderTiny(
        encoder_block_out_channels=(32, 32, 32),
        decoder_block_out_channels=(32, 32, 32),
        num_encoder_blocks=(1, 1, 1),
        num_decoder_blocks=(1, 1, 1),
        latent_channels=4,
    )


def noise_schedule() -> DDPMScheduler:
    """SD's training schedule (scaled linear betas, 1000 steps, ε-prediction)."""
    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)


def sampler() -> EulerDiscreteScheduler:
    """The saved sampler: Euler from the last training timestep (trailing spacing), which few
    steps need."""
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        timestep_spacing="trailing",
        steps_offset=1,
    )


def draw_world(seed: int, count: int) -> tuple[torch.Tensor, list[dict]]:
    """`count` portraits (uint8, N×3×64×64) and their attributes, from `seed`."""
    images, attrs = np.empty((count, SIZE, SIZE, 3), np.uint8), []
    for index in tqdm(range(count), desc="drawing the world", unit="image", mininterval=2):
        image, attributes = world.portrait(seed * 1_000_003 + index, size=SIZE)
        images[index] = np.asarray(image)
        attrs.append(attributes)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), attrs


def prompts_for(attrs: list[dict], generator: torch.Generator) -> list[str]:
    """A prompt per portrait naming a random subset of its attributes (none for PROMPT_DROP of
    them). Of those naming two or more, EDIT_PHRASING say one of them last the way an edit does
    ("…, now with glasses") and SHUFFLED name them in a random order, each its own phrase: an
    attribute named late, as an edit names its change, then counts as much as one named early."""
    names = list(world.ATTRIBUTES)
    draws = torch.rand(len(attrs), len(names) + 2, generator=generator)
    orders = torch.rand(len(attrs), len(names), generator=generator).argsort(dim=1)
    prompts = []
    for attributes, row, order in zip(attrs, draws, orders):
        if row[0] < PROMPT_DROP:
            prompts.append("")
            continue
        keep = row[2:] < float(row[2:].mean()) * 1.2  # from none to all of them, a mean of about 60 %
        named = [names[i] for i in order.tolist() if keep[i]]  # in a random order
        style = float(row[1])
        if len(named) >= 2 and style < EDIT_PHRASING:
            changed, rest = named[-1], named[:-1]
            kept = world.describe({name: attributes[name] for name in rest})
            prompts.append(f"{kept}, {world.edit_clause(changed, attributes[changed])}")
        elif len(named) >= 2 and style < EDIT_PHRASING + SHUFFLED:
            phrases = [world.phrase(name, attributes[name]) for name in named]
            prompts.append(", ".join(["portrait of a person", *phrases]))
        else:
            prompts.append(world.describe({name: attributes[name] for name in named}))
    return prompts


def as_pixels(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


class EMA:
    """Exponential moving average of a model's parameters (the weights saved at the end)."""

    def __init__(self, model: torch.nn.Module):
        self.shadow = [p.detach().clone() for p in model.parameters()]

    def update(self, model: torch.nn.Module, decay: float) -> None:
        with torch.no_grad():
            for shadow, param in zip(self.shadow, model.parameters()):
                shadow.lerp_(param.detach(), 1.0 - decay)

    def copy_to(self, model: torch.nn.Module) -> None:
        with torch.no_grad():
            for shadow, param in zip(self.shadow, model.parameters()):
                param.copy_(shadow)


class Trainer:
    def __init__(self, out: Path, steps: int, seed: int, device: str, batch: int, images: int):
        self.out, self.seed, self.device, self.batch = Path(out), seed, device, batch
        self.vae_steps = max(1, min(VAE_STEPS, steps // 4))
        self.decoder_steps = max(1, min(DECODER_STEPS, steps // 8))
        self.denoiser_steps = max(1, steps - self.vae_steps - self.decoder_steps)
        self.early_step = max(1, round(self.denoiser_steps * EARLY_SHARE))
        self.checkpoint = Path(f"{self.out}.checkpoint") / "state.pt"
        self.images_count = images
        torch.manual_seed(seed)
        self.tokenizer = word_tokenizer()
        self.text_encoder, self.vae, self.unet = (m.to(device) for m in build_models(len(self.tokenizer)))
        self.generator = torch.Generator().manual_seed(seed)
        self.vae_optimizer = torch.optim.AdamW(self.vae.parameters(), lr=1e-3, weight_decay=0.0)
        denoiser_params = [*self.unet.parameters(), *self.text_encoder.parameters()]
        self.denoiser_optimizer = torch.optim.AdamW(denoiser_params, lr=4e-4, weight_decay=1e-2)
        self.ema_unet, self.ema_text = EMA(self.unet), EMA(self.text_encoder)
        # The preview decoder starts from its own seed and leaves the global generator as it
        # was: the stages before it train exactly as they did before it existed.
        with torch.random.fork_rng():
            torch.manual_seed(seed + 1)
            self.taesd = build_preview_decoder().to(device)
        self.taesd_optimizer = torch.optim.AdamW(self.taesd.parameters(), lr=1e-3, weight_decay=0.0)
        self.schedule = noise_schedule()
        self.vae_done = self.denoiser_done = self.decoder_done = 0
        # per stage: (step, mean loss of the last 50 steps)
        self.losses: dict[str, list[tuple[int, float]]] = {"vae": [], "denoiser": [], "preview_decoder": []}
        self.seconds = 0.0  # before this process: from the checkpoint
        self.started = time.perf_counter()
        self.latents: torch.Tensor | None = None

    # state -----------------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "seed": self.seed,
            "vae_steps": self.vae_steps,
            "denoiser_steps": self.denoiser_steps,
            "decoder_steps": self.decoder_steps,
            "vae_done": self.vae_done,
            "denoiser_done": self.denoiser_done,
            "decoder_done": self.decoder_done,
            "losses": self.losses,
            "seconds": self.elapsed(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "vae": self.vae.state_dict(),
            "unet": self.unet.state_dict(),
            "text_encoder": self.text_encoder.state_dict(),
            "taesd": self.taesd.state_dict(),
            "vae_optimizer": self.vae_optimizer.state_dict(),
            "denoiser_optimizer": self.denoiser_optimizer.state_dict(),
            "taesd_optimizer": self.taesd_optimizer.state_dict(),
            "ema_unet": self.ema_unet.shadow,
            "ema_text": self.ema_text.shadow,
            "scaling_factor": self.vae.config.scaling_factor,
        }

    def save_checkpoint(self) -> None:
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = self.checkpoint.with_suffix(".partial")
        torch.save(self.state(), partial)
        partial.replace(self.checkpoint)  # a kill while saving leaves the last good checkpoint

    def resume(self) -> None:
        if not self.checkpoint.is_file():
            raise TrainingError(f"--resume: no checkpoint at {self.checkpoint}; start without --resume")
        try:
            state = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        except Exception as exc:  # a truncated or foreign file: say which and what to do
            raise TrainingError(
                f"--resume: {self.checkpoint} is unreadable ({exc}); delete it and start again"
            ) from None
        # The plan of a stage not yet started may change: the run then equals a fresh one with
        # the new --steps (a stage's steps only draw from the generator once it runs). A
        # checkpoint from before the preview decoder existed resumes into that stage.
        state.setdefault("decoder_done", 0)
        plan = (state["vae_steps"], state["denoiser_steps"], state.get("decoder_steps", self.decoder_steps))
        started = (state["denoiser_done"] > 0 and plan[:2] != (self.vae_steps, self.denoiser_steps)) or (
            state["decoder_done"] > 0 and plan[2] != self.decoder_steps
        )
        if state["seed"] != self.seed or started or state["vae_done"] > self.vae_steps:
            raise TrainingError(
                f"--resume: {self.checkpoint} was started with another --seed or --steps "
                f"(seed {state['seed']}, steps {sum(plan)})"
            )
        for name in ("vae", "unet", "text_encoder", "vae_optimizer", "denoiser_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        if "taesd" in state:
            self.taesd.load_state_dict(state["taesd"])
            self.taesd_optimizer.load_state_dict(state["taesd_optimizer"])
        self.ema_unet.shadow, self.ema_text.shadow = state["ema_unet"], state["ema_text"]
        self.vae_done, self.denoiser_done = state["vae_done"], state["denoiser_done"]
        self.decoder_done = state["decoder_done"]
        self.losses, self.seconds = {"preview_decoder": [], **state["losses"]}, state["seconds"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.vae.register_to_config(scaling_factor=state["scaling_factor"])

    # stages ----------------------------------------------------------------------------------

    def batch_indices(self) -> torch.Tensor:
        return torch.randint(0, self.images_count, (self.batch,), generator=self.generator)

    def train_vae(self, images: torch.Tensor) -> None:
        """Reconstruction (L1 + MSE) with a tiny KL term, as SD's VAE, on random crops."""
        self.vae.train()
        bar = tqdm(total=self.vae_steps, initial=self.vae_done, desc="VAE", unit="step", mininterval=2)
        window = []
        while self.vae_done < self.vae_steps:
            top, left = torch.randint(0, SIZE - VAE_CROP + 1, (2,), generator=self.generator).tolist()
            crop = images[self.batch_indices(), :, top : top + VAE_CROP, left : left + VAE_CROP]
            pixels = as_pixels(crop).to(self.device)
            flip = torch.rand(len(pixels), generator=self.generator) < 0.5
            pixels[flip] = pixels[flip].flip(-1)
            posterior = self.vae.encode(pixels).latent_dist
            decoded = self.vae.decode(posterior.sample()).sample
            kl = posterior.kl().mean() / pixels[0].numel()
            loss = F.l1_loss(decoded, pixels) + F.mse_loss(decoded, pixels) + 1e-4 * kl
            self.vae_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.vae_optimizer.step()
            self.vae_done += 1
            window.append(loss.item())
            self.after_step("vae", self.vae_done, window, bar)
        bar.close()

    def encode_all(self, images: torch.Tensor) -> torch.Tensor:
        """Every portrait's latent (the posterior's mean), and the VAE's scaling_factor set so the
        scaled latents have unit standard deviation, as SD's 0.18215 does for its VAE."""
        self.vae.eval()
        with torch.inference_mode():
            latents = torch.cat(
                [
                    self.vae.encode(as_pixels(chunk).to(self.device)).latent_dist.mean.cpu()
                    for chunk in tqdm(images.split(256), desc="encoding", unit="batch", mininterval=2)
                ]
            )
        self.vae.register_to_config(scaling_factor=float(1.0 / latents.std()))
        return latents * self.vae.config.scaling_factor

    def train_denoiser(self, latents: torch.Tensor, attrs: list[dict]) -> None:
        self.unet.train()
        self.text_encoder.train()
        alphas = self.schedule.alphas_cumprod
        snr = alphas / (1 - alphas)
        bar = tqdm(
            total=self.denoiser_steps,
            initial=self.denoiser_done,
            desc="UNet + text encoder",
            unit="step",
            mininterval=2,
        )
        window = []
        while self.denoiser_done < self.denoiser_steps:
            indices = self.batch_indices()
            clean = latents[indices].to(self.device)
            prompts = prompts_for([attrs[i] for i in indices], self.generator)
            ids = self.tokenizer(
                prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
            ).input_ids.to(self.device)
            noise = torch.randn(clean.shape, generator=self.generator)
            noise += OFFSET_NOISE * torch.randn(clean.shape[:2] + (1, 1), generator=self.generator)
            noise = noise.to(self.device)
            timesteps = torch.randint(0, 1000, (len(clean),), generator=self.generator)
            noisy = self.schedule.add_noise(clean, noise, timesteps.to(self.device))
            states = self.text_encoder(ids).last_hidden_state
            predicted = self.unet(noisy, timesteps.to(self.device), encoder_hidden_states=states).sample
            weight = (torch.clamp(snr[timesteps], max=MIN_SNR_GAMMA) / snr[timesteps]).to(self.device)
            loss = (weight * F.mse_loss(predicted, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
            self.denoiser_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*self.unet.parameters(), *self.text_encoder.parameters()], 1.0)
            for group in self.denoiser_optimizer.param_groups:  # 200 steps of warm-up, then cosine to 10 %
                group["lr"] = 4e-4 * lr_factor(self.denoiser_done, self.denoiser_steps)
            self.denoiser_optimizer.step()
            self.denoiser_done += 1
            decay = min(EMA_DECAY, (1 + self.denoiser_done) / (10 + self.denoiser_done))
            self.ema_unet.update(self.unet, decay)
            self.ema_text.update(self.text_encoder, decay)
            window.append(loss.item())
            self.after_step("denoiser", self.denoiser_done, window, bar)
            if self.denoiser_done == self.early_step:
                self.save_pipeline(Path(f"{self.out}-early"))
        bar.close()

    def train_preview_decoder(self, images: torch.Tensor, latents: torch.Tensor) -> None:
        """TAESD-style: the decoder learns scaled latents → pixels (L1 + MSE), the encoder
        pixels → scaled latents (MSE), on the VAE's crop size (a 32 px crop is 8×8 latents)."""
        self.taesd.train()
        bar = tqdm(
            total=self.decoder_steps, initial=self.decoder_done, desc="preview decoder", unit="step", mininterval=2
        )
        window = []
        size = VAE_CROP // 4
        while self.decoder_done < self.decoder_steps:
            top, left = torch.randint(0, (SIZE - VAE_CROP) // 4 + 1, (2,), generator=self.generator).tolist()
            indices = self.batch_indices()
            latent = latents[indices, :, top : top + size, left : left + size].to(self.device)
            crop = images[indices, :, 4 * top : 4 * top + VAE_CROP, 4 * left : 4 * left + VAE_CROP]
            pixels = as_pixels(crop).to(self.device)
            decoded = self.taesd.decoder(latent)
            loss = (
                F.l1_loss(decoded, pixels)
                + F.mse_loss(decoded, pixels)
                + F.mse_loss(self.taesd.encoder(pixels), latent)
            )
            self.taesd_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.taesd_optimizer.step()
            self.decoder_done += 1
            window.append(loss.item())
            self.after_step("preview_decoder", self.decoder_done, window, bar)
        bar.close()

    def elapsed(self) -> float:
        """Seconds of training so far, drawing and encoding included, over every resume."""
        return self.seconds + time.perf_counter() - self.started

    def after_step(self, stage: str, done: int, window: list, bar) -> None:
        bar.update(1)
        total = {"vae": self.vae_steps, "denoiser": self.denoiser_steps, "preview_decoder": self.decoder_steps}[stage]
        if len(window) == 50 or done == total:
            self.losses[stage].append((done, float(np.mean(window))))
            bar.set_postfix(loss=f"{np.mean(window):.4f}")
            window.clear()
        if done % CHECKPOINT_EVERY == 0 or done == total:
            self.save_checkpoint()

    # output ----------------------------------------------------------------------------------

    def pipeline(self) -> StableDiffusionPipeline:
        """The pipeline with the EMA weights (the training weights are left as they are)."""
        text_encoder, _, unet = build_models(len(self.tokenizer))
        text_encoder.load_state_dict(self.text_encoder.state_dict())
        unet.load_state_dict(self.unet.state_dict())
        self.ema_text.copy_to(text_encoder)
        self.ema_unet.copy_to(unet)
        return StableDiffusionPipeline(
            vae=copy.deepcopy(self.vae),
            text_encoder=text_encoder.eval(),
            tokenizer=self.tokenizer,
            unet=unet.eval(),
            scheduler=sampler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )

    def save_pipeline(self, directory: Path) -> None:
        """`save_pretrained` in float16 (half the bytes; loading casts back), with the preview
        decoder in `taesd/` once it is trained, plus the training record."""
        pipe = self.pipeline().to(torch.float16)
        pipe.save_pretrained(directory, safe_serialization=True)
        if self.decoder_done == self.decoder_steps:
            copy.deepcopy(self.taesd).eval().half().save_pretrained(directory / "taesd")
        record = {
            "seed": self.seed,
            "steps": {"vae": self.vae_done, "denoiser": self.denoiser_done, "preview_decoder": self.decoder_done},
            "planned_steps": {
                "vae": self.vae_steps,
                "denoiser": self.denoiser_steps,
                "preview_decoder": self.decoder_steps,
            },
            "batch": self.batch,
            "images": self.images_count,
            "size": SIZE,
            "device": self.device,
            "train_minutes": round(self.elapsed() / 60, 1),
            "losses": self.losses,
        }
        if self.latents is not None:
            record["latent_rgb"] = latent_rgb_factors(self.latents, self.images)
        (directory / "training.json").write_text(json.dumps(record, indent=1) + "\n")

    def run(self) -> None:
        self.started = time.perf_counter()
        self.images, attrs = draw_world(self.seed, self.images_count)
        if self.vae_done < self.vae_steps:
            self.train_vae(self.images)
        self.latents = self.encode_all(self.images) if self.latents is None else self.latents
        if self.denoiser_done < self.denoiser_steps:
            self.train_denoiser(self.latents, attrs)
        if self.decoder_done < self.decoder_steps:
            self.train_preview_decoder(self.images, self.latents)
        self.save_pipeline(self.out)


def lr_factor(step: int, total: int, warmup: int = 200) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def latent_rgb_factors(latents: torch.Tensor, images: torch.Tensor) -> dict:
    """Least-squares map from a scaled latent pixel (4 values and 1) to the RGB of the 4×4
    image patch it stands for: the linear preview of this VAE, as LATENT_RGB_FACTORS is SD's."""
    x = latents[:2000].permute(0, 2, 3, 1).reshape(-1, 4)
    y = F.avg_pool2d(as_pixels(images[:2000]), 4).permute(0, 2, 3, 1).reshape(-1, 3)
    solution = torch.linalg.lstsq(torch.cat([x, torch.ones(len(x), 1)], 1), y).solution
    return {"factors": solution[:4].tolist(), "bias": solution[4].tolist()}


def train_reference(
    out: Path,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    resume: bool = False,
    device: str = "auto",
    batch: int = 64,
    images: int = IMAGES,
) -> Path:
    """Train (or with `resume`, continue) and save the pipeline into `out`; returns `out`."""
    if steps < 3:
        raise TrainingError(
            f"--steps must be at least 3 (one step for each stage: VAE, denoiser, preview decoder), not {steps}"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = Trainer(out, steps, seed, device, batch, images)
    if resume:
        trainer.resume()
    trainer.run()
    return Path(out)
