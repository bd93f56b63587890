"""Journey packs: YAML files (journeys/packs/) read into plain dataclasses: prompts, seeds,
settings, steps, acceptance rule and budgets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from .operations import Operation, read_operations
from .yaml_reader import Located, Reader, find_yaml, plain

PACKS_DIR = Path(__file__).parent / "packs"
ACTIONS = ("generate", "reroll", "edit", "export")
PROMPT_PLACEHOLDER = "{prompt}"  # in an edit prompt: the journey's prompt
SETTINGS = ("steps", "guidance", "size", "aspect", "sampler")


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
    prompt: str | None = None  # edit prompt; {prompt} in it stands for the journey's prompt
    strength: float | None = None  # edit strength
    mask: str | None = None  # edit region (inpainting); None edits the whole image
    ms: int = 0  # think time
    before: tuple[Operation, ...] = ()  # untimed steps around it (a menu to open, a panel)
    after: tuple[Operation, ...] = ()

    def edit_text(self, journey_prompt: str) -> str:
        """The edit prompt to type: `{prompt}` replaced by the journey's prompt, as a creator
        keeps the prompt and adds the change ("{prompt}, now with glasses")."""
        assert self.prompt is not None, "read_steps gives every edit its prompt"
        return self.prompt.replace(PROMPT_PLACEHOLDER, journey_prompt)


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


PACK_FIELDS = (
    "name",
    "description",
    "cohort",
    "settings",
    "think_time_ms",
    "action_timeout_s",
    "recognisable_lpips",
    "prompts",
    "steps",
    "acceptance",
    "budgets",
)
PROMPT_FIELDS = ("id", "text", "negative", "seed", "seeds", "settings", "cohort")
# Acceptance rules and their threshold field; `all:` / `any:` compose them.
ACCEPTANCE_RULES = {"not_blank": "min_pixel_std", "clip_score": "min", "prompt_match": "min"}
BUDGET_METRICS = ("click_to_preview_ms", "click_to_final_ms", "click_to_export_ms", "ttui_ms")
# Pack names and prompt ids become file and directory names in the run directory.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def available_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def load_pack(name_or_path: str) -> JourneyPack:
    r = Reader(
        find_yaml(
            name_or_path,
            PACKS_DIR,
            "journey pack",
            "unknown journey '{name}'; available journeys: {known} (or pass the path of a journey pack YAML file)",
        )
    )
    data = r.data
    r.only(data, PACK_FIELDS, "the journey pack")
    settings = r.get(data, "settings", dict, "the journey pack", {})
    r.only(settings, SETTINGS, "settings")
    prompts = [
        p
        for i, item in enumerate(r.get(data, "prompts", list, "the journey pack"))
        for p in read_prompts(r, item, f"prompts[{i}]")
    ]
    if not prompts:
        raise r.error(data, "prompts", "'prompts' is empty; add at least one prompt with id, text and seed")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise r.error(data, "prompts", "prompt ids must be unique (with 'seeds', each seed becomes id-seed)")
    steps = [s for i, item in enumerate(r.get(data, "steps", list, "the journey pack")) for s in read_steps(r, i, item)]
    if not any(s.kind in ACTIONS for s in steps):
        raise r.error(data, "steps", "the journey has no action; add generate, reroll, edit or export steps")
    kinds = [s.kind for s in steps]
    if "repeat" in kinds and not {"generate", "reroll"} & set(kinds[: kinds.index("repeat")]):
        raise r.error(
            data, "steps", "a repeat step repeats the last generate or reroll with its seed; put one before it"
        )
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
        raise r.error(
            mapping,
            key,
            f"{what} '{value}' may hold only letters, digits, '-', '_' and '.' and may not "
            f"start with a dot (it names files in the run directory); use e.g. '{suggestion}'",
        )
    return value


AROUND = ("before", "after")  # untimed steps around a step (see operations.py)


class Around(TypedDict):
    """A step's untimed steps, as Step's keyword arguments."""

    before: tuple[Operation, ...]
    after: tuple[Operation, ...]


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
    around: Around = {
        "before": read_operations(r, options, "before", where),
        "after": read_operations(r, options, "after", where),
    }
    if kind == "edit":
        r.only(options, ("prompt", "strength", "mask", *AROUND), where)
        strength = float(r.get(options, "strength", (int, float), where, 0.6))
        if not 0 < strength <= 1:
            raise r.error(options, "strength", f"edit strength in {what} must be above 0 and at most 1")
        mask = r.get(options, "mask", str, where, None)
        return [Step(kind, prompt=r.get(options, "prompt", str, where), strength=strength, mask=mask, **around)]
    if kind == "reroll":
        r.only(options, ("times", *AROUND), where)
        return [Step(kind, **around)] * r.get(options, "times", int, where, 1)
    if kind == "think":
        r.only(options, ("ms",), where)
        return [Step(kind, ms=r.get(options, "ms", int, where))]
    if kind in ("prompt", "generate", "export", "repeat"):
        r.only(options, AROUND, where)
        return [Step(kind, **around)]
    line_of = item if isinstance(item, dict) else r.data
    raise r.error(
        line_of,
        kind if isinstance(item, dict) else "steps",
        f"{what}: unknown step '{kind}'; use prompt, think, repeat, {', '.join(ACTIONS)}",
    )


def read_acceptance(r: Reader, data) -> dict:
    """`{rule: not_blank, min_pixel_std: 8}`, `{rule: clip_score, min: 0.25}`, `{rule: prompt_match,
    min: 0.8}`, or `{all: [...]}` / `{any: [...]}` of those (nested as deep as needed)."""
    acceptance = plain(read_rule(r, r.get(data, "acceptance", dict, "the journey pack"), "acceptance"))
    if "'prompt_match'" in repr(acceptance):
        check_world_words(r, data)
    return acceptance


def check_world_words(r: Reader, data) -> None:
    """prompt_match judges prompts in the portrait world's words: each prompt and edit prompt of
    the pack must parse, else one sentence with its file and line."""
    from imagejourney.reference_app.portrait_world import UnknownWord, parse

    texts = [
        (item, "text")
        for item in r.get(data, "prompts", list, "the journey pack")
        if isinstance(item, dict) and isinstance(item.get("text"), str)
    ]
    texts += [
        (step["edit"], "prompt")
        for step in r.get(data, "steps", list, "the journey pack")
        if isinstance(step, dict) and isinstance(step.get("edit"), dict) and isinstance(step["edit"].get("prompt"), str)
    ]
    for mapping, key in texts:
        try:
            parse(mapping[key].replace(PROMPT_PLACEHOLDER, ""))  # the prompts themselves are checked above
        except UnknownWord as exc:
            raise r.error(
                mapping, key, f"{exc} (the acceptance rule prompt_match needs prompts in the portrait world's words)"
            ) from None


def read_rule(r: Reader, node, what: str) -> dict:
    if not isinstance(node, dict):
        raise r.error(
            r.data, "acceptance", f"{what} must be a mapping: {{rule: NAME, …}} or {{all: [...]}} / {{any: [...]}}"
        )
    for combinator in ("all", "any"):
        if combinator in node:
            r.only(node, (combinator,), what)
            rules = r.get(node, combinator, list, what)
            if not rules:
                raise r.error(node, combinator, f"'{combinator}' in {what} needs at least one rule")
            return {combinator: [read_rule(r, rule, f"{what}.{combinator}[{i}]") for i, rule in enumerate(rules)]}
    rule = r.get(node, "rule", str, what)
    if rule not in ACCEPTANCE_RULES:
        raise r.error(
            node,
            "rule",
            f"unknown acceptance rule '{rule}' in {what}; known: {', '.join(ACCEPTANCE_RULES)} "
            "(combine them with all: or any:)",
        )
    threshold = ACCEPTANCE_RULES[rule]
    r.only(node, ("rule", threshold), f"{what} ({rule})")
    r.get(node, threshold, (int, float), f"{what} ({rule})")
    return node


def read_recognisable(r: Reader, data) -> float:
    """`recognisable_lpips: 0.3`: time to recognisable preview counts to the first preview whose
    LPIPS to the action's final is at most this."""
    value = float(r.get(data, "recognisable_lpips", (int, float), "the journey pack", 0.3))
    if not 0 < value <= 1:
        raise r.error(
            data, "recognisable_lpips", "recognisable_lpips must be above 0 and at most 1 (an LPIPS distance)"
        )
    return value


def read_budgets(r: Reader, data) -> dict:
    """`budgets: {generate.click_to_final_ms.p95: 5000, ttui_ms.p50: 3000}` (ms)."""
    budgets = r.get(data, "budgets", dict, "the journey pack", {})
    for key, limit in budgets.items():
        parts = str(key).split(".")
        ok = (len(parts) == 3 and parts[0] in ACTIONS and parts[1] in BUDGET_METRICS[:3]) or (
            len(parts) == 2 and parts[0] == "ttui_ms"
        )
        if not ok or parts[-1] not in ("p50", "p95"):
            raise r.error(
                budgets,
                key,
                f"budget '{key}' must read ACTION.METRIC.p50|p95 (e.g. generate.click_to_final_ms.p95) or ttui_ms.p50|p95",
            )
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0:
            raise r.error(budgets, key, f"budget '{key}' must be a positive number of ms")
    return plain(budgets)
