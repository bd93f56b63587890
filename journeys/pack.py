"""Journey packs and UI profiles: YAML files read into plain dataclasses.

Every problem is raised as `ConfigError` with one sentence naming the file, the line and the
field, and saying what to write instead. Unknown fields are errors, not ignored, so a typo
(`stesp:`) cannot silently change what a run measures.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

PACKS_DIR = Path(__file__).parent / "packs"
PROFILES_DIR = Path(__file__).parent / "profiles"
ACTIONS = ("generate", "reroll", "edit", "export")
SETTINGS = ("steps", "guidance", "size", "aspect", "sampler")


class ConfigError(Exception):
    """One sentence: which file, which line and field, what is wrong and how to fix it."""


# YAML with line numbers --------------------------------------------------------------------


class Located(dict):
    """A mapping read from YAML that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict


class LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        mapping = Located(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {key.value: key.start_mark.line + 1 for key, _ in node.value if hasattr(key, "value")}
        return mapping


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, LineLoader.construct_mapping)


class Reader:
    """Reads fields of one YAML file, raising ConfigError that name file, line and field."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = yaml.load(path.read_text(), Loader=LineLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        if not isinstance(self.data, dict):
            raise ConfigError(f"{path}: the file must hold a mapping of fields (name: …) at the top level")

    def error(self, mapping, key: str | None, message: str) -> ConfigError:
        line = getattr(mapping, "key_lines", {}).get(key) or getattr(mapping, "line", None)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {message}")

    def only(self, mapping, allowed: tuple[str, ...], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                raise self.error(mapping, key, f"unknown field '{key}' in {what}; allowed: {', '.join(allowed)}")

    def get(self, mapping, key: str, kind, what: str, default=...):
        if key not in mapping or mapping[key] is None:
            if default is ...:
                raise self.error(mapping, None, f"the field '{key}' is missing from {what}")
            return default
        value = mapping[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(mapping, key, f"the field '{key}' in {what} must be a {names}, not {type(value).__name__}")
        return value


# Journey packs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    seed: int
    negative: str = ""
    settings: dict = field(default_factory=dict)  # this prompt's own settings, over the pack's
    cohort: tuple[str, ...] = ()  # this prompt's own cohort tags, beside the pack's


@dataclass(frozen=True)
class Step:
    kind: str  # "prompt", "think", "repeat" (the last generate/reroll again, same seed), or one of ACTIONS
    prompt: str | None = None  # edit prompt
    strength: float | None = None  # edit strength
    mask: str | None = None  # edit region (inpainting); None edits the whole image
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
    budgets: dict
    think_time_ms: int
    action_timeout_s: float
    source: str
    raw: dict = field(repr=False)
    recognisable_lpips: float = 0.3  # a preview this close to its final (LPIPS) is recognisable


PACK_FIELDS = ("name", "description", "cohort", "settings", "think_time_ms", "action_timeout_s", "recognisable_lpips",
               "prompts", "steps",
               "acceptance", "budgets")
PROMPT_FIELDS = ("id", "text", "negative", "seed", "seeds", "settings", "cohort")
# Acceptance rules and their threshold field; `all:` / `any:` compose them.
ACCEPTANCE_RULES = {"not_blank": "min_pixel_std", "clip_score": "min"}
BUDGET_METRICS = ("click_to_preview_ms", "click_to_final_ms", "click_to_export_ms", "ttui_ms")
# Pack names and prompt ids become file and directory names in the run directory.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def available_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def find_yaml(name_or_path: str, builtin_dir: Path, kind: str, unknown: str) -> Path:
    """A YAML path as given, or a built-in by name; `unknown` is the sentence for a bad name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not path.is_file():
            raise ConfigError(f"{kind} file {path} not found")
        return path
    path = builtin_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in builtin_dir.glob("*.yaml")))
        raise ConfigError(unknown.format(name=name_or_path, known=known))
    return path


def load_pack(name_or_path: str) -> JourneyPack:
    r = Reader(find_yaml(name_or_path, PACKS_DIR, "journey pack", "unknown journey '{name}'; available journeys: "
                         "{known} (or pass the path of a journey pack YAML file)"))
    data = r.data
    r.only(data, PACK_FIELDS, "the journey pack")
    settings = r.get(data, "settings", dict, "the journey pack", {})
    r.only(settings, SETTINGS, "settings")
    prompts = [p for i, item in enumerate(r.get(data, "prompts", list, "the journey pack"))
               for p in read_prompts(r, item, f"prompts[{i}]")]
    if not prompts:
        raise r.error(data, "prompts", "'prompts' is empty; add at least one prompt with id, text and seed")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise r.error(data, "prompts", "prompt ids must be unique (with 'seeds', each seed becomes id-seed)")
    steps = [s for i, item in enumerate(r.get(data, "steps", list, "the journey pack"))
             for s in read_steps(r, i, item)]
    if not any(s.kind in ACTIONS for s in steps):
        raise r.error(data, "steps", "the journey has no action; add generate, reroll, edit or export steps")
    kinds = [s.kind for s in steps]
    if "repeat" in kinds and not {"generate", "reroll"} & set(kinds[: kinds.index("repeat")]):
        raise r.error(data, "steps", "a repeat step repeats the last generate or reroll with its seed; put one before it")
    return JourneyPack(
        name=safe_name(r, data, "name", r.get(data, "name", str, "the journey pack"), "the pack name"),
        description=r.get(data, "description", str, "the journey pack", ""),
        cohort=[str(tag) for tag in r.get(data, "cohort", list, "the journey pack", [])],
        settings=dict(settings),
        prompts=prompts,
        steps=steps,
        acceptance=read_acceptance(r, data),
        budgets=read_budgets(r, data),
        think_time_ms=r.get(data, "think_time_ms", int, "the journey pack", 0),
        recognisable_lpips=read_recognisable(r, data),
        action_timeout_s=float(r.get(data, "action_timeout_s", (int, float), "the journey pack", 60)),
        source=str(r.path),
        raw=plain(data),
    )


def read_prompts(r: Reader, item, what: str) -> list[Prompt]:
    if not isinstance(item, dict):
        raise r.error(r.data, "prompts", f"{what} must be a mapping with id, text and seed")
    r.only(item, PROMPT_FIELDS, what)
    pid = safe_name(r, item, "id", str(r.get(item, "id", (str, int), what)), f"the id of {what}")
    text = r.get(item, "text", str, what)
    negative = r.get(item, "negative", str, what, "")
    settings = r.get(item, "settings", dict, what, {})
    r.only(settings, SETTINGS, f"the settings of {what}")
    cohort = tuple(str(tag) for tag in r.get(item, "cohort", list, what, []))
    settings = dict(settings)
    if "seeds" in item:
        seeds = r.get(item, "seeds", list, what)
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise r.error(item, "seeds", f"'seeds' in {what} must be a list of whole numbers")
        return [Prompt(f"{pid}-{seed}", text, seed, negative, settings, cohort) for seed in seeds]
    return [Prompt(pid, text, r.get(item, "seed", int, what), negative, settings, cohort)]


def safe_name(r: Reader, mapping, key: str, value: str, what: str) -> str:
    """A name that becomes part of a file name: letters, digits, '-', '_', '.', no leading dot."""
    if not SAFE_NAME.fullmatch(value):
        suggestion = re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-") or "name"
        raise r.error(mapping, key, f"{what} '{value}' may hold only letters, digits, '-', '_' and '.' and may not "
                                    f"start with a dot (it names files in the run directory); use e.g. '{suggestion}'")
    return value


def read_steps(r: Reader, index: int, item) -> list[Step]:
    what = f"steps[{index}]"
    if isinstance(item, str):
        kind, options = item, Located()
    elif isinstance(item, dict) and len(item) == 1:
        kind, options = next(iter(item.items()))
        options = options if options is not None else Located()
        if not isinstance(options, dict):
            raise r.error(item, kind, f"the options of {what} ({kind}) must be a mapping")
    else:
        raise r.error(r.data, "steps", f"{what} must be an action name or a mapping of one action to its options")
    where = f"{what} ({kind})"
    if kind == "edit":
        r.only(options, ("prompt", "strength", "mask"), where)
        strength = float(r.get(options, "strength", (int, float), where, 0.6))
        if not 0 < strength <= 1:
            raise r.error(options, "strength", f"edit strength in {what} must be above 0 and at most 1")
        mask = r.get(options, "mask", str, where, None)
        return [Step(kind, prompt=r.get(options, "prompt", str, where), strength=strength, mask=mask)]
    if kind == "reroll":
        r.only(options, ("times",), where)
        return [Step(kind)] * r.get(options, "times", int, where, 1)
    if kind == "think":
        r.only(options, ("ms",), where)
        return [Step(kind, ms=r.get(options, "ms", int, where))]
    if kind in ("prompt", "generate", "export", "repeat"):
        r.only(options, (), where)
        return [Step(kind)]
    line_of = item if isinstance(item, dict) else r.data
    raise r.error(line_of, kind if isinstance(item, dict) else "steps",
                  f"{what}: unknown step '{kind}'; use prompt, think, repeat, {', '.join(ACTIONS)}")


def read_acceptance(r: Reader, data) -> dict:
    """`{rule: not_blank, min_pixel_std: 8}`, `{rule: clip_score, min: 0.25}`, or `{all: [...]}` /
    `{any: [...]}` of those (nested as deep as needed)."""
    return plain(read_rule(r, r.get(data, "acceptance", dict, "the journey pack"), "acceptance"))


def read_rule(r: Reader, node, what: str) -> dict:
    if not isinstance(node, dict):
        raise r.error(r.data, "acceptance", f"{what} must be a mapping: {{rule: NAME, …}} or {{all: [...]}} / {{any: [...]}}")
    for combinator in ("all", "any"):
        if combinator in node:
            r.only(node, (combinator,), what)
            rules = r.get(node, combinator, list, what)
            if not rules:
                raise r.error(node, combinator, f"'{combinator}' in {what} needs at least one rule")
            return {combinator: [read_rule(r, rule, f"{what}.{combinator}[{i}]") for i, rule in enumerate(rules)]}
    rule = r.get(node, "rule", str, what)
    if rule not in ACCEPTANCE_RULES:
        raise r.error(node, "rule", f"unknown acceptance rule '{rule}' in {what}; known: {', '.join(ACCEPTANCE_RULES)} "
                                    "(combine them with all: or any:)")
    threshold = ACCEPTANCE_RULES[rule]
    r.only(node, ("rule", threshold), f"{what} ({rule})")
    r.get(node, threshold, (int, float), f"{what} ({rule})")
    return node


def read_recognisable(r: Reader, data) -> float:
    """`recognisable_lpips: 0.3`: time to recognisable preview counts to the first preview whose
    LPIPS to the action's final is at most this."""
    value = float(r.get(data, "recognisable_lpips", (int, float), "the journey pack", 0.3))
    if not 0 < value <= 1:
        raise r.error(data, "recognisable_lpips", "recognisable_lpips must be above 0 and at most 1 (an LPIPS distance)")
    return value


def read_budgets(r: Reader, data) -> dict:
    """`budgets: {generate.click_to_final_ms.p95: 5000, ttui_ms.p50: 3000}` (ms)."""
    budgets = r.get(data, "budgets", dict, "the journey pack", {})
    for key, limit in budgets.items():
        parts = str(key).split(".")
        ok = (len(parts) == 3 and parts[0] in ACTIONS and parts[1] in BUDGET_METRICS[:3]) or (
            len(parts) == 2 and parts[0] == "ttui_ms")
        if not ok or parts[-1] not in ("p50", "p95"):
            raise r.error(budgets, key, f"budget '{key}' must read ACTION.METRIC.p50|p95 (e.g. generate.click_to_final_ms.p95) or ttui_ms.p50|p95")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0:
            raise r.error(budgets, key, f"budget '{key}' must be a positive number of ms")
    return plain(budgets)


def plain(value):
    """Located dicts back to plain ones (for JSON and hashing)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# UI profiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UIProfile:
    name: str
    path: str
    ready: str
    fields: dict
    controls: dict
    output: str
    final_image: str
    done: list[dict]
    error: dict | None
    login: dict | None
    server_timings: dict | None
    paint: str
    source: str
    raw: dict = field(repr=False)
    keep_query: tuple[str, ...] = ()  # query parameter names whose values recorded URLs may keep


PROFILE_FIELDS = ("name", "path", "ready", "fields", "controls", "output", "final_image", "done", "error", "login",
                  "server_timings", "paint", "keep_query")
PAINT_METHODS = ("auto", "element-timing", "screencast")
PROFILE_INPUTS = ("prompt", "negative_prompt", "seed", "edit_prompt", "strength", "mask", *SETTINGS)
DONE_KINDS = {
    "text": ("selector", "text_matches"),  # an element's text matches (and changed since the click)
    "hidden": ("hidden",),  # an element (a spinner) is hidden or gone
    "visible": ("visible",),  # an element appears
    "enabled": ("enabled",),  # a control is enabled again
    "output_stable_ms": ("output_stable_ms",),  # no new image painted in the output for N ms
}
LOGIN_FIELDS = ("storage_state", "url", "fill", "submit", "success")


def load_profile(name_or_path: str) -> UIProfile:
    r = Reader(find_yaml(name_or_path, PROFILES_DIR, "UI profile",
                         "unknown UI profile '{name}'; built-in profiles: {known} (or pass a YAML path)"))
    data = r.data
    r.only(data, PROFILE_FIELDS, "the UI profile")
    fields = r.get(data, "fields", dict, "the UI profile")
    r.only(fields, PROFILE_INPUTS, "fields")
    if "prompt" not in fields:
        raise r.error(fields, None, "fields must name the prompt box: prompt: SELECTOR")
    controls = r.get(data, "controls", dict, "the UI profile")
    r.only(controls, ACTIONS, "controls")
    if "generate" not in controls:
        raise r.error(controls, None, "controls must name the generate control: generate: SELECTOR")
    done = r.get(data, "done", (dict, list), "the UI profile")
    conditions = [read_condition(r, c, "done") for c in (done if isinstance(done, list) else [done])]
    error = r.get(data, "error", dict, "the UI profile", None)
    if error is not None:
        r.only(error, DONE_KINDS["text"], "error")
        r.get(error, "selector", str, "error")
        r.get(error, "text_matches", str, "error")
    return UIProfile(
        name=r.get(data, "name", str, "the UI profile"),
        path=r.get(data, "path", str, "the UI profile", "/"),
        ready=r.get(data, "ready", str, "the UI profile"),
        fields=plain(fields),
        controls=plain(controls),
        output=r.get(data, "output", str, "the UI profile"),
        final_image=r.get(data, "final_image", str, "the UI profile", "img"),
        done=conditions,
        error=plain(error),
        login=read_login(r, data),
        server_timings=read_server_timings(r, data),
        paint=read_paint(r, data),
        source=str(r.path),
        raw=plain(data),
        keep_query=read_keep_query(r, data),
    )


def read_condition(r: Reader, condition, what: str) -> dict:
    if not isinstance(condition, dict):
        raise r.error(r.data, "done", f"each {what} condition must be a mapping")
    for kind, keys in DONE_KINDS.items():
        if keys[0] in condition:
            r.only(condition, keys, f"{what} ({kind})")
            for key in keys:
                r.get(condition, key, int if key == "output_stable_ms" else str, what)
            return {"kind": kind, **plain(condition)}
    raise r.error(condition, None, f"a {what} condition needs one of: selector + text_matches, hidden, visible, enabled, output_stable_ms")


def read_server_timings(r: Reader, data) -> dict | None:
    """Where the server tells its own times: the job number shown in the page, and a URL."""
    timings = r.get(data, "server_timings", dict, "the UI profile", None)
    if timings is None:
        return None
    r.only(timings, ("job_selector", "job_pattern", "url"), "server_timings")
    for key in ("job_selector", "job_pattern", "url"):
        r.get(timings, key, str, "server_timings")
    if "{job}" not in timings["url"]:
        raise r.error(timings, "url", "server_timings url must contain {job}, e.g. /imagejourney/jobs/{job}")
    return plain(timings)


def read_keep_query(r: Reader, data) -> tuple[str, ...]:
    """Query parameters harmless enough to keep in recorded URLs (`keep_query: [mode, lang]`);
    every other query value is redacted."""
    names = r.get(data, "keep_query", list, "the UI profile", [])
    if not all(isinstance(name, str) and name for name in names):
        raise r.error(data, "keep_query", "keep_query must be a list of query parameter names, e.g. [mode]")
    return tuple(names)


def read_paint(r: Reader, data) -> str:
    """How paint time is read: Element Timing on <img>, screencast frames (canvas UIs), or
    auto (Element Timing, screencast when the output region holds a canvas and no image)."""
    paint = r.get(data, "paint", str, "the UI profile", "auto")
    if paint not in PAINT_METHODS:
        raise r.error(data, "paint", f"paint must be one of {', '.join(PAINT_METHODS)}")
    return paint


def read_login(r: Reader, data) -> dict | None:
    login = r.get(data, "login", dict, "the UI profile", None)
    if login is None:
        return None
    r.only(login, LOGIN_FIELDS, "login")
    if "storage_state" in login:
        r.get(login, "storage_state", str, "login")
        return plain(login)
    fill = r.get(login, "fill", dict, "login")
    for selector, source in fill.items():
        if not (isinstance(source, str) and source.startswith("$")):
            raise r.error(fill, selector, "login values must name an environment variable ($VAR), never the secret itself")
    r.get(login, "submit", str, "login")
    r.get(login, "success", str, "login")
    return plain(login)


def parse_shard(text: str) -> tuple[int, int]:
    """`--shard 2/4` → (2, 4)."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise ConfigError(f"--shard {text} must read I/N with 1 ≤ I ≤ N, e.g. --shard 1/2")
    return int(index), int(count)


def shard_of(pack: JourneyPack, index: int, count: int) -> JourneyPack:
    """The pack's share of journey runs for shard `index` of `count`: every count-th prompt (one
    journey run per prompt and seed), in the pack's order, starting at the index-th. The pack's
    raw text, and so its config hash, stays whole, so shards of one run can be merged."""
    return replace(pack, prompts=pack.prompts[index - 1::count])


MAX_CREATORS = 64  # one browser each, on one machine; past this, shard over machines (README, "Load")


@dataclass(frozen=True)
class Creator:
    """One simulated person: creator `index` (1-based) of `creators` walking at once."""
    creators: int
    index: int


@dataclass(frozen=True)
class LoadPlan:
    """`--creators 1,2,4,8 --ramp-s 10`: one level per count, run one after another; at each
    level every creator walks all the pack's journey runs once, starting evenly over the ramp,
    and no journey run starts after the time limit."""
    levels: tuple[int, ...]
    ramp_s: float
    time_limit_s: float

    def as_dict(self) -> dict:
        return {"creators": list(self.levels), "ramp_s": self.ramp_s, "time_limit_s": self.time_limit_s}


def journey_run_id(prompt_id: str, creator: Creator | None) -> str:
    """A journey run's name in the run directory: the prompt id, and under load which creator
    walked it at which level: `fisherman.n4-c3` (creator 3 of 4)."""
    return prompt_id if creator is None else f"{prompt_id}.n{creator.creators}-c{creator.index}"


def parse_creators(text: str, ramp_s: float, time_limit_s: float) -> LoadPlan:
    """`--creators 4` or `--creators 1,2,4,8` (a sweep), with its ramp and time limit."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and 1 <= int(part) <= MAX_CREATORS for part in parts):
        raise ConfigError(f"--creators {text} must be a whole number from 1 to {MAX_CREATORS}, or a list of them for a "
                          "sweep, e.g. --creators 4 or --creators 1,2,4,8")
    levels = tuple(int(part) for part in parts)
    if len(set(levels)) != len(levels):
        raise ConfigError(f"--creators {text} names a count twice; list each once, e.g. --creators 1,2,4,8")
    if ramp_s < 0 or time_limit_s <= 0:
        raise ConfigError(f"--ramp-s must be 0 or more and --load-time-limit-s more than 0 (got {ramp_s:g} and "
                          f"{time_limit_s:g})")
    return LoadPlan(levels, ramp_s, time_limit_s)


def journey_run_plan(pack: JourneyPack, load: LoadPlan | None) -> list[tuple[str, Prompt]]:
    """(journey run id, prompt) for every journey run the session will walk, in order."""
    if load is None:
        return [(prompt.id, prompt) for prompt in pack.prompts]
    return [(journey_run_id(prompt.id, Creator(level, index)), prompt)
            for level in load.levels for index in range(1, level + 1) for prompt in pack.prompts]


def check_compatible(pack: JourneyPack, profile: UIProfile) -> None:
    """Every step of the pack must be something the profile can operate."""
    needed = {s.kind for s in pack.steps} & set(ACTIONS)
    for action in sorted(needed - set(profile.controls)):
        raise ConfigError(
            f"the journey '{pack.name}' has {action} steps but the UI profile '{profile.name}' ({profile.source}) "
            f"names no {action} control; add controls: {{{action}: SELECTOR}} or drop the step"
        )
    if any(s.kind == "repeat" for s in pack.steps) and "seed" not in profile.fields:
        raise ConfigError(
            f"the journey '{pack.name}' has repeat steps (the same seed again) but the UI profile '{profile.name}' "
            "names no seed field; add fields: {seed: SELECTOR} or drop the step"
        )
    if "edit" in needed and "edit_prompt" not in profile.fields:
        raise ConfigError(
            f"the journey '{pack.name}' has edit steps but the UI profile '{profile.name}' names no edit_prompt field"
        )
    if any(s.mask for s in pack.steps) and "mask" not in profile.fields:
        raise ConfigError(
            f"the journey '{pack.name}' has edit steps with a mask but the UI profile '{profile.name}' names no mask "
            "field; add fields: {mask: SELECTOR} (with {value} where the region's name goes)"
        )
