"""The HTTP middlewares, all pure ASGI (not BaseHTTPMiddleware), so streamed bodies pass untouched.

- `RequestLogMiddleware`: one structured line per request when the answer is done, with the
  route template (`/characters/{character_id}`), never the query string, so ids and search
  text stay out; sets `request.state.request_id` and echoes `X-Request-ID`.
- `MetricsMiddleware`: counts and times every request by route template for `/metrics`.
- `RateLimitHeaders`: copies the limiter's status into the RateLimit-* response headers.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.metrics import Metrics
from services.ratelimit import LimitStatus
from services.request_log import scrub_value

log = logging.getLogger("storyloom.request")

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


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
        fields = scrub_value(fields)
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


class MetricsMiddleware:
    """Pure ASGI: counts every HTTP request by route template (`unmatched` for unknown paths)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = route_template(scope) or "unmatched"
            self.metrics.observe_request(
                scope.get("method", ""), route, status, time.perf_counter() - started
            )


class RateLimitHeaders:
    """Pure ASGI middleware: copy `request.state.rate_limit` into the response's RateLimit-* headers.

    The limiter runs inside a dependency that cannot touch the response, so it leaves its
    status on the request state and this adds the headers on the way out. A 429 already has
    them (from the error), and headers a route set itself are left alone.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = state.get("rate_limit")
                if isinstance(status, LimitStatus):
                    headers = MutableHeaders(scope=message)
                    for name, value in status.headers().items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
