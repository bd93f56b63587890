"""A small HTTP server on this machine, on Starlette + uvicorn in a thread of its own, for the
pages that go with reports (human review, the dashboard). A subclass says what to answer in `get`
(and `post`); this module decides who is answered at all, since any web page the user has open
can send requests to loopback:

- Host: on loopback only 127.0.0.1:PORT, localhost:PORT and [::1]:PORT are answered; any other
  Host, such as the name a DNS-rebinding page was loaded from, gets 400. Checked here rather than
  with Starlette's TrustedHostMiddleware, which compares the name without its port and cuts
  "[::1]:PORT" at the first colon. Bound beyond loopback, the names the machine is reached by
  cannot be listed, so any Host is let through and the token guards every request.
- POST: only from the server's own page: same origin (Origin equal to the served origin, or no
  Origin with Sec-Fetch-Site: same-origin) and the session's token in the X-Imagejourney-Token
  header, a header no other origin can send without a CORS preflight, which is never granted;
  anything else gets 403. Its body is capped: a larger one gets 413 and is not read to its end.
- Token: one per session (secrets.token_urlsafe), in the URL printed at start as Jupyter prints
  it. A server that guards its pages (review; any server bound beyond loopback) needs it on every
  request: in ?token= or in the cookie a page opened with it sets, so its images and links load.
"""

from __future__ import annotations

import errno
import ipaddress
import secrets
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

BODY_LIMIT = 64 * 1024
TOKEN_HEADER = "X-Imagejourney-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether an address to bind is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostCheck:
    """ASGI middleware: 400 for a Host header not in `hosts` (None: any Host passes)."""

    def __init__(self, app, hosts: set[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and self.hosts is not None
            and Headers(scope=scope).get("host", "").lower() not in self.hosts
        ):
            refusal = PlainTextResponse(
                "this server answers only to 127.0.0.1, localhost or [::1] at its port, "
                "not to another Host header (as DNS rebinding sends)",
                400,
            )
            await refusal(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def capped_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes, read no further than that."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > limit:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound here, not by uvicorn, so that a port in use is one sentence and port 0 is known at once."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen()
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise OSError(f"{host} is not an address of this machine; pass --host with one of its addresses") from None
        raise OSError(f"port {port} on {host} is not free ({exc.strerror}); pass --port with a free port") from None
    return sock


class LocalServer:
    """`with Server(…) as server: server.url` — serves until the block ends. `server.url` carries
    the token when the pages need it; `server.origin` and `server.token` are its parts."""

    def __init__(self, port: int, host: str, guard_pages: bool):
        self.token = secrets.token_urlsafe(32)
        self.guard_pages = guard_pages or not is_loopback(host)
        self.socket = listening_socket(host, port)
        self.port = self.socket.getsockname()[1]
        name = socket.gethostname() if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
        self.origin = f"http://{name}:{self.port}"
        self.url = f"{self.origin}/" + (f"?token={self.token}" if self.guard_pages else "")
        self.cookie = f"imagejourney-{self.port}"  # cookies ignore the port: one name per server
        hosts = (
            {f"{n}:{self.port}" for n in LOOPBACK_NAMES} | (set(LOOPBACK_NAMES) if self.port == 80 else set())
            if is_loopback(host)
            else None
        )
        app = Starlette(
            routes=[Route("/{path:path}", self.answer, methods=["GET", "POST"])],
            middleware=[Middleware(HostCheck, hosts=hosts)],
        )
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                proxy_headers=False,
                timeout_graceful_shutdown=2,
            )
        )

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise OSError(f"the server at {self.origin} stopped while starting")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()

    def has_token(self, sent: str | None) -> bool:
        return sent is not None and secrets.compare_digest(sent.encode(), self.token.encode())

    def refusal(self, request: Request) -> Response | None:
        """403 for a POST not from this server's own page, or a request without the token where pages need it."""
        headers = request.headers
        if request.method == "POST":
            if "origin" in headers:
                same_origin = headers["origin"].lower() == f"http://{headers.get('host', '')}".lower()
            else:
                same_origin = headers.get("sec-fetch-site") == "same-origin"
            if not (same_origin and self.has_token(headers.get(TOKEN_HEADER))):
                return PlainTextResponse(
                    "a POST is taken only from this server's own page (same origin, with its token)", 403
                )
        elif self.guard_pages and not (
            self.has_token(request.query_params.get("token")) or self.has_token(request.cookies.get(self.cookie))
        ):
            return PlainTextResponse(
                "this server needs its token: open the URL printed at start, with its ?token=", 403
            )
        return None

    async def answer(self, request: Request) -> Response:
        if (refused := self.refusal(request)) is not None:
            return refused
        path = request.scope["path"]  # percent-decoded
        try:
            if request.method == "POST":
                body = await capped_body(request, BODY_LIMIT)
                if body is None:
                    return PlainTextResponse(f"a request body over {BODY_LIMIT // 1024} KiB is refused", 413)
                status, content, kind = await run_in_threadpool(self.post, path, body)
            else:
                status, content, kind = await run_in_threadpool(self.get, path)
        except ClientDisconnect:  # gone while sending its body: no one to answer
            return Response(status_code=400)
        except OSError as exc:
            status, content, kind = 500, f"could not read {exc.filename or 'a file'} ({exc.strerror})".encode(), TEXT
        response = Response(content, status, media_type=kind)
        if self.guard_pages and self.has_token(request.query_params.get("token")):
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
        return response

    def get(self, path: str) -> tuple[int, bytes, str]:
        return NOT_FOUND

    def post(self, path: str, body: bytes) -> tuple[int, bytes, str]:
        return NOT_FOUND


TEXT = "text/plain; charset=utf-8"
NOT_FOUND = (404, b"not found", TEXT)
HTML = "text/html; charset=utf-8"
