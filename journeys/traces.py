"""Keep Playwright traces free of secrets.

A trace records every request with its headers, and the context's options; after a login,
those carry session cookies and tokens. Before a trace is kept in a run directory, every
header or cookie that can authenticate is replaced by "[redacted]".
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

SECRET_HEADERS = {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key", "x-auth-token"}
SECRET_KEYS = {"cookies", "storageState", "httpCredentials"}
REDACTED = "[redacted]"


def redact(value):
    if isinstance(value, dict):
        if isinstance(value.get("name"), str) and value["name"].lower() in SECRET_HEADERS and "value" in value:
            return {**value, "value": REDACTED}
        return {k: (REDACTED if k in SECRET_KEYS and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_line(line: bytes) -> bytes:
    if not line.strip():
        return line
    try:
        return json.dumps(redact(json.loads(line))).encode()
    except ValueError:
        return line


def redact_trace(path: Path) -> None:
    """Rewrite the trace zip with secret headers, cookies and storage state redacted."""
    tmp = path.with_suffix(".redacting")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for member in src.infolist():
            data = src.read(member)
            if member.filename.endswith((".trace", ".network")):
                data = b"\n".join(redact_line(line) for line in data.split(b"\n"))
            dst.writestr(member, data)
    tmp.replace(path)
