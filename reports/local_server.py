"""A small HTTP server on loopback, in a thread of its own, for the pages that go with reports
(human review, the dashboard). A subclass says what to answer in `get` (and `post`)."""

from __future__ import annotations

import http.server
import threading


class LocalServer:
    """`with Server(…) as server: server.url` — serves until the block ends."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, reply: tuple[int, bytes, str]) -> None:
                status, body, kind = reply
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self.answer(owner.get(self.path))

            def do_POST(self):
                self.answer(owner.post(self.path, self.rfile.read(int(self.headers.get("Content-Length", 0)))))

        try:
            self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(f"port {port} on {host} is not free ({exc.strerror}); pass --port with a free port") from None
        self.url = f"http://{host}:{self.httpd.server_port}/"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def get(self, path: str) -> tuple[int, bytes, str]:
        return NOT_FOUND

    def post(self, path: str, body: bytes) -> tuple[int, bytes, str]:
        return NOT_FOUND


NOT_FOUND = (404, b"not found", "text/plain")
HTML = "text/html; charset=utf-8"
