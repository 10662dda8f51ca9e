"""The one reading of `Authorization: Bearer <token>`, shared by API keys, file links and /metrics."""

from __future__ import annotations

from errors import Unauthorized


def parse_bearer(header: str | None, what: str = "api key") -> str | None:
    """The token, or None when no header was sent; a header in another form is a 401.

    A malformed header is refused rather than ignored, so a client that got the scheme wrong
    hears why instead of being treated as anonymous.
    """
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"Authorization must be 'Bearer <{what}>'", field="Authorization")
    return token.strip()
