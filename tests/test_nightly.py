"""The nightly workflow is ready to copy: every command it runs exists."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from imagejourney.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def run_scripts() -> list[str]:
    scripts = []
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert workflow[True]["schedule"] and "workflow_dispatch" in workflow[True]  # `on:` reads as True in YAML 1.1
        scripts += [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    return scripts


def test_the_sharded_workflow_runs_every_shard_then_merges_them():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly-sharded.yml").read_text())
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    shards = shard["strategy"]["matrix"]["shard"]
    runs = " ".join(step.get("run", "") for step in shard["steps"])
    assert f"--shard ${{{{ matrix.shard }}}}/{len(shards)}" in runs and shards == list(range(1, len(shards) + 1))
    assert shard["strategy"]["fail-fast"] is False
    assert merge["needs"] == "shard" and merge["if"] == "always()"
    merge_runs = " ".join(step.get("run", "") for step in merge["steps"])
    assert "imagejourney merge shards/shard-*/*" in merge_runs and "needs.shard.result" in merge_runs


def subcommands(parser) -> dict:
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_imagejourney_command_in_the_workflow_exists():
    commands = subcommands(build_parser())
    seen = []
    for script in run_scripts():
        for line in script.splitlines():
            for match in re.finditer(r"\.venv/bin/imagejourney ([\w-]+)(?: ([\w-]+))?", line):
                command, sub = match.groups()
                assert command in commands, line
                inner = [a for a in commands[command]._actions if a.__class__.__name__ == "_SubParsersAction"]
                if inner:
                    assert sub in inner[0].choices, line
                seen.append(command)
    assert {"compare", "history", "merge"} <= set(seen)


def test_every_pytest_option_in_the_workflow_exists():
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", "e2e/", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    ).stdout
    lines = [line for script in run_scripts() for line in script.splitlines() if "bin/pytest e2e/" in line]
    assert lines
    for line in lines:
        for word in shlex.split(line.split("|")[0]):
            if word.startswith("--"):
                assert re.search(rf"{re.escape(word)}[ =,]", help_text), word
    assert "setup.sh" in "".join(run_scripts())
