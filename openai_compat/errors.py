"""OpenAI's error shape for the `/v1` facade, so the `openai` SDK raises its own typed exceptions.

The SDK picks the exception by HTTP status (400 BadRequestError, 401 AuthenticationError,
404 NotFoundError, 429 RateLimitError, 5xx InternalServerError) and reads
`{"error": {"message", "type", "param", "code"}}`. Storyloom's 422 (a bad field) is OpenAI's
400 `invalid_request_error`, with our field as `param` and our stable code as `code`.
"""

from __future__ import annotations

from typing import Any

PREFIX = "/v1/"

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "requests",
}
_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


def is_facade(path: str) -> bool:
    return path.startswith(PREFIX)


def openai_error(status: int, code: str, message: str, field: str | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of OpenAI's error answer for one of Storyloom's errors."""
    status = 400 if status == 422 else status
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    if status in _CODES and code in ("unauthorized", "rate_limited"):
        code = _CODES[status]
    return status, {"error": {"message": message, "type": kind, "param": field, "code": code}}
