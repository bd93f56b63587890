"""Journey packs and UI profiles: YAML files read into plain dataclasses.

A problem in a file is raised as `ConfigError` with one sentence naming the file and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

PACKS_DIR = Path(__file__).parent / "packs"
PROFILES_DIR = Path(__file__).parent / "profiles"
ACTIONS = ("generate", "reroll", "edit", "export")


class ConfigError(Exception):
    """One sentence: which file, which field, what is wrong and how to fix it."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    seed: int


@dataclass(frozen=True)
class Step:
    kind: str  # "prompt", "think", or one of ACTIONS
    prompt: str | None = None  # edit prompt
    strength: float | None = None  # edit strength
    ms: int = 0  # think time


@dataclass(frozen=True)
class JourneyPack:
    name: str
    description: str
    cohort: list[str]
    settings: dict
    prompts: list[Prompt]
    steps: list[Step]
    acceptance: dict
    think_time_ms: int
    action_timeout_s: float
    source: str
    raw: dict = field(repr=False)


@dataclass(frozen=True)
class UIProfile:
    name: str
    path: str
    ready: str
    fields: dict
    controls: dict
    output: str
    done: dict
    error: dict | None
    raw: dict = field(repr=False)


def available_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of fields at the top level")
    return data


def require(data: dict, key: str, kind: type, source: str):
    if key not in data:
        raise ConfigError(f"{source}: the field '{key}' is missing")
    value = data[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{source}: the field '{key}' must be a {kind.__name__}, not {type(value).__name__}")
    return value


def load_pack(name_or_path: str) -> JourneyPack:
    path = Path(name_or_path)
    if not path.suffix:
        path = PACKS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown journey '{name_or_path}'; available journeys: {', '.join(available_packs())} "
            "(or pass the path of a journey pack YAML file)"
        )
    data = read_yaml(path)
    source = str(path)
    prompts = []
    for i, item in enumerate(require(data, "prompts", list, source)):
        where = f"{source}: prompts[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a mapping with id, text and seed")
        prompts.append(
            Prompt(id=str(require(item, "id", str, where)), text=require(item, "text", str, where),
                   seed=require(item, "seed", int, where))
        )
    if not prompts:
        raise ConfigError(f"{source}: 'prompts' is empty; add at least one prompt")
    return JourneyPack(
        name=require(data, "name", str, source),
        description=data.get("description", ""),
        cohort=list(data.get("cohort", [])),
        settings=dict(data.get("settings", {})),
        prompts=prompts,
        steps=[parse_step(item, f"{source}: steps[{i}]") for i, item in enumerate(require(data, "steps", list, source))],
        acceptance=require(data, "acceptance", dict, source),
        think_time_ms=int(data.get("think_time_ms", 0)),
        action_timeout_s=float(data.get("action_timeout_s", 60)),
        source=source,
        raw=data,
    )


def parse_step(item, where: str) -> Step:
    if isinstance(item, str):
        kind, options = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        kind, options = next(iter(item.items()))
        options = options or {}
    else:
        raise ConfigError(f"{where} must be an action name or a mapping of one action to its options")
    if kind == "edit":
        return Step(kind, prompt=require(options, "prompt", str, where), strength=float(options.get("strength", 0.6)))
    if kind == "think":
        return Step(kind, ms=int(options.get("ms", 0)))
    if kind in ("prompt", *ACTIONS):
        return Step(kind)
    raise ConfigError(f"{where}: unknown step '{kind}'; use prompt, think, {', '.join(ACTIONS)}")


def load_profile(name_or_path: str) -> UIProfile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown UI profile '{name_or_path}'; built-in profiles: {known}")
    data = read_yaml(path)
    source = str(path)
    return UIProfile(
        name=require(data, "name", str, source),
        path=data.get("path", "/"),
        ready=require(data, "ready", str, source),
        fields=require(data, "fields", dict, source),
        controls=require(data, "controls", dict, source),
        output=require(data, "output", str, source),
        done=require(data, "done", dict, source),
        error=data.get("error"),
        raw=data,
    )
