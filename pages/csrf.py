"""Cross-site request protection for every state-changing browser request.

Two independent checks, both must pass: the browser's own word (`Sec-Fetch-Site` / `Origin`)
that the request comes from our pages, and the per-session token (hidden `csrf_token` field
or `X-CSRF-Token` header) that only our pages know. SameSite=Lax on the cookie is a third.
Small urlencoded forms are read here with a byte cap, so a login page cannot be made to
buffer an endless body.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request

from api.request_body import read_capped
from errors import BadRequest
from pages.session import web_session

FIELD = "csrf_token"
HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 * 1024


class CsrfRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_origin(request: Request) -> None:
    """Refuse what the browser itself marks as coming from another site."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise CsrfRefused("Refused: this request came from another site.")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise CsrfRefused("Refused: this request came from another site.")


def check_token(request: Request, presented: str | None) -> None:
    expected = web_session(request).csrf
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise CsrfRefused(
            "Refused: the form's security token is missing or out of date. Reload the page and try again."
        )


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body, at most MAX_FORM_BYTES; repeated names keep the last value."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise BadRequest("expected an HTML form (application/x-www-form-urlencoded)")
    body = await read_capped(request, MAX_FORM_BYTES, None, "the form is too large")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


async def csrf_form(request: Request) -> dict[str, str]:
    """Dependency for form posts: the checked form fields."""
    check_origin(request)
    form = await read_form(request)
    check_token(request, form.get(FIELD))
    return form


def csrf_header(request: Request) -> None:
    """Dependency for the page scripts' fetch() calls, which send the token as a header."""
    check_origin(request)
    check_token(request, request.headers.get(HEADER))


CsrfForm = Annotated[dict[str, str], Depends(csrf_form)]
CsrfHeader = Depends(csrf_header)
