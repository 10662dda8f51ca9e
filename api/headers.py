"""Security headers on every answer, and complete `Allow` lists for OPTIONS and 405.

Pure ASGI, so streamed file responses pass through untouched. The pages use only our own
script and stylesheet (static/app.js, static/app.css) and relative image URLs, so their CSP can
allow 'self' and nothing else; the interactive API docs (Swagger UI, ReDoc, served from local
assets) start their bundle from an inline script, so they get api/docs.py's own CSP.
`nosniff` applies to images too: a stored file is only ever what its type says.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.docs import DOCS_CSP

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in DOCS_PATHS else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["Content-Security-Policy"] = csp
            await send(message)

        await self.app(scope, receive, send_with_headers)


PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first).

    Asks each route, through the public `matches`, whether it would take the request with each
    method; included routers answer for their own routes. A mount (/static) is StaticFiles.
    """
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Mount):
            if route.matches(scope)[0] is not Match.NONE:
                methods |= {"GET", "HEAD"}
            continue
        for method in PROBED_METHODS:
            if method not in methods and route.matches({**scope, "method": method})[0] is Match.FULL:
                methods.add(method)
    if methods:
        methods.add("OPTIONS")
    return methods


class AllowedMethods:
    """OPTIONS on a known path answers 204 with `Allow`; every 405 names all allowed methods."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            allowed = allowed_methods(self.routes, scope)
            if allowed:
                await Response(status_code=204, headers={"Allow": ", ".join(sorted(allowed))})(
                    scope, receive, send
                )
                return

        # Routing rewrites the scope (a mount moves the path into root_path): ask on a copy.
        original = dict(scope)

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = allowed_methods(self.routes, original)
                if allowed:
                    MutableHeaders(scope=message)["Allow"] = ", ".join(sorted(allowed))
            await send(message)

        await self.app(scope, receive, send_with_allow)
