"""Keep secrets out of everything a run keeps: recorded URLs and Playwright traces.

URLs: after a sign-in, tokens ride in query strings (SSO flows put a session token in the page
URL) and signed storage URLs carry signatures; userinfo may hold a password. A recorded URL
keeps its scheme, host, path and query *names*; values become "redacted" unless the UI
profile allows the name (`keep_query: [mode]`), userinfo is dropped and a fragment is replaced.

Traces: a trace records every request with its headers, and the context's options; after a
login, those carry session cookies and tokens. Before a trace is kept in a run directory, every
header or cookie that can authenticate is replaced by "[redacted]".
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

SECRET_HEADERS = {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key", "x-auth-token"}
SECRET_KEYS = {"cookies", "storageState", "httpCredentials", "postData"}
REDACTED = "[redacted]"


def redact_url(url: str, keep_query: tuple[str, ...] = ()) -> str:
    """The URL with userinfo removed and every query value (but those named in `keep_query`)
    and any fragment replaced. `data:` and `blob:` URLs carry no credentials and are kept."""
    if not url or url.startswith(("data:", "blob:")):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "[unparseable URL redacted]"
    query = urlencode(
        [
            (name, value if name in keep_query else "redacted")
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, "redacted" if parts.fragment else ""))


def redact(value, keep_query: tuple[str, ...] = ()):
    """Secret headers, cookies, storage state and request bodies redacted in a trace record;
    HAR-style `queryString` lists lose their values (but those named in `keep_query`)."""
    if isinstance(value, dict):
        if isinstance(value.get("name"), str) and value["name"].lower() in SECRET_HEADERS and "value" in value:
            return {**value, "value": REDACTED}
        return {
            k: (
                REDACTED
                if k in SECRET_KEYS and v
                else [redact_parameter(q, keep_query) for q in v]
                if k == "queryString" and isinstance(v, list)
                else redact(v, keep_query)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, keep_query) for v in value]
    return value


def redact_parameter(parameter, keep_query: tuple[str, ...]):
    if isinstance(parameter, dict) and "value" in parameter and parameter.get("name") not in keep_query:
        return {**parameter, "value": "redacted"}
    return parameter


def redact_line(line: bytes, keep_query: tuple[str, ...] = ()) -> bytes:
    if not line.strip():
        return line
    try:
        return json.dumps(redact(json.loads(line), keep_query)).encode()
    except ValueError:
        return line


# A query or fragment parameter anywhere in text (a URL in a DOM snapshot, a frameUrl, a
# resource): the separator, as HTML or JSON may escape it, the name, then the value.
QUERY_PARAMETER = re.compile(rb"((?:&amp;|[?&#]|\\u0026)([A-Za-z0-9_.~%\-\[\]]+)=)([^&#\s\"'<>\\]*)")
USERINFO = re.compile(rb"(\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s\"'<>@]+@")
IMAGE_SUFFIXES = (".png", ".jpeg", ".jpg", ".webp", ".gif", ".avif")


def scrub(data: bytes, secrets: tuple[str, ...], keep_query: tuple[str, ...], text: bool) -> bytes:
    """Replace every known secret value (typed credentials, cookie values), in plain and
    URL-encoded form; in text, also every query value and URL userinfo."""
    for secret in secrets:
        for form in {secret, quote(secret, safe="")}:
            data = data.replace(form.encode(), REDACTED.encode())
    if not text:
        return data
    kept = {name.encode() for name in keep_query}
    data = USERINFO.sub(rb"\1", data)
    return QUERY_PARAMETER.sub(lambda m: m.group(0) if m.group(2) in kept else m.group(1) + b"redacted", data)


def redact_trace(path: Path, secrets: tuple[str, ...] = (), keep_query: tuple[str, ...] = ()) -> None:
    """Rewrite the trace zip with secret headers, cookies, storage state and request bodies
    redacted, every query value in its URLs, DOM snapshots and text resources replaced, and
    every known secret value (`secrets`) removed from every member, images included."""
    secrets = tuple(s for s in secrets if s and len(s) >= 4)  # shorter values would match everywhere
    tmp = path.with_suffix(".redacting")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.infolist():
            data = src.read(member)
            if member.filename.endswith((".trace", ".network")):
                data = b"\n".join(redact_line(line, keep_query) for line in data.split(b"\n"))
            data = scrub(data, secrets, keep_query, text=not member.filename.lower().endswith(IMAGE_SUFFIXES))
            dst.writestr(member, data)
    tmp.replace(path)
