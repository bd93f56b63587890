"""Fixtures for the tool's own tests: pytest-playwright's browser, launched as in e2e/."""

import functools
import http.server
import threading
from pathlib import Path

import pytest
from imagejourney.journeys.browser import chromium_launch_args
from imagejourney.journeys.config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, browser_type):
    flags = load_config(ROOT / "playwright.config.py")["BROWSER"]["args"]
    return chromium_launch_args(browser_type_launch_args, browser_type.executable_path, flags)[0]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def plain_ui_url():
    """tests/plain_ui served on a free local port."""
    handler = functools.partial(QuietHandler, directory=str(Path(__file__).parent / "plain_ui"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
