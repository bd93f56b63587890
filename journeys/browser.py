"""Which Chromium to use: launched here, or one on another machine.

Launched here: Playwright's own Chromium when it is installed, else the system's:
`playwright install` cannot download browsers everywhere (closed networks, CI mirrors), and
the Debian/Ubuntu `chromium` package works with Playwright too.

On another machine (a browser pool, a Selenium Grid node, a container):
  --browser-ws ws://HOST:PORT/…  a Playwright browser server (`playwright run-server`, or a
                                service that speaks its protocol); it launches a browser for
                                each connection
  --cdp http://HOST:PORT         a Chromium started with --remote-debugging-port; each
                                connection gets its own context in that one browser
Paint timing is unchanged: it is taken in the page, on that browser's clocks. Which browser
was used is recorded in the run manifest (a remote address without its query values).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, BrowserType, Playwright
from playwright.sync_api import Error as PlaywrightError

from .redact import redact_url
from .yaml_reader import ConfigError

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
    return (
        "--video needs Playwright's ffmpeg, which is not installed: run `python -m playwright install ffmpeg` "
        "(it downloads from Playwright's CDN), or leave out --video"
    )


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


@dataclass(frozen=True)
class RemoteBrowser:
    ws: str | None = None  # a Playwright browser server
    cdp: str | None = None  # a Chromium's remote-debugging endpoint

    @classmethod
    def from_options(cls, ws: str | None, cdp: str | None) -> RemoteBrowser | None:
        if ws and cdp:
            raise ConfigError("--browser-ws and --cdp both name a browser to connect to; give one of them")
        if ws and not ws.startswith(("ws://", "wss://")):
            raise ConfigError(
                f"--browser-ws {redact_url(ws)} must be a WebSocket address such as ws://127.0.0.1:3000/ "
                "(what `playwright run-server` prints)"
            )
        if cdp and not cdp.startswith(("http://", "https://", "ws://", "wss://")):
            raise ConfigError(
                f"--cdp {redact_url(cdp)} must be a remote-debugging address such as http://127.0.0.1:9222"
            )
        return cls(ws, cdp) if ws or cdp else None

    @property
    def address(self) -> str:
        """The address to connect to: the browser server's, else the CDP endpoint's (from_options
        makes a RemoteBrowser only when one of them is given)."""
        address = self.ws or self.cdp
        assert address, "a RemoteBrowser names a browser server (ws) or a CDP endpoint (cdp)"
        return address

    @property
    def source(self) -> str:
        """For the manifest: the kind and the address, without query values (tokens)."""
        return f"browser server {redact_url(self.address)}" if self.ws else f"CDP {redact_url(self.address)}"

    def connect(self, browser_type: BrowserType, launch_args: dict) -> Browser:
        """Connect, or raise NoBrowser with one sentence. A browser server gets imagejourney's
        launch flags and headless setting in Playwright's launch-options header (it applies the
        flags only when started with --unsafe; launch-options in the address itself win)."""
        where = redact_url(self.address)
        try:
            if self.ws:
                options = {"headless": launch_args.get("headless", True), "args": launch_args.get("args", [])}
                return browser_type.connect(
                    self.ws, timeout=30_000, headers={"x-playwright-launch-options": json.dumps(options)}
                )
            return browser_type.connect_over_cdp(self.address, timeout=30_000)
        except PlaywrightError as exc:
            reason = str(exc).split("Call log:")[0].strip().splitlines()[0].split(": ", 1)[-1][:300]
            if self.ws and "Executable doesn't exist" in reason:
                raise NoBrowser(
                    f"the browser server at {where} has no Playwright Chromium ({reason.split(' at ')[-1]} is missing "
                    "there); run `python -m playwright install chromium` on that machine, or start the server with "
                    "--unsafe and name its Chromium in the address: "
                    """ws://HOST:PORT/?launch-options={"executablePath":"/usr/bin/chromium"} (URL-encoded)"""
                ) from None
            how = (
                "start one with `python -m playwright run-server --host 127.0.0.1 --port N` (add --unsafe to let "
                "imagejourney pass executablePath and flags)"
                if self.ws
                else "start Chromium with --remote-debugging-port=N"
            )
            raise NoBrowser(
                f"could not connect to the browser at {where} ({reason}); check the address, or {how}"
            ) from None


def did_not_start(exc: PlaywrightError, launch_args: dict) -> NoBrowser:
    """A Chromium that exits while launching, in one sentence: its own fatal error (a too long
    TMPDIR, a missing library) rather than Playwright's "Target … has been closed"."""
    logs = str(exc).split("Call log:")[0].splitlines()
    fatal = [line.rsplit("] ", 1)[-1] for line in logs if ":FATAL:" in line]
    reason = (fatal or [line for line in logs if line.strip()] or ["no output"])[0].strip()[:300]
    which = launch_args.get("executable_path") or "Playwright's own"
    return NoBrowser(f"Chromium ({which}) did not start: {reason.rstrip('.')}; fix what it names and run again")


def launch_chromium(playwright: Playwright, launch_args: dict) -> Browser:
    try:
        return playwright.chromium.launch(**launch_args)
    except PlaywrightError as exc:
        raise did_not_start(exc, launch_args) from None


def open_browser(playwright: Playwright, launch_args: dict, remote: RemoteBrowser | None) -> Browser:
    """One more browser for the calling thread's Playwright: a creator under load gets its own."""
    if remote:
        return remote.connect(playwright.chromium, launch_args)
    return launch_chromium(playwright, launch_args)
