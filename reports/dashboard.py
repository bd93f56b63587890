"""The dashboard: `imagejourney dashboard` serves, on 127.0.0.1, the runs of the history store
per target and journey, a trend chart of each, and every run's own report — the page a lead
bookmarks. It reads the store and the run directories it names; it writes nothing.
"""

from __future__ import annotations

import http.server
import mimetypes
import threading
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from . import charts
from .history import HistoryStore
from .render import environment


class Dashboard:
    """`with Dashboard(store_url, port) as dashboard: dashboard.url` — serves until closed."""

    def __init__(self, store: str | None = None, port: int = 0, host: str = "127.0.0.1"):
        self.store = HistoryStore(store)
        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), self.handler())
        except OSError as exc:
            raise OSError(f"port {port} on {host} is not free ({exc.strerror}); pass --port with a free port") from None
        self.url = f"http://{host}:{self.httpd.server_port}/"

    def __enter__(self) -> "Dashboard":
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def page(self) -> bytes:
        groups: dict[tuple[str, str], list] = {}
        for run in self.store.runs():
            groups.setdefault((run.target, run.journey), []).append(run)
        sections = []
        for (target, journey), runs in sorted(groups.items()):
            points = [{"run_id": r.run_id, "started_at": r.started_at, "ttui_p50": r.summary["ttui_ms"]["p50"],
                       "generate_final_p50": r.summary["actions"].get("generate", {}).get("click_to_final_ms", {}).get("p50")}
                      for r in runs]
            sections.append({"target": target, "journey": journey, "runs": list(reversed(runs)),
                             "trend": charts.trend(points, runs[-1].run_id, self.store.pinned_baseline())})
        html = environment().get_template("dashboard.html.j2").render(store=self.store.url, sections=sections)
        return html.encode()

    def run_file(self, run_id: str, relative: str) -> Path | None:
        """A file of a stored run's directory, only if it lies inside that directory."""
        runs = {r.run_id: r for r in self.store.runs()}
        if run_id not in runs or ".." in PurePosixPath(relative).parts:
            return None
        root = Path(runs[run_id].path).resolve()
        path = (root / relative).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def handler(self):
        dashboard = self

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
                path = unquote(urlsplit(self.path).path)
                if path == "/":
                    return self.send(200, dashboard.page(), "text/html; charset=utf-8")
                parts = path.split("/", 3)  # "", "runs", RUN_ID, FILE
                if len(parts) == 4 and parts[1] == "runs":
                    found = dashboard.run_file(parts[2], parts[3])
                    if found is not None:
                        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                        return self.send(200, found.read_bytes(), kind)
                return self.send(404, b"not found", "text/plain")

        return Handler
