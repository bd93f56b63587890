"""Which Chromium to launch: Playwright's own when it is installed, else the system's.

`playwright install` cannot download browsers everywhere (closed networks, CI mirrors); the
Debian/Ubuntu `chromium` package works with Playwright too. Which one was used is recorded in
the run manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SYSTEM_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
NO_CHROMIUM = (
    "no Chromium found: run ./setup.sh, or install one with `apt-get install -y chromium` "
    "or `python -m playwright install chromium`"
)


class NoBrowser(Exception):
    pass


def resolve_chromium(managed_executable: str) -> tuple[str | None, str]:
    """Return (executable_path to pass to launch, or None for Playwright's own; source)."""
    if Path(managed_executable).exists():
        return None, "playwright"
    for name in SYSTEM_CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found, "system"
    raise NoBrowser(NO_CHROMIUM)
