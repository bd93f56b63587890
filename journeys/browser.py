"""Which Chromium to launch, with which flags.

Playwright's own Chromium when it is installed, else the system's: `playwright install`
cannot download browsers everywhere (closed networks, CI mirrors), and the Debian/Ubuntu
`chromium` package works with Playwright too. Which one was used is recorded in the run
manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SYSTEM_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
NO_CHROMIUM = (
    "no Chromium found: run ./setup.sh, or install one with `apt-get install -y chromium` "
    "or `python -m playwright install chromium`"
)
ONLY_CHROMIUM = (
    "imagejourney times paints with Element Timing, which only Chromium has; use --browser chromium "
    "(with --browser-channel chrome or msedge for a branded build)"
)


class NoBrowser(Exception):
    pass


def video_recorder_missing(browsers_path: Path) -> str | None:
    """Playwright records video with its own ffmpeg build; without it, one sentence."""
    if any(browsers_path.glob("ffmpeg-*/ffmpeg*")):
        return None
    return ("--video needs Playwright's ffmpeg, which is not installed: run `python -m playwright install ffmpeg` "
            "(it downloads from Playwright's CDN), or leave out --video")


def resolve_chromium(managed_executable: str) -> tuple[str | None, str]:
    """Return (executable_path to pass to launch, or None for Playwright's own; source)."""
    if Path(managed_executable).exists():
        return None, "playwright"
    for name in SYSTEM_CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found, "system"
    raise NoBrowser(NO_CHROMIUM)


def chromium_launch_args(launch_args: dict, managed_executable: str, flags: list[str]) -> tuple[dict, str]:
    """Launch arguments with imagejourney's flags and the Chromium to use; and its source."""
    executable, source = resolve_chromium(managed_executable)
    args = {**launch_args, "args": [*launch_args.get("args", []), *flags]}
    if executable:
        args["executable_path"] = executable
    return args, source
