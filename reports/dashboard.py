"""The dashboard: `imagejourney dashboard` serves, on 127.0.0.1, the runs of the history store
per target and journey, a trend chart of each, and every run's own report — the page a lead
bookmarks. It reads the store and the run directories it names; it writes nothing.

On loopback it answers GETs without a token, so the bookmark outlives the session; bound beyond
loopback, every request needs the session's token (local_server.py).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath

from . import charts
from .history import HistoryStore, StoreError
from .local_server import HTML, NOT_FOUND, TEXT, LocalServer
from .render import environment


class Dashboard(LocalServer):
    """`with Dashboard(store_url, port) as dashboard: dashboard.url` — serves until closed."""

    def __init__(self, store: str | None = None, port: int = 0, host: str = "127.0.0.1"):
        self.store = HistoryStore(store)
        super().__init__(port, host, guard_pages=False)

    def page(self) -> bytes:
        groups: dict[tuple[str, str], list] = {}
        for run in self.store.runs():
            groups.setdefault((run.target, run.journey), []).append(run)
        sections = []
        for (target, journey), runs in sorted(groups.items()):
            points = [
                {
                    "run_id": r.run_id,
                    "started_at": r.started_at,
                    "ttui_p50": r.summary["ttui_ms"]["p50"],
                    "generate_final_p50": r.summary["actions"]
                    .get("generate", {})
                    .get("click_to_final_ms", {})
                    .get("p50"),
                }
                for r in runs
            ]
            sections.append(
                {
                    "target": target,
                    "journey": journey,
                    "runs": list(reversed(runs)),
                    "trend": charts.trend(points, runs[-1].run_id, self.store.pinned_baseline()),
                }
            )
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

    def get(self, path: str) -> tuple[int, bytes, str]:
        parts = path.split("/", 3)  # "", "runs", RUN_ID, FILE
        try:
            if path == "/":
                return 200, self.page(), HTML
            if len(parts) == 4 and parts[1] == "runs" and (found := self.run_file(parts[2], parts[3])) is not None:
                return 200, found.read_bytes(), mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        except StoreError as exc:
            return 503, str(exc).encode(), TEXT
        return NOT_FOUND
