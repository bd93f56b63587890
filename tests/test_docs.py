"""The documentation cannot drift from the code: every ```yaml block in docs/*.md is loaded
with the real loader (a UI profile with imagejourney.journeys.profile.load_profile, a journey pack with
imagejourney.journeys.pack.load_pack), and the site builds with `mkdocs build --strict`.

A block is a profile when it has `controls:`, a pack when it has `prompts:`. A block marked
with an HTML comment on the line before it is a fragment:

    <!-- profile fragment -->   merged (top-level keys) into a minimal profile, then loaded
    <!-- pack fragment -->      merged into a minimal journey pack, then loaded
    <!-- fragment -->           only parsed as YAML (keep these few)

A block that is only a snippet line (--8<-- "journeys/profiles/reference.yaml") loads that file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from imagejourney.journeys.pack import load_pack
from imagejourney.journeys.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(?:^<!--\s*(?P<mark>[a-z ]+?)\s*-->\n)?^```yaml\n(?P<body>.*?)^```", re.S | re.M)
SNIPPET = re.compile(r'^--8<--\s+"(?P<path>[^"]+)"\s*$')
MARKS = ("profile fragment", "pack fragment", "fragment")

BASE_PROFILE = {
    "name": "fragment",
    "ready": "#generate",
    "fields": {"prompt": "#prompt"},
    "controls": {"generate": "#generate"},
    "output": "#output",
    "done": {"output_stable_ms": 500},
}
BASE_PACK = {
    "name": "fragment",
    "prompts": [{"id": "one", "text": "a portrait", "seed": 1}],
    "steps": ["prompt", "generate"],
    "acceptance": {"rule": "not_blank", "min_pixel_std": 8},
}


def yaml_blocks() -> list[tuple[str, str | None, str]]:
    """(where, mark, body) for every ```yaml block of docs/*.md."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("body"))
            found.append((f"{page.name}:{line}", match.group("mark"), match.group("body")))
    return found


BLOCKS = yaml_blocks()


def test_the_docs_have_yaml_examples():
    assert len(BLOCKS) >= 10, "docs/*.md lost its YAML examples (or the block pattern no longer finds them)"
    fragments = [where for where, mark, _ in BLOCKS if mark == "fragment"]
    assert len(fragments) <= 3, f"too many YAML fragments that no loader checks: {fragments}"


@pytest.mark.parametrize("where, mark, body", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_yaml_example_loads(where, mark, body, tmp_path):
    assert mark in (None, *MARKS), f"{where}: unknown mark <!-- {mark} -->; use one of {MARKS}"
    snippet = SNIPPET.match(body.strip())
    if snippet:
        path = ROOT / snippet.group("path")
        assert path.is_file(), f"{where}: the snippet {path} does not exist"
        data = yaml.safe_load(path.read_text())
    else:
        path = tmp_path / "example.yaml"
        data = yaml.safe_load(body)
        assert isinstance(data, dict), f"{where}: a YAML example must be a mapping"
        if mark == "fragment":
            return
        if mark == "profile fragment":
            data = {**BASE_PROFILE, **data}
        elif mark == "pack fragment":
            data = {**BASE_PACK, **data}
        path.write_text(yaml.safe_dump(data, sort_keys=False) if mark else body)
    if "controls" in data:
        load_profile(str(path))
    elif "prompts" in data:
        load_pack(str(path))
    else:
        pytest.fail(
            f"{where}: neither a UI profile (controls:) nor a journey pack (prompts:); "
            "mark it <!-- profile fragment -->, <!-- pack fragment --> or <!-- fragment -->"
        )


def test_readme_points_at_docs_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 10_000, "README.md must stay at most 10 KB; move the detail into docs/"
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).is_file(), f"README.md links to {target}, which does not exist"


def test_no_page_points_at_internal_files():
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text()
        for internal in ("DESIGN.md", "../shared", "shared/"):
            assert internal not in text, f"{page.name} mentions {internal}, which users do not have"


def test_mkdocs_build_strict(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed; setup.sh installs it (pip install -e '.[docs]')")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]'); under CI this fails")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
