"""Facts about the images a run kept (size, flatness), measured once and cached in the run directory."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

BLANK_PIXEL_STD = 2.0  # grey levels (0–255): below this a final is one flat colour


def pixel_std(image: Image.Image) -> float:
    """Grey-level standard deviation of an image (0–255; 0 for one flat colour)."""
    return float(np.asarray(image.convert("L"), dtype=np.float32).std())


def image_facts(run_path: Path, images: list[str], need_std: set[str] | None = None) -> dict[str, dict]:
    """{image: {side, pixel_std}} for the run's images — `side` (the long side, px) from each
    file's header, `pixel_std` decoded only for the images in `need_std` (those no judge has
    measured) — kept in cache/images.json of the run directory (like its thumbnails), keyed by
    each file's modification time so a changed image is measured again."""
    cache_path = run_path / "cache" / "images.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    need_std = need_std or set()
    stamps = {image: os.stat(run_path / image).st_mtime_ns for image in images}
    stale = [
        image
        for image in images
        if cache.get(image, {}).get("mtime_ns") != stamps[image]
        or (image in need_std and "pixel_std" not in cache[image])
    ]

    def measure(image: str) -> dict:
        with Image.open(run_path / image) as opened:  # the header only, unless the pixels are needed
            facts: dict[str, int | float] = {"mtime_ns": stamps[image], "side": max(opened.size)}
            if image in need_std:
                facts["pixel_std"] = pixel_std(opened)
            return facts

    if stale:
        decode = [image for image in stale if image in need_std]
        cache.update((image, measure(image)) for image in stale if image not in need_std)  # headers: quick, GIL-bound
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # decoding releases the GIL
            cache.update(zip(decode, pool.map(measure, decode)))
        cache_path.parent.mkdir(exist_ok=True)
        cache_path.write_text(json.dumps(cache))
    return {image: cache[image] for image in images}
