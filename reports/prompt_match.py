"""Judge `prompt_match`: does a portrait-world image show the attributes its prompt names?

A small CNN with one softmax head per attribute of the portrait world, trained on drawn
portraits (blurred and noised a little, as a diffusion model's finals are). For an image and a
prompt it gives, per attribute the prompt names, the probability that the named value is the
one present, and what it saw instead; `prompt_match` is their mean. It knows only that world:
on any other target every image is "not judged: out of domain", never a pass.

Its weights and held-out accuracy live beside each other:
reference_app/models/prompt-match/judge.safetensors and judge.json. Retrain with
`python -m imagejourney.reports.prompt_match` (a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from imagejourney.journeys.pack import PROMPT_PLACEHOLDER
from imagejourney.reference_app import portrait_world as world
from PIL import Image, ImageFilter
from torch import nn

JUDGE_DIR = Path(__file__).resolve().parent.parent / "reference_app" / "models" / "prompt-match"
SIZE = 64
NAMES = tuple(world.ATTRIBUTES)
# The app's models drawn from this world: the judge is calibrated for them and for nothing else.
IN_DOMAIN_MODELS = ("portrait-world", "portrait-world-early")
OUT_OF_DOMAIN = "not judged: out of domain"


class JudgeMissing(Exception):
    """One sentence: the judge's weights are missing or unreadable, and how to rebuild them."""


class JudgeNet(nn.Module):
    """Four stride-2 convolutions (64 → 4 px), the deeper three followed by one more, and one
    linear head per attribute: small enough to train in minutes on two CPU cores."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for index, width in enumerate((16, 32, 64, 96)):
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.SiLU()]
            if index:
                layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.SiLU()]
            channels = width
        self.features = nn.Sequential(*layers, nn.Flatten(), nn.Linear(96 * 4 * 4, 256), nn.SiLU())
        self.heads = nn.ModuleDict({name: nn.Linear(256, len(values)) for name, values in world.ATTRIBUTES.items()})

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(pixels)
        return {name: head(features) for name, head in self.heads.items()}


def to_pixels(images: list[Image.Image]) -> torch.Tensor:
    """Images of any size as a N×3×64×64 batch in [-1, 1]."""
    arrays = [
        np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.float32)
        for image in images
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


def drawn_set(seed: int, count: int, roughen: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`count` drawn portraits and their labels. `roughen`: a random blur and noise on each, so
    the judge also reads the softer images a small diffusion model makes."""
    rng = np.random.default_rng(seed)
    images: list[Image.Image] = []
    labels: dict[str, list[int]] = {name: [] for name in NAMES}
    for index in range(count):
        image, attrs = world.portrait(seed * 1_000_003 + index, size=SIZE)
        if roughen:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.2)))
            noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(0, 8), (SIZE, SIZE, 3))
            image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        images.append(image)
        for name in NAMES:
            labels[name].append(world.ATTRIBUTES[name].index(attrs[name]))
    return to_pixels(images), {name: torch.tensor(values) for name, values in labels.items()}


def accuracy(model: JudgeNet, pixels: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    model.eval()
    with torch.inference_mode():
        logits = [model(chunk) for chunk in pixels.split(256)]
    return {
        name: float((torch.cat([logit[name] for logit in logits]).argmax(1) == labels[name]).float().mean())
        for name in NAMES
    }


def train_judge(
    out: Path = JUDGE_DIR, seed: int = 0, images: int = 8000, heldout: int = 2000, epochs: int = 4, batch: int = 64
) -> dict:
    """Train on drawn portraits, measure per-attribute accuracy on `heldout` portraits of other
    seeds, print it and save it beside the weights (judge.json). Returns that record."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    started = time.perf_counter()
    torch.manual_seed(seed)
    train_pixels, train_labels = drawn_set(seed + 1, images, roughen=True)
    test_pixels, test_labels = drawn_set(seed + 2, heldout, roughen=True)
    model = JudgeNet()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (images // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(steps), desc="prompt_match judge", unit="step", mininterval=2):
        index = torch.randint(0, images, (batch,), generator=generator)
        pixels = train_pixels[index]
        flip = torch.rand(batch, generator=generator) < 0.5  # every attribute is symmetric
        pixels[flip] = pixels[flip].flip(-1)
        logits = model(pixels)
        losses = [F.cross_entropy(logits[name], train_labels[name][index]) for name in NAMES]
        loss = sum(losses[1:], start=losses[0])  # a Tensor, as sum() from 0 gave
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    heldout_accuracy = accuracy(model, test_pixels, test_labels)
    out.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, out / "judge.safetensors")
    record = {
        "attributes": world.ATTRIBUTES,
        "size": SIZE,
        "seed": seed,
        "train_images": images,
        "heldout_images": heldout,
        "steps": steps,
        "train_minutes": round((time.perf_counter() - started) / 60, 1),
        "heldout_accuracy": {name: round(value, 4) for name, value in heldout_accuracy.items()},
    }
    (out / "judge.json").write_text(json.dumps(record, indent=1) + "\n")
    print(
        "held-out accuracy per attribute (drawn, blurred and noised portraits, "
        f"N={heldout}):\n" + "\n".join(f"  {name:13} {value:.2%}" for name, value in heldout_accuracy.items())
    )
    return record


@dataclass
class Match:
    """What the judge found for one image: per named attribute the probability of the value
    asked, and the value it saw."""

    asked: dict[str, str]
    probability: dict[str, float]
    seen: dict[str, str]

    @property
    def score(self) -> float | None:
        """The mean probability over the named attributes; None when the prompt names none."""
        return float(np.mean(list(self.probability.values()))) if self.probability else None

    def summary(self) -> str:
        """ "asked red hair · saw blond" for each attribute missed; "all seen" when none is."""
        missed = [
            f"asked {self.asked[n]}{NOUN[n]} · saw {self.seen[n]}" for n in self.asked if self.seen[n] != self.asked[n]
        ]
        return "; ".join(missed) or "all seen"


NOUN = {
    "hair_colour": " hair",
    "hair_length": " hair",
    "skin_tone": " skin",
    "shirt_colour": " shirt",
    "background": " background",
    "light": " light",
    "smile": "",
    "glasses": "",
}


class PromptMatch:
    """The trained judge, loaded once."""

    def __init__(self, directory: Path = JUDGE_DIR):
        from safetensors.torch import load_file

        weights, record = Path(directory) / "judge.safetensors", Path(directory) / "judge.json"
        rebuild = "rebuild it with: python -m imagejourney.reports.prompt_match"
        for path in (weights, record):
            if not path.is_file():
                raise JudgeMissing(f"prompt_match judge: {path} is missing; {rebuild}")
        try:
            self.record = json.loads(record.read_text())
            self.model = JudgeNet()
            self.model.load_state_dict(load_file(weights))
        except Exception as exc:  # truncated, foreign or stale weights
            raise JudgeMissing(
                f"prompt_match judge: {weights} is unreadable ({str(exc).splitlines()[0]}); {rebuild}"
            ) from None
        self.model.eval()
        self.name = f"prompt-match CNN (held-out accuracy ≥ {min(self.record['heldout_accuracy'].values()):.1%})"

    def judge(self, images: list[Image.Image], asked: list[dict[str, str]]) -> list[Match]:
        with torch.inference_mode():
            logits = self.model(to_pixels(images))
        probabilities = {name: F.softmax(values, dim=1) for name, values in logits.items()}
        matches = []
        for row, wanted in enumerate(asked):
            probability = {n: float(probabilities[n][row, world.ATTRIBUTES[n].index(v)]) for n, v in wanted.items()}
            seen = {n: world.ATTRIBUTES[n][int(probabilities[n][row].argmax())] for n in NAMES}
            matches.append(Match(dict(wanted), probability, seen))
        return matches


def in_domain(app_info: dict | None) -> bool:
    """Whether the run's model is a portrait-world model (the app reports it in the manifest)."""
    name = str((app_info or {}).get("model") or "")
    return Path(name).name in IN_DOMAIN_MODELS


def asked_of(manifest: dict, final: dict) -> dict[str, str]:
    """The attributes a final was asked for: its journey run's prompt, and for an edit that
    prompt changed by the edit's own ("{prompt}, now with glasses": what it adds to it)."""
    asked = world.parse(str(final["prompt"]))
    steps = manifest.get("journey", {}).get("steps", [])
    index = final.get("step_index")
    step = steps[int(index)] if index is not None and 0 <= int(index) < len(steps) else None
    if final["action"] == "edit" and isinstance(step, dict) and isinstance(step.get("edit"), dict):
        asked.update(world.parse(str(step["edit"].get("prompt", "")).replace(PROMPT_PLACEHOLDER, "")))
    return asked


def judge_finals(manifest: dict, finals: list[dict], images: dict[str, Image.Image], add) -> None:
    """Rows for judgements.csv through `add(image, judge, value, model, calibrated)`: per final,
    `prompt_match` (the mean) and `prompt_match:<attribute>` for each attribute asked, with
    what was seen in the model column. Out of domain or unreadable prompts: empty values and
    the reason, never a pass."""
    if not finals:
        return
    if not in_domain(manifest.get("model")):
        model = (manifest.get("model") or {}).get("model", "unknown")
        for final in finals:
            add(
                final["image"],
                "prompt_match",
                None,
                f"{OUT_OF_DOMAIN} (model {model} is not a portrait-world model)",
                False,
            )
        return
    try:
        judge = PromptMatch()
    except JudgeMissing as exc:
        for final in finals:
            add(final["image"], "prompt_match", None, f"unavailable: {exc}", False)
        return
    judged = []
    for final in finals:
        try:
            judged.append((final, asked_of(manifest, final)))
        except world.UnknownWord as exc:
            add(
                final["image"],
                "prompt_match",
                None,
                f"not judged: the prompt is not in the portrait world's words ({exc})",
                False,
            )
    if not judged:
        return
    matches = judge.judge([images[final["image"]] for final, _ in judged], [asked for _, asked in judged])
    for (final, _), match in zip(judged, matches):
        if match.score is None:
            add(
                final["image"],
                "prompt_match",
                None,
                "not judged: the prompt names no attribute of the portrait world",
                False,
            )
            continue
        add(final["image"], "prompt_match", match.score, f"{judge.name}: {match.summary()}", True)
        for name, probability in match.probability.items():
            add(
                final["image"],
                f"prompt_match:{name}",
                probability,
                f"{judge.name}: asked {match.asked[name]} · saw {match.seen[name]}",
                True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imagejourney.reports.prompt_match", description="train the prompt_match judge"
    )
    parser.add_argument("--out", default=str(JUDGE_DIR), help="directory for judge.safetensors and judge.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=8000, help="drawn portraits to train on (default 8000)")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    record = train_judge(Path(args.out), args.seed, args.images, epochs=args.epochs)
    return 0 if min(record["heldout_accuracy"].values()) >= 0.98 else 1


if __name__ == "__main__":
    raise SystemExit(main())
