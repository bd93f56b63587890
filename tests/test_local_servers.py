"""The review and dashboard servers let in only their own pages: a page of another origin cannot
write a label, a foreign Host (DNS rebinding) is refused, a POST needs the same origin and the
session's token, a body over the cap is refused unread, and the review page still labels."""

import csv
import functools
import http.client
import http.server
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from imagejourney.reports.dashboard import Dashboard
from imagejourney.reports.history import HistoryStore
from imagejourney.reports.local_server import TOKEN_HEADER
from imagejourney.reports.review import ReviewServer

FORMAT_1_RUN = Path(__file__).parent / "data" / "run-format-1"
IMAGE = "images/fisherman-01-generate.png"
LABEL = json.dumps({"image": IMAGE, "useful": "no"})


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "night-1"
    shutil.copytree(FORMAT_1_RUN, path)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "run_id": "night-1"}))
    return path


def labels(run) -> list[tuple[str, str]]:
    path = run / "labels.csv"
    return [(r["image"], r["useful"]) for r in csv.DictReader(open(path))] if path.exists() else []


def ask(server, method, path, body=None, headers=None, port=None):
    """(status, body text, Set-Cookie) of one request to the server, headers as given (Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", port or server.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    answer = response.status, response.read().decode(errors="replace"), response.getheader("Set-Cookie")
    connection.close()
    return answer


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_a_page_of_another_origin_cannot_write_a_label(run, tmp_path, page):
    with ReviewServer(run, reviewer="ana") as server:
        # The other origin is given the real token, as if it had guessed it: the origin check alone refuses.
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "index.html").write_text(f"""<!doctype html><script>
          const review = {json.dumps(server.origin + "/")}, token = {json.dumps(server.token)}, body = {json.dumps(LABEL)};
          const tries = [
            fetch(review + "label", {{ method: "POST", mode: "no-cors", body }}),
            fetch(review + "label?token=" + token, {{ method: "POST", mode: "no-cors", body,
              headers: {{ "Content-Type": "text/plain", {json.dumps(TOKEN_HEADER)}: token }} }}),
            fetch(review + "label", {{ method: "POST", body, headers: {{ {json.dumps(TOKEN_HEADER)}: token }} }}),
          ];
          Promise.all(tries.map((t) => t.then((r) => r.type, () => "blocked"))).then((got) => {{ document.title = got.join(" "); }});
        </script>""")
        site = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path / "site"))
        )
        threading.Thread(target=site.serve_forever, daemon=True).start()
        try:
            page.goto(f"http://127.0.0.1:{site.server_port}/")
            page.wait_for_function("document.title !== ''")
            # no-cors: sent and answered (opaque); with the token header: its CORS preflight is never granted
            assert page.title() == "opaque opaque blocked"
        finally:
            site.shutdown()
            site.server_close()
    assert labels(run) == []


def test_a_foreign_host_header_is_refused(run, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore(url).add(run)
    with ReviewServer(run) as review, Dashboard(url) as dashboard:
        for server, path in ((review, f"/?token={review.token}"), (dashboard, "/")):
            for host in (f"evil.example:{server.port}", "evil.example", f"127.0.0.1.evil.example:{server.port}"):
                status, text, _ = ask(server, "GET", path, headers={"Host": host})
                assert status == 400 and "not to another Host header" in text
            for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
                assert ask(server, "GET", path, headers={"Host": host})[0] == 200
        status, _, _ = ask(
            review,
            "POST",
            "/label",
            LABEL,
            {
                "Host": f"evil.example:{review.port}",
                TOKEN_HEADER: review.token,
                "Origin": f"http://evil.example:{review.port}",
            },
        )
        assert status == 400
    assert labels(run) == []


def test_a_post_needs_the_same_origin_and_the_token(run):
    with ReviewServer(run) as server:
        same, token = {"Origin": server.origin}, {TOKEN_HEADER: server.token}
        for headers in (
            {**token},
            {**same},
            {**same, TOKEN_HEADER: "guessed"},
            {"Origin": "null", **token},
            {"Origin": "http://127.0.0.1:1", **token},
            {"Sec-Fetch-Site": "same-site", **token},
            {**same, "Cookie": f"{server.cookie}={server.token}"},
        ):
            status, text, _ = ask(server, "POST", "/label", LABEL, headers)
            assert (
                status == 403
                and text == "a POST is taken only from this server's own page (same origin, with its token)"
            )
        assert ask(server, "POST", f"/label?token={server.token}", LABEL, same)[0] == 403  # the header, not the query
        assert labels(server.run.path) == []
        assert ask(server, "POST", "/label", LABEL, {**same, **token})[0] == 200
        assert ask(server, "POST", "/label", LABEL, {"Sec-Fetch-Site": "same-origin", **token})[0] == 200
        assert (
            ask(
                server, "POST", "/label", json.dumps({"image": "../manifest.json", "useful": "yes"}), {**same, **token}
            )[0]
            == 400
        )
    assert labels(run) == [(IMAGE, "no"), (IMAGE, "no")]


def test_the_review_server_needs_its_token_for_every_page(run):
    with ReviewServer(run) as server:
        assert server.url == f"{server.origin}/?token={server.token}"
        for path in ("/", f"/{IMAGE}", "/?token=guessed"):
            status, text, _ = ask(server, "GET", path)
            assert status == 403 and text.startswith("this server needs its token")
        status, _, cookie = ask(server, "GET", f"/?token={server.token}")
        assert status == 200 and cookie.startswith(f"{server.cookie}={server.token};") and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        with_cookie = {"Cookie": f"{server.cookie}={server.token}"}
        assert ask(server, "GET", f"/{IMAGE}", headers=with_cookie)[0] == 200
        assert ask(server, "GET", "/manifest.json", headers=with_cookie)[0] == 404  # only candidate images


def test_an_oversized_body_is_refused_unread(run):
    with ReviewServer(run) as server:
        headers = {"Origin": server.origin, TOKEN_HEADER: server.token}
        # 100 MiB announced, 1 KiB sent: the answer comes without waiting for the rest.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("POST", "/label")
        for name, value in {**headers, "Content-Length": str(100 << 20)}.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(b" " * 1024)
        response = connection.getresponse()
        assert (response.status, response.read()) == (413, b"a request body over 64 KiB is refused")
        connection.close()
        # No length announced (http.client sends an iterable chunked): refused once past the cap.
        padded = json.dumps({"image": IMAGE, "useful": "no", "note": "x" * (70 << 10)})
        status, text, _ = ask(
            server, "POST", "/label", iter([padded[:40000].encode(), padded[40000:].encode()]), headers
        )
        assert (status, text) == (413, "a request body over 64 KiB is refused")
        assert ask(server, "POST", "/label", padded[: (60 << 10)] + '"}', headers)[0] == 200  # under the cap: taken
    assert labels(run) == [(IMAGE, "no")]


@pytest.mark.browser
def test_the_review_page_labels_in_the_browser(run, page):
    with ReviewServer(run, reviewer="ana") as server:
        page.goto(server.url)
        first = page.locator("figure").nth(0)
        assert (
            first.locator("img").evaluate("(img) => img.decode().then(() => img.naturalWidth)") > 0
        )  # the cookie lets images in
        first.get_by_role("button", name="Useful (y)").click()
        page.wait_for_function("document.getElementById('count').textContent === '1'")
    assert labels(run) == [(IMAGE, "yes")]


def test_a_dashboard_beyond_loopback_needs_its_token_for_every_request(run, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore(url).add(run)
    (run / "report.html").write_text("<title>report</title>")
    with Dashboard(url, 0, "0.0.0.0") as dashboard:
        assert dashboard.guard_pages and dashboard.url.endswith(f"/?token={dashboard.token}")
        for path in ("/", "/runs/night-1/report.html", "/?token=guessed"):
            status, text, _ = ask(dashboard, "GET", path, headers={"Host": f"lab-machine:{dashboard.port}"})
            assert status == 403 and text.startswith("this server needs its token")
        status, _, cookie = ask(dashboard, "GET", f"/?token={dashboard.token}")
        assert status == 200 and cookie.startswith(f"{dashboard.cookie}={dashboard.token};")
        with_cookie = {"Cookie": f"{dashboard.cookie}={dashboard.token}"}
        assert ask(dashboard, "GET", "/runs/night-1/report.html", headers=with_cookie)[:2] == (
            200,
            "<title>report</title>",
        )
        assert ask(dashboard, "GET", "/runs/night-1/../../etc/passwd", headers=with_cookie)[0] == 404
    with Dashboard(url) as on_loopback:  # the bookmark: no token needed on loopback
        assert not on_loopback.guard_pages and on_loopback.url == f"{on_loopback.origin}/"
        assert ask(on_loopback, "GET", "/")[0] == 200


def test_the_commands_print_the_token_url_and_the_servers_errors_are_one_sentence(run, tmp_path):
    command = [sys.executable, "-m", "imagejourney.cli"]
    url = f"sqlite:///{tmp_path / 'h.db'}"
    HistoryStore(url).add(run)
    for args, said in (
        (["review", str(run), "--port", "0"], "the URL carries this session's token"),
        (
            ["dashboard", "--store", url, "--port", "0", "--host", "0.0.0.0"],
            "bound beyond loopback, it needs this URL's token for every request",
        ),
    ):
        proc = subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert "/?token=" in line and said in line, line + proc.stderr.read()
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            OSError,
            match=rf"^port {port} on 127\.0\.0\.1 is not free \(Address already in use\); "
            "pass --port with a free port$",
        ):
            Dashboard(url, port)
    with pytest.raises(
        OSError, match=r"^192\.0\.2\.1 is not an address of this machine; pass --host with one of its addresses$"
    ):
        ReviewServer(run, 0, "192.0.2.1")
