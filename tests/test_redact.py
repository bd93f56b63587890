import json
import zipfile

from imagejourney.journeys.redact import redact_trace


def test_secret_headers_cookies_and_storage_state_are_redacted(tmp_path):
    network = {
        "type": "resource-snapshot",
        "snapshot": {
            "request": {
                "url": "https://staging/app",
                "headers": [
                    {"name": "Cookie", "value": "session=tok-123"},
                    {"name": "Authorization", "value": "Bearer abc"},
                    {"name": "Accept", "value": "text/html"},
                ],
                "cookies": [{"name": "session", "value": "tok-123"}],
            },
            "response": {"headers": [{"name": "set-cookie", "value": "session=tok-456"}], "cookies": []},
        },
    }
    context = {"type": "context-options", "options": {"storageState": {"cookies": [{"value": "tok-789"}]}}}
    trace = tmp_path / "t.zip"
    with zipfile.ZipFile(trace, "w") as z:
        z.writestr("trace.network", json.dumps(network) + "\n")
        z.writestr("trace.trace", json.dumps(context) + "\n")
        z.writestr("resources/page.html", "<p>kept as is</p>")
    redact_trace(trace)
    with zipfile.ZipFile(trace) as z:
        text = b"".join(z.read(n) for n in z.namelist()).decode()
        assert z.read("resources/page.html") == b"<p>kept as is</p>"
    for secret in ("tok-123", "Bearer abc", "tok-456", "tok-789"):
        assert secret not in text
    request = json.loads(zipfile.ZipFile(trace).read("trace.network"))["snapshot"]["request"]
    assert {"name": "Accept", "value": "text/html"} in request["headers"]
    assert {"name": "Cookie", "value": "[redacted]"} in request["headers"]


def test_recorded_urls_lose_userinfo_query_values_and_fragments():
    from imagejourney.journeys.redact import redact_url

    url = (
        "https://user:hunter2@cdn.example.com:8443/img/a.png?X-Amz-Signature=abc123&mode=fast&token=t0k#access_token=zz"
    )
    assert redact_url(url) == (
        "https://cdn.example.com:8443/img/a.png?X-Amz-Signature=redacted&mode=redacted&token=redacted#redacted"
    )
    assert redact_url(url, keep_query=("mode",)).split("?")[1].startswith("X-Amz-Signature=redacted&mode=fast&")
    assert redact_url("data:image/png;base64,iVBOR") == "data:image/png;base64,iVBOR"
    assert redact_url("blob:http://127.0.0.1/uuid") == "blob:http://127.0.0.1/uuid"
    assert redact_url("http://127.0.0.1:7860/") == "http://127.0.0.1:7860/"


def test_trace_urls_bodies_query_strings_and_known_secrets_are_redacted(tmp_path):
    request = {
        "type": "resource-snapshot",
        "snapshot": {
            "request": {
                "url": "https://staging/api/login?session_token=tok-url-1&mode=x",
                "postData": {"text": "password=pw-body-1"},
                "queryString": [{"name": "session_token", "value": "tok-url-1"}, {"name": "mode", "value": "x"}],
                "headers": [],
            }
        },
    }
    snapshot = {
        "type": "frame-snapshot",
        "snapshot": {
            "frameUrl": "https://u:pw-userinfo-1@staging/?sig=sig-1",
            "html": ["IMG", {"src": "a.png?n=1&amp;sig=sig-2"}],
        },
    }
    trace = tmp_path / "t.zip"
    with zipfile.ZipFile(trace, "w") as z:
        z.writestr("trace.network", json.dumps(request) + "\n")
        z.writestr("trace.trace", json.dumps(snapshot) + "\n")
        z.writestr("resources/page.html", '<a href="/next?token=tok-res-1">next</a> cookie-value-1')
        z.writestr("resources/pixel.png", b"\x89PNG cookie-value-1 ?a=b")
    redact_trace(trace, secrets=("cookie-value-1",), keep_query=("mode",))
    with zipfile.ZipFile(trace) as z:
        members = {name: z.read(name) for name in z.namelist()}
    everything = b"".join(members.values())
    for secret in (b"tok-url-1", b"pw-body-1", b"pw-userinfo-1", b"sig-1", b"sig-2", b"tok-res-1", b"cookie-value-1"):
        assert secret not in everything, secret
    network = json.loads(members["trace.network"])["snapshot"]["request"]
    assert {"name": "mode", "value": "x"} in network["queryString"] and "mode=x" in network["url"]
    assert members["resources/pixel.png"] == b"\x89PNG [redacted] ?a=b"  # images: only known secrets replaced
