"""The code's habits: ruff (lint and format) and mypy pass on the packages.

mypy reads the package as it is installed (imagejourney.journeys, imagejourney.reports, …): the
folders at the repository root are linked into that layout in a temporary folder, since mypy
does not follow setuptools' package-dir.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PACKAGES = {"journeys": "journeys", "reports": "reports", "reference_app": "reference_app"}


def test_ruff_finds_nothing():
    lint = subprocess.run([BIN / "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    form = subprocess.run([BIN / "ruff", "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert form.returncode == 0, form.stdout


def test_mypy_finds_nothing(tmp_path):
    package = tmp_path / "imagejourney"
    package.mkdir()
    for entry in (ROOT / "imagejourney").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in PACKAGES.items():
        (package / name).symlink_to(ROOT / folder)
    check = subprocess.run(
        [
            BIN / "mypy",
            "--config-file",
            ROOT / "pyproject.toml",
            "--cache-dir",
            ROOT / ".mypy_cache",
            "-p",
            "imagejourney",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout.replace(str(tmp_path) + "/", "")
