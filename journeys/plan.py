"""Who walks which journey runs: shards (`--shard I/N`, a deterministic share of a pack's journey
runs) and creators (`--creators`, simulated people walking at once, as a load plan)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .pack import JourneyPack, Prompt
from .yaml_reader import ConfigError


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
    return replace(pack, prompts=pack.prompts[index - 1 :: count])


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
        raise ConfigError(
            f"--creators {text} must be a whole number from 1 to {MAX_CREATORS}, or a list of them for a "
            "sweep, e.g. --creators 4 or --creators 1,2,4,8"
        )
    levels = tuple(int(part) for part in parts)
    if len(set(levels)) != len(levels):
        raise ConfigError(f"--creators {text} names a count twice; list each once, e.g. --creators 1,2,4,8")
    if ramp_s < 0 or time_limit_s <= 0:
        raise ConfigError(
            f"--ramp-s must be 0 or more and --load-time-limit-s more than 0 (got {ramp_s:g} and {time_limit_s:g})"
        )
    return LoadPlan(levels, ramp_s, time_limit_s)


def journey_run_plan(pack: JourneyPack, load: LoadPlan | None) -> list[tuple[str, Prompt]]:
    """(journey run id, prompt) for every journey run the session will walk, in order."""
    if load is None:
        return [(prompt.id, prompt) for prompt in pack.prompts]
    return [
        (journey_run_id(prompt.id, Creator(level, index)), prompt)
        for level in load.levels
        for index in range(1, level + 1)
        for prompt in pack.prompts
    ]
