"""Domain errors raised by services and turned into the API's one error shape in api_server.

Services know nothing of HTTP; each error carries the stable `code`, the HTTP status it maps
to, and the offending `field` (a dotted path or a reference number) when there is one.
"""

from __future__ import annotations


class StoryloomError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}
        if code is not None:
            self.code = code


class BadRequest(StoryloomError):
    status_code = 400
    code = "bad_request"


class Unauthorized(StoryloomError):
    status_code = 401
    code = "unauthorized"


class Forbidden(StoryloomError):
    """Authenticated, but that proof (a signed URL, a session) does not grant this."""

    status_code = 403
    code = "forbidden"


class NotFound(StoryloomError):
    status_code = 404
    code = "not_found"


class Conflict(StoryloomError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(StoryloomError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(StoryloomError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidInput(StoryloomError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(StoryloomError):
    status_code = 429
    code = "rate_limited"


class UpstreamError(StoryloomError):
    """The image backend failed; the status says whose fault (502 refused, 503 down, 504 slow)."""

    status_code = 502
    code = "upstream_error"

    def __init__(self, message: str, *, status_code: int = 502, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.status_code = status_code
