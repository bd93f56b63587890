"""Human review: `imagejourney review RUN_DIR` serves the run's contact sheet on 127.0.0.1 with
useful / not useful buttons (keys: y, n, arrows) and appends each answer to labels.csv in the
run directory. Labels are the final word on usefulness: `imagejourney report RUN_DIR` then
recomputes TTUI, iterations-to-useful and acceptance rate from them.

Only the run's own candidate images are served or labelled; the server listens on loopback
unless told otherwise, and every request needs the session's token (local_server.py): the page
opened from the printed URL sends it with each label, so no other page can write labels.csv.
"""

from __future__ import annotations

import csv
import getpass
import json
import mimetypes
import threading
from datetime import UTC, datetime
from pathlib import Path

from .local_server import HTML, NOT_FOUND, TEXT, TOKEN_HEADER, LocalServer
from .records import LABEL_COLUMNS, read_labels
from .render import environment
from .run import load_run
from .summary import summarize


class ReviewServer(LocalServer):
    """`with ReviewServer(run_dir, port) as server: server.url` — serves until closed."""

    def __init__(self, run_dir: Path, port: int = 0, host: str = "127.0.0.1", reviewer: str | None = None):
        self.run = load_run(Path(run_dir))
        self.reviewer = reviewer or getpass.getuser()
        self.candidates = [c for c in summarize(self.run)["candidates"] if c["image"]]
        self.images = {c["image"] for c in self.candidates}
        self.lock = threading.Lock()
        super().__init__(port, host, guard_pages=True)

    def page(self) -> bytes:
        labels = read_labels(self.run.path)
        html = (
            environment()
            .get_template("review.html.j2")
            .render(
                run_id=self.run.manifest.get("run_id", self.run.path.name),
                candidates=self.candidates,
                labels=labels,
                reviewer=self.reviewer,
                token=self.token,
                token_header=TOKEN_HEADER,
            )
        )
        return html.encode()

    def append_label(self, image: str, useful: str, note: str) -> None:
        path = self.run.path / "labels.csv"
        with self.lock:
            new = not path.exists() or not path.stat().st_size
            with open(path, "a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(LABEL_COLUMNS)
                writer.writerow([image, useful, self.reviewer, datetime.now(UTC).isoformat(timespec="seconds"), note])

    def get(self, path: str) -> tuple[int, bytes, str]:
        path = path.lstrip("/")
        if path == "":
            return 200, self.page(), HTML
        if path in self.images:  # only the run's own candidate images
            return 200, (self.run.path / path).read_bytes(), mimetypes.guess_type(path)[0] or "application/octet-stream"
        return NOT_FOUND

    def post(self, path: str, body: bytes) -> tuple[int, bytes, str]:
        if path != "/label":
            return NOT_FOUND
        try:
            sent = json.loads(body)
            image, useful = sent["image"], sent["useful"]
        except (ValueError, KeyError, TypeError):
            return 400, b"send {image, useful}", TEXT
        if image not in self.images or useful not in ("yes", "no"):
            return 400, b"unknown image, or useful is not yes/no", TEXT
        self.append_label(image, useful, str(sent.get("note", ""))[:500])
        return 200, json.dumps({"image": image, "useful": useful}).encode(), "application/json"
