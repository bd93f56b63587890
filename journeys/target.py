"""Start and stop the bundled reference app as a subprocess on a free local port.

It is started through the same entry as `imagejourney serve` (`python -m imagejourney.reference_app`), and
is ready when `GET /imagejourney/info` answers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

STARTUP_TIMEOUT_S = 180


class TargetUnavailable(Exception):
    """One sentence: why the target cannot be used and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def fetch_info(base_url: str) -> dict | None:
    try:
        with urllib.request.urlopen(base_url + "imagejourney/info", timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


class RemoteTarget:
    """A product already running at a URL (staging); nothing is started or stopped."""

    def __init__(self, url: str):
        self.url = url if url.endswith("/") else url + "/"
        self.info = fetch_info(self.url)  # a deployed reference app says what it runs; others don't
        self.log_path = None

    @classmethod
    def check(cls, url: str) -> RemoteTarget:
        """Any HTTP answer (a 401 or 404 too) means reachable; no answer is one sentence."""
        try:
            urllib.request.urlopen(url, timeout=15).close()
        except urllib.error.HTTPError:
            pass
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TargetUnavailable(
                f"cannot reach {url} ({reason}); check --base-url or the target's URL in playwright.config.py"
            ) from None
        return cls(url)


class ReferenceApp:
    """Context manager: `with ReferenceApp("tiny", log_path) as app: app.url, app.info`."""

    def __init__(
        self,
        model: str,
        log_path: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}/"
        self.log_path = log_path
        self.args = [
            sys.executable,
            "-m",
            "imagejourney.reference_app",
            "--host",
            host,
            "--port",
            str(self.port),
            "--model",
            model,
            *extra_args,
        ]
        self.process: subprocess.Popen | None = None
        self.info: dict | None = None

    def __enter__(self) -> ReferenceApp:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.close()
                raise TargetUnavailable(f"the reference app could not start: {self.last_log_line()}")
            self.info = fetch_info(self.url)
            if self.info is not None:
                return self
            time.sleep(0.25)
        self.close()
        raise TargetUnavailable(f"the reference app did not answer within {STARTUP_TIMEOUT_S} s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def last_log_line(self) -> str:
        lines = [line for line in self.log_path.read_text().splitlines() if line.strip()]
        return lines[-1].removeprefix("imagejourney serve: ") if lines else "it exited with no output"
