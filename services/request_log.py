"""One structured log line per request, request ids, and a scrubber that keeps secrets out of logs.

The middleware is pure ASGI (not BaseHTTPMiddleware) so streamed bodies and background tasks
pass through untouched; it only watches `http.response.start` for the status and adds
`X-Request-ID`. The line is written when the response has finished, with the route template
(`/characters/{character_id}`), never the query string, so ids and search text stay out.

`SecretScrubber` is the safety net under every handler `configure_logging` installs (ours and
uvicorn's): whatever some code logs by mistake, an API key (`sl_…`, `sk-…`), a Bearer token or a
long base64 run (an image) is replaced before it is written. The request line is scrubbed at
the source too, so the guarantee holds under any handler (including pytest's).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import IO, Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("storyloom.request")

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (re.compile(r"\bsl_[A-Za-z0-9_\-]{6,}"), "sl_[redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-[redacted]"),
)
# An image or any other blob: 100+ base64 characters in a row (hex digests are 64), see `_blob`.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{100,}={0,2}")


def _blob(match: re.Match[str]) -> str:
    """Redact a run that looks like encoded bytes, not a long file path or a hex digest.

    Encoded bytes mix upper case, lower case and digits in any 100 characters, and '/' is one
    character in 64; a path has a slash every few characters.
    """
    run = match.group()
    looks_encoded = (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
        and run.count("/") * 16 < len(run)
    )
    return "[base64 redacted]" if looks_encoded else run


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return _BASE64_RUN.sub(_blob, text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


class SecretScrubber(logging.Filter):
    """Rewrites each record's message, structured fields and traceback without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = _scrub_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime  # type: ignore[assignment]


def configure_logging(
    level: str = "INFO", fmt: str = "json", stream: IO[str] | None = None
) -> logging.Handler:
    """Install Storyloom's one root handler (replacing a previous one), scrub uvicorn's too.

    Idempotent, so every app start (and every test app) can call it. Returns the handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "storyloom", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.storyloom = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.addFilter(SecretScrubber())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The HTTP clients (the openai SDK's httpx2) log every URL at INFO; the backends write their
    # own line per upstream call, so theirs is only noise and a leak risk.
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for other in logging.getLogger(name).handlers:
            if not any(isinstance(f, SecretScrubber) for f in other.filters):
                other.addFilter(SecretScrubber())
    return handler


def request_id_from(scope: Scope) -> str:
    """The client's `X-Request-ID` if it is short and plain, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1").strip()
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str | None:
    """`/characters/{character_id}` rather than `/characters/7`, once the router has matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class RequestLogMiddleware:
    """Sets `request.state.request_id`, echoes `X-Request-ID`, logs one line when the answer is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._log(scope, state, status, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        caller = state.get("caller")
        path = route_template(scope) or scope.get("path", "")[:200]
        fields = {
            "method": scope.get("method", ""),
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "workspace": getattr(caller, "workspace_name", None),
            "workspace_id": getattr(caller, "workspace_id", None),
            "key_id": getattr(caller, "key_id", None),
            "request_id": state.get("request_id", ""),
        }
        fields = _scrub_value(fields)
        log.info(
            "%s %s %s %.1fms workspace=%s request_id=%s",
            fields["method"],
            fields["path"],
            status,
            fields["duration_ms"],
            fields["workspace"],
            fields["request_id"],
            extra={"fields": fields},
        )
