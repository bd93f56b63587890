"""Read playwright.config.py (a plain Python file with a dot in its name, so not importable)
and resolve which target a run drives."""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass
from pathlib import Path

from .yaml_reader import ConfigError


@dataclass(frozen=True)
class Target:
    name: str
    url: str | None  # None: started by the fixtures (reference app)
    ui_profile: str
    model: str = "tiny"
    cost: dict | None = None  # {gpu_hour_usd: 2.5}: cost per usable image is shown only with a price
    app_args: tuple[str, ...] = ()  # the reference app's own options (faults, holds, size …) when started here

    @property
    def started_here(self) -> bool:
        return self.url is None


def load_config(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the imagejourney checkout")
    values = runpy.run_path(str(path))
    for key in ("TARGETS", "DEFAULT_TARGET", "BROWSER", "RESULTS_DIR"):
        if key not in values:
            raise ConfigError(f"{path}: {key} is missing")
    return values


def resolve_target(config: dict, name: str | None, base_url: str | None, ui_profile: str | None) -> Target:
    """`--target NAME`, or `--base-url URL --ui-profile PATH`; `--ui-profile` overrides any target's."""
    if base_url and not name:
        if not ui_profile:
            raise ConfigError("--base-url needs --ui-profile PATH: a UI profile saying how to operate that UI")
        return Target("url", base_url, ui_profile)
    name = name or config["DEFAULT_TARGET"]
    targets = config["TARGETS"]
    if name not in targets:
        raise ConfigError(f"unknown target '{name}'; targets in playwright.config.py: {', '.join(targets)}")
    spec = targets[name]
    profile = ui_profile or os.environ.get(spec.get("ui_profile_env", ""), "") or spec["ui_profile"]
    cost = spec.get("cost")
    if cost is not None and not (
        isinstance(cost, dict)
        and set(cost) == {"gpu_hour_usd"}
        and isinstance(cost["gpu_hour_usd"], (int, float))
        and cost["gpu_hour_usd"] > 0
    ):
        raise ConfigError(
            f"target '{name}': cost must read {{'gpu_hour_usd': PRICE}} with a positive price per GPU-hour"
        )
    if "start" in spec:
        app_args = spec.get("app_args", [])
        if not (isinstance(app_args, list) and all(isinstance(a, str) for a in app_args)):
            raise ConfigError(
                f"target '{name}': app_args must be a list of strings, e.g. ['--fault-latency-ms', '200']"
            )
        return Target(name, None, profile, spec.get("model", "tiny"), cost, tuple(app_args))
    url = base_url or spec.get("url") or os.environ.get(spec.get("url_env", ""), "")
    if not url:
        raise ConfigError(f"target '{name}' needs its base URL: set {spec.get('url_env', 'url')} or pass --base-url")
    return Target(name, url, profile, cost=cost)
