"""JUDGES: audits over a run's saved images, with no browser (DESIGN.md, "judge").

`judge_run` reads the run directory, computes every judge it can and writes judgements.csv:
one row per image × judge (`image, judge, value, model, calibrated`). A judge that cannot run
(no CLIP model on this machine) gets one row per image with an empty value and the reason in
`model`, so the report says "not judged" instead of passing silently. Judging twice gives the
same figures: LPIPS with a random backbone is built from a fixed seed.

    pixel_std              grey-level standard deviation (0–255) of a final; below images.BLANK_PIXEL_STD
                           the final is one flat colour (a safety filter's black image): never useful
    reroll_diversity       mean LPIPS from a generate/reroll final to the other generate/reroll
                           finals of its journey run (low: rerolls are near-copies)
    edit_consistency       LPIPS between an edit's final and its source (the final shown before it)
    edit_outside_mask_max  masked edits: the largest change outside the mask (grey levels 0–255)
    edit_inside_mask_mean  masked edits: the mean change inside the mask (grey levels 0–255)
    same_seed_lpips        LPIPS between a `repeat` final and the final it repeats (> audits.quality.SAME_SEED_LIMIT: flagged)
    drift_vs_baseline      LPIPS between a final and the baseline run's final for the same prompt,
                           seed and action
    clip_score             cosine similarity of CLIP's image and prompt embeddings
    prompt_match           portrait-world models only (else "not judged: out of domain"): the mean
                           probability, by a CNN trained on the world, that each attribute the prompt
                           names is present; `prompt_match:<attribute>` rows keep each one, the model
                           column what was asked and seen (reports/prompt_match.py)
    visual_progress        of each kept preview: 1 − LPIPS(preview, final) / LPIPS(first preview,
                           final), clipped to [0, 1] (0: as far as the first image shown, 1: the final)
    time_to_recognisable_preview_ms   of an action's final: click → first preview whose LPIPS to
                           the final is at most the pack's recognisable_lpips (0.3 unless set); the
                           final itself when no preview is that close
    generation_speed_index_ms         of an action's final: ∫ (1 − visual progress) dt from click to
                           final paint, progress a step function of the previews painted (Speed
                           Index for one generation: lower is better)
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .images import pixel_std
from .prompt_match import judge_finals as judge_prompt_match
from .run import CANDIDATE_ACTIONS, load_run

JUDGEMENT_COLUMNS = ["image", "judge", "value", "model", "calibrated"]
LPIPS_NETS = ("alex", "vgg", "squeeze")
LPIPS_UNCALIBRATED = "LPIPS uncalibrated (backbone weights not available)"


class JudgeUnavailable(Exception):
    """One sentence: why a judge cannot run here."""


# LPIPS ---------------------------------------------------------------------------------------


def backbone_checkpoint(net: str) -> Path:
    """Where torchvision keeps the ImageNet backbone LPIPS builds on (torch hub cache, TORCH_HOME)."""
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights

    weights = {"alex": AlexNet_Weights, "vgg": VGG16_Weights, "squeeze": SqueezeNet1_1_Weights}[net].IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


DOWNLOAD_TIMEOUT_S = 30  # per connection and read: a network that drops packets is told, not waited on
BACKBONE_UNAVAILABLE: set[str] = set()  # backbones that could not be had in this process: not tried again


@contextlib.contextmanager
def socket_timeout(seconds: float):
    """A default socket timeout while downloading (torch hub's urlopen sets none), unless one is set."""
    import socket

    before = socket.getdefaulttimeout()
    if before is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


class LPIPS:
    """LPIPS distances with the `lpips` package, batched. The backbone is pretrained the way
    `lpips` and torchvision load it: from the torch hub cache (TORCH_HOME), downloaded into it
    when missing. Where it cannot be had (offline, with an empty cache) it is random (seeded)
    and every value is labelled uncalibrated: fine for plumbing, meaningless as a perceptual
    distance."""

    def __init__(self, net: str = "alex"):
        if net not in LPIPS_NETS:
            raise JudgeUnavailable(f"unknown LPIPS network '{net}'; use one of {', '.join(LPIPS_NETS)}")
        model: torch.nn.Module | None = None
        if net not in BACKBONE_UNAVAILABLE or backbone_checkpoint(net).is_file():
            try:
                with socket_timeout(DOWNLOAD_TIMEOUT_S):
                    model = build_lpips(net, pretrained_backbone=True)
            except (OSError, RuntimeError, ValueError):  # no network, a refused or failed download, a bad file
                BACKBONE_UNAVAILABLE.add(net)
        self.calibrated = model is not None
        self.model = model if model is not None else build_lpips(net, pretrained_backbone=False)
        self.name = f"lpips-{net}" + ("" if self.calibrated else f", random backbone: {LPIPS_UNCALIBRATED}")

    @torch.inference_mode()
    def distances(self, pairs: list[tuple[Image.Image, Image.Image]], batch: int = 16) -> list[float]:
        """LPIPS of each (a, b) pair; b is resized to a's size when they differ."""
        out = []
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            by_size: dict[tuple[int, int], list[int]] = {}
            for i, (a, _) in enumerate(chunk):
                by_size.setdefault(lpips_size(a.size), []).append(i)
            values = [0.0] * len(chunk)
            for size, indices in by_size.items():
                left = torch.stack([as_tensor(chunk[i][0].resize(size)) for i in indices])
                right = torch.stack([as_tensor(chunk[i][1].resize(size)) for i in indices])
                for i, d in zip(indices, self.model(left, right).flatten().tolist()):
                    values[i] = float(d)
            out += values
        return out


def build_lpips(net: str, pretrained_backbone: bool):
    """lpips.LPIPS with its own linear layers (shipped in the package) and the backbone either
    pretrained (torchvision: hub cache, else download) or random from a fixed seed."""
    import lpips

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's deprecation notes on lpips' calls
        return lpips.LPIPS(net=net, pretrained=True, pnet_rand=not pretrained_backbone, verbose=False).eval()


LPIPS_MIN_SIDE = 64  # AlexNet's pooling needs this much: a smaller picture (an 8×8 latent preview) is enlarged


def lpips_size(size: tuple[int, int]) -> tuple[int, int]:
    scale = max(1.0, LPIPS_MIN_SIDE / min(size))
    return round(size[0] * scale), round(size[1] * scale)


def as_tensor(image: Image.Image) -> torch.Tensor:
    """RGB in [-1, 1], channels first, as LPIPS expects."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(2, 0, 1)


# CLIP ----------------------------------------------------------------------------------------


class CLIPScore:
    """Prompt–image agreement: cosine similarity of CLIP's embeddings. The model loads as
    transformers loads it (`from_pretrained`): a local directory, the Hugging Face cache, or
    downloaded into that cache (HF_HUB_OFFLINE=1 forbids the download). A model saved with
    `random_weights: true` in its config (as the tests' tiny CLIP is) is labelled uncalibrated."""

    def __init__(self, model: str):
        from transformers import CLIPModel, CLIPProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        loaded = None
        for local_only in (True, False):  # the cache first (no request at all), then as transformers loads it
            try:
                loaded = (
                    CLIPModel.from_pretrained(model, local_files_only=local_only).eval(),
                    CLIPProcessor.from_pretrained(model, local_files_only=local_only),
                )
                break
            except (OSError, ValueError):
                continue
        if loaded is None:
            raise JudgeUnavailable(
                f"no CLIP model '{model}': not a local directory, not in the Hugging Face cache, and it could "
                "not be downloaded (offline, or no such model on the Hub)"
            ) from None
        self.model, self.processor = loaded
        self.calibrated = not getattr(self.model.config, "random_weights", False)
        self.name = f"clip {Path(model).name or model}" + ("" if self.calibrated else " (random weights)")

    @torch.inference_mode()
    def scores(self, images: list[Image.Image], texts: list[str]) -> list[float]:
        inputs = self.processor(
            text=texts,
            images=[i.convert("RGB") for i in images],
            return_tensors="pt",
            padding="max_length",
            truncation=True,
        )
        out = self.model(**inputs)  # image_embeds and text_embeds come out normalised
        return (out.image_embeds * out.text_embeds).sum(dim=-1).tolist()


# The judging of one run ----------------------------------------------------------------------


def judge_run(
    run_dir: Path, lpips_net: str = "alex", clip_model: str | None = None, baseline: Path | None = None
) -> pd.DataFrame:
    """Compute every judge over the run's finals and write judgements.csv; return its rows."""
    run = load_run(run_dir)
    steps = run.steps
    finals = steps[
        (steps["status"] == "ok") & steps["action"].isin((*CANDIDATE_ACTIONS, "repeat")) & steps["image"].notna()
    ]
    images = {path: load_image(run.path / path) for path in finals["image"]}
    rows: list[dict] = []

    def add(image, judge, value, model, calibrated):
        rows.append(
            {
                "image": image,
                "judge": judge,
                "value": None if value is None else round(float(value), 6),
                "model": model,
                "calibrated": "yes" if calibrated else "no",
            }
        )

    for path, image in images.items():
        add(path, "pixel_std", pixel_std(image), "grey-level standard deviation", True)

    lpips_model = LPIPS(lpips_net)
    pairs, owners = lpips_pairs(finals, baseline)
    distances = lpips_model.distances(
        [
            (
                images[a] if a in images else load_image(run.path / a),
                load_image(b) if isinstance(b, Path) else images[b],
            )
            for a, b in pairs
        ]
    )
    by_owner: dict[tuple[str, str], list[float]] = {}
    for owner, distance in zip(owners, distances):
        by_owner.setdefault(owner, []).append(distance)
    for (owner_image, judge), values in by_owner.items():
        add(owner_image, judge, np.mean(values), lpips_model.name, lpips_model.calibrated)

    judge_previews(run, finals, images, lpips_model, add)

    for _, edit in finals[finals["mask"].notna() & (finals["action"] == "edit")].iterrows():
        source = edit_source(finals, edit)
        if source is not None:
            outside, inside = masked_change(images[source], images[edit["image"]], edit["mask"])
            add(edit["image"], "edit_outside_mask_max", outside, f"pixel difference, mask {edit['mask']}", True)
            add(edit["image"], "edit_inside_mask_mean", inside, f"pixel difference, mask {edit['mask']}", True)

    candidates = finals[finals["action"].isin(CANDIDATE_ACTIONS)]
    if clip_model:
        try:
            clip = CLIPScore(clip_model)
        except JudgeUnavailable as exc:
            for path in candidates["image"]:
                add(path, "clip_score", None, f"unavailable: {exc}", False)
        else:
            scores = clip.scores([images[p] for p in candidates["image"]], [str(t) for t in candidates["prompt"]])
            for path, score in zip(candidates["image"], scores):
                add(path, "clip_score", score, clip.name, clip.calibrated)

    judge_prompt_match(run.manifest, candidates.to_dict("records"), images, add)

    judgements = pd.DataFrame(rows, columns=JUDGEMENT_COLUMNS)
    judgements.to_csv(run.path / "judgements.csv", index=False)
    return judgements


def visual_progress(click: float, final: float, previews: list[tuple[float, float]], recognisable: float) -> dict:
    """From the previews painted between click and final paint, as (paint time, LPIPS to the
    final) in paint order: each preview's visual progress, the time to recognisable preview and
    the generation speed index (ms). With no preview, nothing useful was seen until the final."""
    first = previews[0][1] if previews else 0.0
    progress = [1.0 if first <= 0 else float(np.clip(1 - d / first, 0.0, 1.0)) for _, d in previews]
    times = [t for t, _ in previews]
    # 1 − progress is 1 from the click to the first preview, then steps at each preview, 0 after the final.
    edges = [click, *times, final]
    remaining = [1.0, *(1 - v for v in progress)]
    speed_index = sum((edges[i + 1] - edges[i]) * remaining[i] for i in range(len(remaining)))
    seen = next((t for t, d in previews if d <= recognisable), final)
    return {
        "progress": progress,
        "time_to_recognisable_preview_ms": seen - click,
        "generation_speed_index_ms": speed_index,
    }


def lpips_pairs(finals: pd.DataFrame, baseline: Path | None) -> tuple[list[tuple], list[tuple[str, str]]]:
    """Every image pair LPIPS must score, and which (image, judge) each distance belongs to."""
    pairs, owners = [], []
    for _, journey in finals.groupby("prompt_id", sort=False):
        rolls = journey[journey["action"].isin(("generate", "reroll"))]["image"].tolist()
        for a, b in itertools.permutations(rolls, 2):
            pairs.append((a, b))
            owners.append((a, "reroll_diversity"))
        for _, step in journey.iterrows():
            if step["action"] == "edit" and (source := edit_source(finals, step)) is not None:
                pairs.append((step["image"], source))
                owners.append((step["image"], "edit_consistency"))
            if step["action"] == "repeat" and not pd.isna(step["repeats"]):
                repeated = journey[journey["step_index"] == step["repeats"]]["image"]
                if len(repeated):
                    pairs.append((step["image"], repeated.iloc[0]))
                    owners.append((step["image"], "same_seed_lpips"))
    if baseline is not None:
        base = load_run(baseline)
        base_finals = base.steps[(base.steps["status"] == "ok") & base.steps["image"].notna()]
        kept: dict[tuple, Path] = {}
        for _, row in base_finals.iterrows():
            kept.setdefault((row["prompt"], row["seed"], row["action"]), base.path / row["image"])
        for _, row in finals.iterrows():
            match = kept.get((row["prompt"], row["seed"], row["action"]))
            if match is not None:
                pairs.append((row["image"], match))
                owners.append((row["image"], "drift_vs_baseline"))
    return pairs, owners


def judge_previews(run, finals: pd.DataFrame, images: dict, lpips_model: LPIPS, add) -> None:
    """Visual progress of every kept preview and, per action, time to recognisable preview and
    generation speed index. The previews' paint times come from the action's raw record."""
    recognisable = float(run.manifest["journey"].get("recognisable_lpips", 0.3))
    recorded = {(str(e.get("prompt_id")), e.get("step_index")): e for e in run.events if e.get("event") == "action"}
    for _, step in finals.iterrows():
        event = recorded.get((step["prompt_id"], step["step_index"]))
        if event is None or "previews" not in event:
            continue  # recorded before previews were kept
        previews = [p for p in event["previews"] if p.get("image") and (run.path / p["image"]).is_file()]
        if step["previews_painted"] and not previews:
            continue  # previews were painted but none kept (a canvas UI): nothing honest to say
        final = images[step["image"]]
        distances = lpips_model.distances([(final, load_image(run.path / p["image"])) for p in previews])
        found = visual_progress(
            step["click_ts_ms"],
            step["final_paint_ts_ms"],
            [(p["t"], d) for p, d in zip(previews, distances)],
            recognisable,
        )
        for preview, value in zip(previews, found["progress"]):
            add(preview["image"], "visual_progress", value, lpips_model.name, lpips_model.calibrated)
        for judge in ("time_to_recognisable_preview_ms", "generation_speed_index_ms"):
            add(step["image"], judge, found[judge], lpips_model.name, lpips_model.calibrated)


def edit_source(finals: pd.DataFrame, edit) -> str | None:
    """The final shown before an edit: the journey run's last final before the edit's step."""
    before = finals[(finals["prompt_id"] == edit["prompt_id"]) & (finals["step_index"] < edit["step_index"])]
    return before.sort_values("step_index")["image"].iloc[-1] if len(before) else None


def masked_change(source: Image.Image, edited: Image.Image, region: str) -> tuple[float, float]:
    """(largest change outside the mask, mean change inside it), grey levels 0–255, with the
    mask regions the packs' `mask:` names (the reference app's geometry)."""
    from imagejourney.reference_app.pipeline import MASK_REGIONS, region_mask

    if region not in MASK_REGIONS:
        return float("nan"), float("nan")
    a = np.asarray(source.convert("RGB").resize(edited.size), dtype=np.int16)
    b = np.asarray(edited.convert("RGB"), dtype=np.int16)
    change = np.abs(b - a).max(axis=2)
    inside = np.asarray(region_mask(region, *edited.size)) > 127
    return float(change[~inside].max(initial=0)), float(change[inside].mean()) if inside.any() else float("nan")


def load_image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()
