"""Live previews past Gradio's image streaming.

Stock Gradio sends each yielded image as a file: the server writes a PNG to its cache, the page
is told its URL and fetches it. That costs tens of milliseconds per preview and drops
intermediate yields when they come quickly. Here each preview goes as a JPEG data URL over
Server-Sent Events (`GET /imagejourney/live?session=…`) to the browser tab whose Gradio session
started the job; a small script in the page (LIVE_JS) shows it over the output image. The
final still comes through Gradio, so the app's behaviour is otherwise unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading

from PIL import Image

KEEPALIVE_S = 15


class LiveChannels:
    """One queue per connected browser session; worker threads publish, SSE streams read."""

    def __init__(self):
        self.lock = threading.Lock()
        self.subscribers: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}

    def publish(self, session: str | None, message: dict) -> bool:
        """Send to every stream of `session`; False when none is connected."""
        with self.lock:
            targets = list(self.subscribers.get(session or "", []))
        for loop, queue in targets:
            loop.call_soon_threadsafe(queue.put_nowait, message)
        return bool(targets)

    def claim(self, session: str) -> bool:
        """Whether a new watcher may stream `session`: only when nobody watches it yet."""
        with self.lock:
            return not self.subscribers.get(session)

    async def stream(self, session: str):
        queue: asyncio.Queue = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self.lock:
            self.subscribers.setdefault(session, []).append(entry)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    yield f"data: {json.dumps(message)}\n\n"
                except TimeoutError:
                    yield ": keepalive\n\n"
        finally:
            with self.lock:
                self.subscribers[session].remove(entry)
                if not self.subscribers[session]:
                    del self.subscribers[session]


def preview_message(job: int, step: int, image: Image.Image, width: int) -> dict:
    """The preview as it is (a linear preview is latent-sized) and the width to show it at."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return {
        "job": job,
        "step": step,
        "width": width,
        "src": "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode(),
    }


# Shows live previews over the output image until the next final replaces the output image.
LIVE_JS = """
() => {
  const connect = () => {
    const session = window.__gradio_session_hash__;
    if (!session) return setTimeout(connect, 50);
    const events = new EventSource("imagejourney/live?session=" + encodeURIComponent(session));
    events.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const live = document.querySelector("#live-preview img");
      if (!live) return;
      live.src = message.src;
      live.style.width = message.width + "px";
      live.dataset.job = message.job;
      live.style.display = "block";
    };
  };
  connect();
  // A new final in the Gradio output image, or an error in the status line, ends the live preview.
  new MutationObserver(() => {
    const live = document.querySelector("#live-preview img");
    const output = document.querySelector("#output img");
    const status = document.querySelector("#status");
    if (!live) return;
    if (output && output.src !== live.dataset.finalSeen) {
      live.dataset.finalSeen = output.src;
      live.style.display = "none";
    }
    if (status && status.innerText.trim().startsWith("Error")) live.style.display = "none";
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["src"], childList: true, characterData: true });
}
"""
