"""What a product's own API says, read with JMESPath from its JSON answers: its version, model
and device (the profile's `about:`), and per action the job's own times and the seed that ran
(`server_timings:`). ComfyUI and InvokeAI tell these in their API, not on the page.

Per action, `ServerWatch` sees what the page receives after the click: the JSON answer to the
request the click sent (whose job id it holds, e.g. InvokeAI's enqueue_batch → item_ids, ComfyUI's
POST /prompt → prompt_id) and websocket frames (the first progress image). After the action the
job's URL is fetched and its times converted to epoch ms, as the reference app gives them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import jmespath
from jmespath.exceptions import JMESPathError
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

if TYPE_CHECKING:
    from .profile import ServerTimings

CLOCKS = ("epoch_ms", "epoch_s", "iso")
# A profile's names for the server's moments → the keys the audit reads (the reference app's own).
TIME_KEYS = {
    "received": "request_received",
    "inference_start": "inference_start",
    "first_preview": "previews_produced",
    "final": "final_produced",
}


def search(path: str, data):
    """JMESPath `path` in `data`; None where it finds nothing or `data` does not fit it."""
    try:
        return jmespath.search(path, data)
    except (JMESPathError, TypeError, ValueError):
        return None


def epoch_ms(value, clock: str) -> float | None:
    """A server's time as epoch ms: from epoch ms, epoch s or ISO 8601 (no zone: UTC)."""
    if value is None or isinstance(value, bool):
        return None
    if clock == "iso":
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return round(moment.timestamp() * 1000, 1)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number * 1000 if clock == "epoch_s" else number, 1)


class ServerWatch:
    """The page's responses and websocket frames during one action, for `server_timings`."""

    def __init__(self, page: Page, spec: ServerTimings | None):
        self.spec: ServerTimings = spec or {}
        self.responses: list = []
        self.frames: list[tuple[float, str]] = []  # (epoch ms when the harness saw it, payload)
        self.watching = False
        if "request" in self.spec.get("job", {}):
            page.on("response", self.on_response)
        if self.spec.get("websocket"):
            page.on("websocket", self.on_websocket)  # before the page opens: sockets it opens later are seen

    def on_response(self, response) -> None:
        if self.watching and self.spec["job"]["request"] in response.url:
            self.responses.append(response)

    def on_websocket(self, socket) -> None:
        if any(rule["url"] in socket.url for rule in self.spec["websocket"].values()):

            def on_frame(payload: str | bytes) -> None:
                if self.watching:
                    text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
                    self.frames.append((time.time() * 1000, text))

            socket.on("framereceived", on_frame)

    def begin(self) -> None:
        """Start watching, just before the action's click."""
        self.responses.clear()
        self.frames.clear()
        self.watching = True

    def collect(self, page: Page, base_url: str) -> dict | None:
        """After the action: {job, times (epoch ms, the audit's keys), seed} or {missing: reason}."""
        self.watching = False
        if not self.spec:
            return None
        job = self.job_id(page)
        if job is None:
            return {
                "missing": "no job id: "
                + (
                    "the page shows none"
                    if "selector" in self.spec["job"]
                    else f"no answer to {self.spec['job']['request']} named one"
                )
            }
        try:
            response = page.request.get(base_url.rstrip("/") + self.spec["url"].format(job=job))
        except PlaywrightError as exc:
            return {"job": job, "missing": str(exc).splitlines()[0]}
        if not response.ok:
            return {"job": job, "missing": f"HTTP {response.status}"}
        try:
            answer = response.json()
        except (PlaywrightError, ValueError):
            return {"job": job, "missing": "the job's answer is not JSON"}
        if "times" not in self.spec:  # the reference app's own keys, as they are
            return {"job": job, "times": answer}
        times = {key: epoch_ms(search(path, answer), self.spec["clock"]) for key, path in self.spec["times"].items()}
        seen_previews = self.frames_for("first_preview")
        if times.get("first_preview") is None and seen_previews:
            times["first_preview"] = seen_previews[0]
        found: dict[str, float | list[float] | None] = {TIME_KEYS[key]: value for key, value in times.items()}
        if "previews_produced" in found:  # the audit's key is a list of times: every preview seen, else the one told
            first_preview = times["first_preview"]
            if seen_previews and first_preview == seen_previews[0]:
                found["previews_produced"] = seen_previews
            else:
                found["previews_produced"] = [first_preview] if first_preview is not None else []
        seed = search(self.spec["seed"], answer) if "seed" in self.spec else None
        return {
            "job": job,
            "times": found,
            "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        }

    def job_id(self, page: Page) -> str | None:
        spec = self.spec["job"]
        if "selector" in spec:
            try:
                match = re.search(spec["pattern"], page.inner_text(spec["selector"], timeout=2_000))
            except PlaywrightError:
                return None
            return match.group(1) if match else None
        for response in self.responses:
            try:
                found = search(spec["id"], response.json())
            except (PlaywrightError, ValueError):
                continue
            if found is not None:
                return str(found)
        return None

    def frames_for(self, moment: str) -> list[float]:
        """When the harness saw each websocket frame for `moment` (epoch ms; a few ms after the
        browser received it): for first_preview, every progress image the product sent."""
        rule = self.spec.get("websocket", {}).get(moment)
        if not rule:
            return []
        return [round(t, 1) for t, payload in self.frames if rule["contains"] in payload]


def fetch_about(base_url: str, about: list[dict]) -> dict | None:
    """The product's version, model and device from its API (`about:`), with the URLs asked;
    what an answer lacks is left out and what could not be fetched is said."""
    if not about:
        return None
    found: dict = {"sources": []}
    for source in about:
        url = base_url.rstrip("/") + source["url"]
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as exc:
            found.setdefault("problems", []).append(f"{source['url']}: {getattr(exc, 'reason', exc)}")
            continue
        found["sources"].append(source["url"])
        for key in ("version", "model", "device"):
            if key in source and (value := search(source[key], answer)) is not None:
                found[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)[:200]
    return found
