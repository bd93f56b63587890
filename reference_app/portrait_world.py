"""The portrait world: procedural head-and-shoulders portraits and the words that describe them.

No real model can be downloaded here, so the reference model is trained on a world drawn by
code. Every portrait is a complete set of attributes (one value per entry of ATTRIBUTES) drawn
with a little variation in pose, size, position and colour, so the world is not a lookup
table. Drawing is seeded: the same attributes and seed give the same pixels.

A prompt names any subset of the attributes; the rest are left free (sampled):

    >>> describe({"smile": "smiling", "hair_length": "long", "hair_colour": "red", "glasses": "glasses"})
    'portrait of a smiling person with long red hair and glasses'
    >>> parse("portrait of a person with short grey hair, blue shirt")
    {'hair_colour': 'grey', 'hair_length': 'short', 'shirt_colour': 'blue'}
"""

from __future__ import annotations

import math
import re

import numpy as np
from PIL import Image, ImageDraw

# Attribute -> its values, each value a word of the prompt grammar (glasses: "no glasses").
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "hair_colour": ("black", "brown", "blond", "red", "grey"),
    "hair_length": ("short", "long"),
    "skin_tone": ("pale", "tan", "dark"),
    "glasses": ("glasses", "no glasses"),
    "smile": ("smiling", "serious"),
    "shirt_colour": ("red", "blue", "green", "yellow", "white"),
    "background": ("blue", "green", "grey", "orange", "purple"),
    "light": ("warm", "cool"),
}
KNOWN_VALUES = "; ".join(f"{name}: {', '.join(values)}" for name, values in ATTRIBUTES.items())
COMBINATIONS = math.prod(len(values) for values in ATTRIBUTES.values())

# Which attributes a noun of the grammar takes its modifiers from.
NOUNS = {
    "hair": ("hair_length", "hair_colour"),
    "skin": ("skin_tone",),
    "shirt": ("shirt_colour",),
    "background": ("background",),
    "light": ("light",),
    "person": ("smile",),
}
# Words that carry no attribute: the frame of every prompt, and of an edit's ("… now with glasses").
FILLER = ("portrait", "of", "a", "an", "the", "same", "now", "with", "and")
VOCABULARY = tuple(
    sorted(
        {word for values in ATTRIBUTES.values() for value in values for word in value.split()}
        | set(NOUNS)
        | set(FILLER)
    )
)

COLOURS = {
    "hair_colour": {
        "black": (32, 26, 24),
        "brown": (110, 66, 34),
        "blond": (228, 196, 112),
        "red": (186, 64, 30),
        "grey": (165, 165, 168),
    },
    "skin_tone": {"pale": (242, 212, 192), "tan": (202, 150, 108), "dark": (112, 74, 52)},
    "shirt_colour": {
        "red": (200, 38, 42),
        "blue": (38, 72, 196),
        "green": (40, 152, 64),
        "yellow": (236, 204, 40),
        "white": (238, 238, 236),
    },
    "background": {
        "blue": (92, 142, 224),
        "green": (112, 184, 108),
        "grey": (128, 128, 130),
        "orange": (238, 150, 58),
        "purple": (142, 88, 172),
    },
}
LIGHT_TINT = {"warm": (1.10, 0.96, 0.78), "cool": (0.80, 0.94, 1.10)}
SUPERSAMPLE = 4  # drawn at 4× and downsampled: smooth edges at 64 px


class UnknownWord(ValueError):
    """A prompt word the portrait world does not know; the message is one sentence."""


def sample_attributes(rng: np.random.Generator, named: dict[str, str] | None = None) -> dict[str, str]:
    """A complete set of attributes: the named ones as given, the others sampled."""
    named = named or {}
    return {
        name: named[name] if name in named else values[rng.integers(len(values))] for name, values in ATTRIBUTES.items()
    }


def portrait(seed: int, named: dict[str, str] | None = None, size: int = 64) -> tuple[Image.Image, dict[str, str]]:
    """The portrait of `seed`: unnamed attributes and the pose both come from the seed."""
    rng = np.random.default_rng(seed)
    attrs = sample_attributes(rng, named)
    return draw(attrs, int(rng.integers(2**31)), size), attrs


def jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 12) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def draw(attrs: dict[str, str], seed: int, size: int = 64) -> Image.Image:
    """Draw one portrait with every attribute of ATTRIBUTES set; `seed` picks pose and colour jitter."""
    missing = [name for name in ATTRIBUTES if name not in attrs]
    if missing:
        raise ValueError(f"draw needs every attribute; missing {', '.join(missing)}")
    rng = np.random.default_rng(seed)
    side = size * SUPERSAMPLE
    scale = side * rng.uniform(0.9, 1.1)
    cx = side * (0.5 + rng.uniform(-0.06, 0.06))
    cy = side * (0.46 + rng.uniform(-0.04, 0.04))
    hair, skin = (
        jitter(rng, COLOURS["hair_colour"][attrs["hair_colour"]]),
        jitter(rng, COLOURS["skin_tone"][attrs["skin_tone"]]),
    )
    shirt = jitter(rng, COLOURS["shirt_colour"][attrs["shirt_colour"]])

    image = Image.new("RGB", (side, side), jitter(rng, COLOURS["background"][attrs["background"]]))
    figure = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    pen = ImageDraw.Draw(figure)
    head_w, head_h = 0.18 * scale * rng.uniform(0.95, 1.05), 0.23 * scale * rng.uniform(0.95, 1.05)
    top, bottom = cy - head_h, cy + head_h
    if attrs["hair_length"] == "long":  # falls behind the head onto the shoulders
        pen.rounded_rectangle(
            (cx - head_w * 1.25, cy - head_h * 0.6, cx + head_w * 1.25, cy + head_h * 1.9),
            radius=head_w * 0.5,
            fill=hair,
        )
    pen.rectangle((cx - head_w * 0.35, bottom - head_h * 0.3, cx + head_w * 0.35, bottom + head_h * 0.5), fill=skin)
    pen.ellipse((cx - head_w * 2.3, bottom + head_h * 0.35, cx + head_w * 2.3, bottom + head_h * 3.2), fill=shirt)
    pen.ellipse((cx - head_w * 1.12, top - head_h * 0.14, cx + head_w * 1.12, bottom - head_h * 0.5), fill=hair)
    pen.ellipse((cx - head_w, top + head_h * 0.32, cx + head_w, bottom), fill=skin)

    eye_y, eye_dx, eye_r = cy + head_h * 0.02, head_w * 0.42, head_w * 0.13
    for x in (cx - eye_dx, cx + eye_dx):
        pen.ellipse((x - eye_r, eye_y - eye_r, x + eye_r, eye_y + eye_r), fill=(30, 22, 20))
    if attrs["glasses"] == "glasses":
        ring, width = head_w * 0.32, max(2, round(head_w * 0.11))
        for x in (cx - eye_dx, cx + eye_dx):
            pen.ellipse((x - ring, eye_y - ring, x + ring, eye_y + ring), outline=(15, 15, 15), width=width)
        pen.line((cx - eye_dx + ring, eye_y, cx + eye_dx - ring, eye_y), fill=(15, 15, 15), width=width)
    mouth_y, mouth_w = cy + head_h * 0.5, head_w * 0.5
    if attrs["smile"] == "smiling":  # an open smile: the lower half of a disc
        pen.chord(
            (cx - mouth_w, mouth_y - mouth_w * 0.75, cx + mouth_w, mouth_y + mouth_w * 0.75), 0, 180, fill=(150, 30, 40)
        )
    else:
        pen.line(
            (cx - mouth_w * 0.6, mouth_y, cx + mouth_w * 0.6, mouth_y),
            fill=(120, 40, 40),
            width=max(2, round(head_w * 0.07)),
        )

    tilt = rng.uniform(-8, 8)
    figure = figure.rotate(tilt, resample=Image.Resampling.BICUBIC, center=(cx, bottom + head_h))
    image.paste(figure, (0, 0), figure)
    lit = np.asarray(image, dtype=np.float32) * np.array(LIGHT_TINT[attrs["light"]], dtype=np.float32)
    light_from = rng.choice((-1.0, 1.0))  # one side a little brighter
    lit *= (1.0 + 0.08 * light_from * np.linspace(-1, 1, side, dtype=np.float32))[None, :, None]
    image = Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))
    return image.resize((size, size), Image.Resampling.BOX)


def describe(attrs: dict[str, str]) -> str:
    """The prompt that names exactly `attrs` (any subset of ATTRIBUTES), in the grammar's order."""
    unknown = [f"{name}={value}" for name, value in attrs.items() if value not in ATTRIBUTES.get(name, ())]
    if unknown:
        raise UnknownWord(f"describe: unknown attribute value {', '.join(unknown)}; known: {KNOWN_VALUES}")
    subject = f"portrait of a {attrs['smile']} person" if "smile" in attrs else "portrait of a person"
    features = []
    if "skin_tone" in attrs:
        features.append(f"{attrs['skin_tone']} skin")
    hair = " ".join(attrs[name] for name in ("hair_length", "hair_colour") if name in attrs)
    if hair:
        features.append(f"{hair} hair")
    if "glasses" in attrs:
        features.append(attrs["glasses"])
    if features:
        subject += " with " + (", ".join(features[:-1]) + " and " + features[-1] if len(features) > 1 else features[0])
    rest = [
        f"{attrs[name]} {noun}"
        for name, noun in (("shirt_colour", "shirt"), ("background", "background"), ("light", "light"))
        if name in attrs
    ]
    return ", ".join([subject, *rest])


def phrase(name: str, value: str) -> str:
    """One attribute said on its own, as a phrase of a prompt: "long hair", "glasses", "blue shirt"."""
    describe({name: value})  # one sentence for an unknown value
    noun = next((noun for noun, names in NOUNS.items() if name in names), None)
    return f"{value} {noun}" if noun else value  # glasses: "glasses" or "no glasses"


def edit_clause(name: str, value: str) -> str:
    """How an edit names one attribute after the prompt it keeps ("…, now with glasses")."""
    if name == "smile":
        return f"now a {phrase(name, value)}"
    return f"now with {phrase(name, value)}"


def parse(text: str) -> dict[str, str]:
    """The attributes a prompt names. A word the world does not know is one sentence naming it."""
    attrs: dict[str, str] = {}
    for phrase in re.split(r",|\band\b|\bwith\b", text.lower()):
        words = [word for word in re.findall(r"[a-z]+", phrase) if word not in FILLER]
        if not words:
            continue
        if words == ["glasses"] or words == ["no", "glasses"]:
            attrs["glasses"] = " ".join(words)
            continue
        *modifiers, noun = words
        if noun not in NOUNS:
            raise UnknownWord(f"unknown word '{noun}' in '{text}': the portrait world knows {', '.join(VOCABULARY)}")
        for word in modifiers:
            name = next((name for name in NOUNS[noun] if word in ATTRIBUTES[name]), None)
            if name is None:
                known = ", ".join(value for name in NOUNS[noun] for value in ATTRIBUTES[name])
                raise UnknownWord(f"unknown word '{word}' before '{noun}' in '{text}': known {noun} words are {known}")
            attrs[name] = word
    return attrs
