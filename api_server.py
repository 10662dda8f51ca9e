"""The Storyloom app: `create_app(settings)` builds everything; `app` is for `uvicorn api_server:app`.

This module also holds the one place that turns domain errors (and FastAPI's own validation
and HTTP errors) into the API's single error shape.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from accounts.routes import router as usage_router
from api.docs import mount_api_docs
from api.headers import AllowedMethods, SecurityHeaders
from api.middleware import MetricsMiddleware, RateLimitHeaders, RequestLogMiddleware
from api.operations import router as operations_router
from books.routes import router as books_router
from characters.routes import router as characters_router
from config import Settings
from errors import StoryloomError
from exports.routes import router as exports_router
from generation.routes import router as generation_router
from library.routes import router as images_router
from openai_compat.errors import is_facade, openai_error
from openai_compat.routes import router as openai_router
from pages import mount_web
from services.request_log import configure_logging
from services.runtime import build_runtime
from storage.space import full_disk_error, is_disk_full

log = logging.getLogger("storyloom")
API_DESCRIPTION = (
    "Character-consistent storybook images. Send `Authorization: Bearer <api key>` (the "
    'Authorize button); every error is `{"error": {"code", "message", "field"}}`. '
    "The full contract, with examples, is docs/API.md."
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_body(code: str, message: str, field: str | None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "field": field}}


def _field_of(loc: tuple[object, ...]) -> str | None:
    # Drop where the value came from ("body", "query", "path") and keep the dotted path.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[1:]
    return ".".join(parts) or None


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Storyloom's error shape, or OpenAI's on the `/v1` facade (its clients parse only that)."""
    if is_facade(request.url.path):
        status, body = openai_error(status, code, message, field)
        return JSONResponse(body, status, headers=headers)
    return JSONResponse(error_body(code, message, field), status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoryloomError)
    async def _domain(request: Request, exc: StoryloomError) -> JSONResponse:
        return error_response(request, exc.status_code, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        field = _field_of(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            message = f"request body is not valid JSON: {first['msg']}"
            return error_response(request, 400, "malformed_json", message, None)
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        return error_response(request, 422, "validation_error", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(request, exc.status_code, code, str(exc.detail), None, exc.headers)

    async def _disk_full(_: Request, exc: Exception) -> JSONResponse:
        # Wherever it surfaced (spooling an upload, the file store, SQLite): 507, no trace.
        if not is_disk_full(exc):
            raise exc  # to the 500 handler below
        log.warning("disk full: %s", type(exc).__name__)
        full = full_disk_error()
        return JSONResponse(error_body(full.code, full.message, None), full.status_code)

    for kind in (OSError, SQLAlchemyError, sqlite3.Error):
        app.add_exception_handler(kind, _disk_full)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(request, 500, "internal_error", "internal server error", None)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the runtime and the web app around it; the lifespan starts and stops the runtime."""
    runtime = build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        configure_logging(runtime.settings.log_level, runtime.settings.log_format)
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Storyloom",
        version=runtime.version,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # mount_api_docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime  # read only by deps.get_runtime
    install_error_handlers(app)
    # Added innermost first: the request log wraps everything, so it times and ids every answer.
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(AllowedMethods, routes=app.router.routes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLogMiddleware)
    app.include_router(characters_router)
    app.include_router(images_router)
    app.include_router(generation_router)
    app.include_router(openai_router)
    app.include_router(usage_router)
    app.include_router(books_router)
    app.include_router(exports_router)
    app.include_router(operations_router)  # last: the operators' routes after the authors' in /docs
    mount_web(app)
    mount_api_docs(app)
    return app


app = create_app()
