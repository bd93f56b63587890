import json
import zipfile

from journeys.traces import redact_trace


def test_secret_headers_cookies_and_storage_state_are_redacted(tmp_path):
    network = {"type": "resource-snapshot", "snapshot": {
        "request": {"url": "https://staging/app", "headers": [
            {"name": "Cookie", "value": "session=tok-123"}, {"name": "Authorization", "value": "Bearer abc"},
            {"name": "Accept", "value": "text/html"}], "cookies": [{"name": "session", "value": "tok-123"}]},
        "response": {"headers": [{"name": "set-cookie", "value": "session=tok-456"}], "cookies": []}}}
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
