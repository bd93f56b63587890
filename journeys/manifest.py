"""The frozen manifest of a run: everything needed to replay it, and a short config hash.

The hash covers what defines the experiment (journey, target, UI profile, model settings,
browser); versions, hardware and the git commit are recorded beside it but not hashed, so
the same journey on a new machine keeps its hash and can be compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .pack import JourneyPack
from .plan import LoadPlan, journey_run_plan
from .profile import UIProfile
from .redact import redact_url

VERSIONED_PACKAGES = ("imagejourney", "playwright", "pytest-playwright", "torch", "diffusers", "transformers", "gradio")


def config_hash(config: dict) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def package_versions() -> dict:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def degradations(
    app_info: dict | None,
    browser_source: str,
    pack: JourneyPack | None = None,
    profile: UIProfile | None = None,
    tracing: str = "off",
    load: LoadPlan | None = None,
    started_here: bool = False,
    product: dict | None = None,
) -> list[str]:
    """Ways this run's conditions fall short of a real measurement, shown in the report."""
    found = []
    if load and started_here:
        found.append(
            f"up to {max(load.levels)} creators' browsers ran on the same machine as the reference app "
            f"({os.cpu_count()} CPU cores): under load they compete with it for CPU, so times include that contention"
        )
    if tracing != "off":
        found.append(
            f"Playwright tracing was recording (--tracing {tracing}): it adds work to the browser, so times read "
            "slower than in a run without it"
        )
    if pack and profile:
        named = {**pack.settings, **{k: v for p in pack.prompts for k, v in p.settings.items()}}
        missing = [name for name in named if name not in profile.fields]
        if missing:
            found.append(
                f"the UI profile has no field for {', '.join(missing)}: the product's own values were used, "
                "not the journey's"
            )
    if app_info:
        if app_info.get("device") == "cpu":
            found.append("the reference app ran on the CPU, not a GPU: generation times are not GPU times")
        if app_info.get("faults"):
            found.append(
                f"fault injection was on in the reference app ({app_info['faults']}): failures, and blank, "
                "stalled or wrong images (a quality fault), were made on purpose"
            )
        holds = app_info.get("holds") or {}
        if any(holds.values()):
            found.append(
                f"the reference app ran in test mode, holding previews and finals ({holds}): times include the holds"
            )
        if app_info.get("random_weights"):
            found.append("the model has random weights (tiny): images are noise, timings exercise the real code path")
    if product:
        said = ", ".join(f"{key} {product[key]}" for key in ("version", "model", "device") if key in product)
        found.append(
            f"measured on {profile.name if profile else 'the product'} as its API reports it: "
            f"{said or 'nothing'}" + (f" ({'; '.join(product['problems'])})" if product.get("problems") else "")
        )
        if str(product.get("device", "")).lower() == "cpu":
            found.append("the product ran on the CPU, not a GPU: generation times are not GPU times")
    if browser_source == "system":
        found.append("Playwright's own Chromium was not installed; the system Chromium was used")
    return found


def build_manifest(
    *,
    pack: JourneyPack,
    profile: UIProfile,
    target_name: str,
    target_url: str,
    app_info: dict | None,
    browser: dict,
    tracing: str,
    repo: Path,
    cost: dict | None = None,
    started_here: bool = False,
    shard: str | None = None,
    load: LoadPlan | None = None,
    product: dict | None = None,
) -> dict:
    """`app_info`: what the reference app says it runs; `product`: what another product's API
    says (the profile's `about:`: version, model, device)."""
    url = redact_url(target_url, tuple(profile.keep_query))
    config = {
        "journey": pack.raw,
        "ui_profile": profile.raw,
        # The bundled app gets a free port each session: its port is no part of the experiment.
        "target": {"name": target_name, "url": "started by the fixtures" if started_here else url},
        "model": app_info,
        "browser": {"name": browser["name"], "version": browser["version"], "viewport": browser.get("viewport")},
    }
    if product:  # absent otherwise, so earlier config hashes hold
        config["product"] = {key: product.get(key) for key in ("version", "model", "device")}
    if load:  # many creators at once: a different experiment (absent otherwise, so earlier hashes hold)
        config["load"] = load.as_dict()
    planned = journey_run_plan(pack, load)
    return {
        **config,
        "target": {"name": target_name, "url": url},
        "config_hash": config_hash(config),
        "journey_runs": [run_id for run_id, _ in planned],  # so a run that never started still counts
        "shard": shard,  # "I/N": this run holds that share of the pack's journey runs (imagejourney merge joins them)
        "cohorts": {run_id: sorted({*pack.cohort, *prompt.cohort}) for run_id, prompt in planned},
        "browser": browser,
        "versions": package_versions(),
        "hardware": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "gpu": (app_info or {}).get("gpu"),
            "app_device": (app_info or product or {}).get("device"),
        },
        "product": product,
        "tracing": tracing,
        "cost": cost,  # the target's GPU price ({gpu_hour_usd}), for cost per usable image
        "git_commit": git_commit(repo),
        "degraded": degradations(
            app_info, browser.get("source", ""), pack, profile, tracing, load, started_here, product
        ),
    }
