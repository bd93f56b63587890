"""Read playwright.config.py (a plain Python file with a dot in its name, so not importable)."""

from __future__ import annotations

import runpy
from pathlib import Path

from .pack import ConfigError


def load_config(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the imagejourney checkout or pass --config")
    values = runpy.run_path(str(path))
    for key in ("TARGETS", "DEFAULT_TARGET", "BROWSER", "RESULTS_DIR"):
        if key not in values:
            raise ConfigError(f"{path}: {key} is missing")
    return values


def resolve_target(config: dict, name: str | None) -> tuple[str, dict]:
    name = name or config["DEFAULT_TARGET"]
    targets = config["TARGETS"]
    if name not in targets:
        raise ConfigError(f"unknown target '{name}'; targets in playwright.config.py: {', '.join(targets)}")
    return name, targets[name]
