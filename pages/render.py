"""Rendering for the author's pages: the Jinja2 environment, image URLs, and the route class
that answers errors as pages (or JSON for the page scripts) instead of the API's JSON.

Image URLs are relative and signed (`/images/3/thumbnail?w=..&exp=..&sig=..`), so `<img>` tags
work on whatever host the browser reached, without a header, only for this workspace.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from config import Settings
from errors import StoryloomError
from library.service import image_path
from pages.csrf import CsrfRefused
from pages.session import LoginRequired, save_session, web_session
from services.signing import sign_query

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"
API_PREFIX = "/ui/api/"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
)
templates = Jinja2Templates(env=_env)


def image_url(settings: Settings, workspace_id: int, number: int, what: str = "thumbnail") -> str:
    path = image_path(number, what)
    return f"{path}?{sign_query(settings.signing_key, workspace_id, path, settings.signed_url_ttl_seconds)}"


def plain_words(exc: StoryloomError) -> str:
    """What an author should read for an error: what happened and what to do, no jargon."""
    code, status = exc.code, exc.status_code
    if code in {"content_policy", "moderation_blocked"} or "moderation" in code:
        return "The image service refused this scene as against its content rules. Try rewording it."
    if code == "upstream_quota":
        return "The image service account has run out of credit or hit its quota. Ask the operator."
    if status == 429:
        return f"You have reached a limit: {exc.message}. Wait a little and try again."
    if status in (503, 504) or code in {"upstream_unavailable", "upstream_timeout"}:
        return "The image service is not answering right now. Try again in a minute."
    if status == 502:
        return f"The image service refused the request: {exc.message}"
    return exc.message


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    current = web_session(request)
    base = {
        "csrf_token": current.csrf,
        "logged_in": current.key_id is not None,
        "caller": getattr(request.state, "caller", None),
        "flashes": current.pop_flashes(),
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def _error_response(request: Request, status: int, message: str, field: str | None, code: str) -> Response:
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status)
    title = {404: "Not found", 403: "Refused"}.get(status, "Something went wrong")
    return render(request, "error.html", {"title": title, "message": message}, status)


class WebRoute(APIRoute):
    """Answers the web pages' errors in the web's terms: login redirect, plain 403, error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                if request.url.path.startswith(API_PREFIX):
                    message = "Your session has ended; log in again."
                    response = _error_response(request, 401, message, None, "login_required")
                else:
                    target = request.url.path if request.method == "GET" else "/ui"
                    response = RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
            except CsrfRefused as exc:
                response = PlainTextResponse(exc.message, status_code=403)
            except StoryloomError as exc:
                response = _error_response(request, exc.status_code, plain_words(exc), exc.field, exc.code)
            save_session(request, response)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return route
