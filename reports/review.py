"""Human review: `imagejourney review RUN_DIR` serves the run's contact sheet on 127.0.0.1 with
useful / not useful buttons (keys: y, n, arrows) and appends each answer to labels.csv in the
run directory. Labels are the final word on usefulness: `imagejourney report RUN_DIR` then
recomputes TTUI, iterations-to-useful and acceptance rate from them.

Only the run's own candidate images are served or labelled; the server listens on loopback
unless told otherwise.
"""

from __future__ import annotations

import csv
import getpass
import http.server
import json
import mimetypes
import threading
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .audit import load_run, summarize
from .records import LABEL_COLUMNS, read_labels
from .render import environment


class ReviewServer:
    """`with ReviewServer(run_dir, port) as server: server.url` — serves until closed."""

    def __init__(self, run_dir: Path, port: int = 0, host: str = "127.0.0.1", reviewer: str | None = None):
        self.run = load_run(Path(run_dir))
        self.reviewer = reviewer or getpass.getuser()
        self.candidates = [c for c in summarize(self.run)["candidates"] if c["image"]]
        self.images = {c["image"] for c in self.candidates}
        self.lock = threading.Lock()
        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), self.handler())
        except OSError as exc:
            raise OSError(f"port {port} on {host} is not free ({exc.strerror}); pass --port with a free port") from None
        self.url = f"http://{host}:{self.httpd.server_port}/"

    def __enter__(self) -> "ReviewServer":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def page(self) -> bytes:
        labels = read_labels(self.run.path)
        html = environment().get_template("review.html.j2").render(
            run_id=self.run.manifest.get("run_id", self.run.path.name), candidates=self.candidates, labels=labels,
            reviewer=self.reviewer)
        return html.encode()

    def append_label(self, image: str, useful: str, note: str) -> None:
        path = self.run.path / "labels.csv"
        with self.lock:
            new = not path.exists() or not path.stat().st_size
            with open(path, "a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(LABEL_COLUMNS)
                writer.writerow([image, useful, self.reviewer,
                                 datetime.now(timezone.utc).isoformat(timespec="seconds"), note])

    def handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = unquote(urlsplit(self.path).path).lstrip("/")
                if path == "":
                    return self.send(200, server.page(), "text/html; charset=utf-8")
                if path in server.images:  # only the run's own candidate images
                    data = (server.run.path / path).read_bytes()
                    return self.send(200, data, mimetypes.guess_type(path)[0] or "application/octet-stream")
                return self.send(404, b"not found", "text/plain")

            def do_POST(self):
                if urlsplit(self.path).path != "/label":
                    return self.send(404, b"not found", "text/plain")
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    image, useful = body["image"], body["useful"]
                except (ValueError, KeyError, TypeError):
                    return self.send(400, b"send {image, useful}", "text/plain")
                if image not in server.images or useful not in ("yes", "no"):
                    return self.send(400, b"unknown image, or useful is not yes/no", "text/plain")
                server.append_label(image, useful, str(body.get("note", ""))[:500])
                return self.send(200, json.dumps({"image": image, "useful": useful}).encode(), "application/json")

        return Handler
