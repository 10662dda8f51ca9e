"""The one capped reader of request bodies: every route that reads a body itself goes through it.

A body announced (Content-Length) over the cap is refused before a byte is read; one that
streams past it is refused the moment it does, so nobody can make the server hold a body it
would refuse anyway. The refusal is the API's 413, naming the field the body was for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from errors import PayloadTooLarge


def check_content_length(request: Request, limit: int, field: str | None) -> None:
    """Refuse a body announced as bigger than `limit` before reading any of it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {int(declared):,} bytes is over the limit of {limit:,}", field=field
        )


async def capped_stream(
    request: Request, limit: int, field: str | None, message: str | None = None
) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, refused (413) once more than `limit` bytes came."""
    check_content_length(request, limit, field)
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(message or f"request body is over {limit:,} bytes", field=field)
        if chunk:
            yield chunk


async def read_capped(request: Request, limit: int, field: str | None, message: str | None = None) -> bytes:
    """The whole body, at most `limit` bytes (small JSON and form bodies)."""
    body = bytearray()
    async for chunk in capped_stream(request, limit, field, message):
        body.extend(chunk)
    return bytes(body)
