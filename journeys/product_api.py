"""What a product's own API says, read with JMESPath from its JSON answers: its version, model
and device (the profile's `about:`), and per action the job's own times and the seed that ran
(`server_timings:`). ComfyUI and InvokeAI tell these in their API, not on the page.

Per action, `ServerWatch` sees what the page receives after the click: the JSON answer to the
request the click sent (whose job id it holds, e.g. InvokeAI's enqueue_batch → item_ids, ComfyUI's
POST /prompt → prompt_id) and websocket frames (the first progress image). After the action the
job's URL is fetched and its times converted to epoch ms, as the reference app gives them.

A websocket frame's time is when the page itself received it (SOCKET_ARRIVALS). Seen from Python
over DevTools instead, ComfyUI's first preview frame came 43–97 ms after its server sent it (p50
54; 16 ms for the page), once after the preview had already painted.
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


# When the page receives each websocket frame a `server_timings.websocket` rule matches: every
# socket the page opens whose URL holds a rule's `url` gets a message listener before the page
# adds its own, which notes [moment, epoch ms] for each frame holding the rule's `contains` (a
# binary frame is read as UTF-8, its first 64 KiB). The time is the message event's timeStamp,
# on the page's clock (performance.timeOrigin + timeStamp). Sockets opened in a worker are not seen.
SOCKET_ARRIVALS = """(rules) => {
  if (window.__imagejourneySockets) return;
  const arrivals = [], decoder = new TextDecoder("utf-8"), PREFIX = 65536;
  const note = (mine, text, at) => {
    for (const [moment, rule] of mine) if (text.includes(rule.contains)) arrivals.push([moment, at]);
  };
  window.WebSocket = new Proxy(window.WebSocket, {
    construct(target, args, newTarget) {
      const socket = Reflect.construct(target, args, newTarget);
      const mine = rules.filter(([, rule]) => String(args[0]).includes(rule.url));
      if (mine.length) socket.addEventListener("message", (event) => {
        const at = performance.timeOrigin + event.timeStamp, data = event.data;
        if (typeof data === "string") note(mine, data, at);
        else if (data instanceof ArrayBuffer) note(mine, decoder.decode(new Uint8Array(data, 0, Math.min(data.byteLength, PREFIX))), at);
        else if (data instanceof Blob) data.slice(0, PREFIX).text().then((text) => note(mine, text, at));
      });
      return socket;
    },
  });
  window.__imagejourneySockets = { take: () => arrivals.splice(0) };
}"""


class ServerWatch:
    """The page's responses and websocket frames during one action, for `server_timings`."""

    def __init__(self, page: Page, spec: ServerTimings | None):
        self.spec: ServerTimings = spec or {}
        self.responses: list = []
        self.frames: list[tuple[float, str]] = []  # (epoch ms when the page received it, its moment)
        self.watching = False
        self.began_ms = 0.0
        if "request" in self.spec.get("job", {}):
            page.on("response", self.on_response)
        if self.spec.get("websocket"):  # before the page opens: every document it loads listens
            page.add_init_script(f"({SOCKET_ARRIVALS})({json.dumps(list(self.spec['websocket'].items()))});")

    def on_response(self, response) -> None:
        if self.watching and self.spec["job"]["request"] in response.url:
            self.responses.append(response)

    def begin(self) -> None:
        """Start watching, just before the action's click."""
        self.responses.clear()
        self.frames.clear()
        self.began_ms = time.time() * 1000
        self.watching = True

    def take_frames(self, page: Page) -> None:
        """The frames the page received since the click (earlier ones belong to no action)."""
        if not self.spec.get("websocket"):
            return
        try:
            arrivals = page.evaluate("() => window.__imagejourneySockets ? window.__imagejourneySockets.take() : []")
        except PlaywrightError:  # the page is gone: its frames with it
            arrivals = []
        self.frames = sorted((at, moment) for moment, at in arrivals if at >= self.began_ms)

    def collect(self, page: Page, base_url: str) -> dict | None:
        """After the action: {job, times (epoch ms, the audit's keys), seed} or {missing: reason}."""
        self.watching = False
        if not self.spec:
            return None
        self.take_frames(page)
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
        """When the page received each websocket frame for `moment` (epoch ms): for
        first_preview, every progress image the product sent."""
        return [round(t, 1) for t, seen in self.frames if seen == moment]


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
