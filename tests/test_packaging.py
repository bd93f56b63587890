"""The wheel installs one import namespace, imagejourney, with the files its code reads."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# What a build must not see: environments, results, caches (a build in place leaves build/ behind).
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".invokeai",
    "journey-results",
    "test-results",
    "build",
    "site",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
)


def test_wheel_holds_only_the_imagejourney_namespace(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(source),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("imagejourney-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"imagejourney", wheel.name.split("-py")[0] + ".dist-info"}
    for needed in (
        "imagejourney/journeys/probe.js",
        "imagejourney/reports/templates/report.html.j2",
        "imagejourney/journeys/profiles/invokeai.yaml",
        "imagejourney/journeys/packs/portrait.yaml",
        "imagejourney/reference_app/models/portrait-world/model_index.json",
        "imagejourney/bench/fidelity_page.html",
    ):
        assert needed in names

    # Installed beside nothing else: the subpackages import from the wheel, `reports` is not there.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    check = (
        "import importlib.util, imagejourney.reports.render, imagejourney.journeys.runner;"
        "print(imagejourney.reports.render.__file__);"
        "print([importlib.util.find_spec(n) for n in ('reports', 'journeys', 'reference_app')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(target / "imagejourney" / "reports"))
    assert out[1] == "[None, None, None]"
