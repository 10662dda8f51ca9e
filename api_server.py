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
from pages import mount_web
from services.request_log import configure_logging
from services.runtime import build_runtime
from storage.space import full_disk_error, is_disk_full

log = logging.getLogger("storyloom")

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StoryloomError)
    async def _domain(_: Request, exc: StoryloomError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        field = _field_of(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            return JSONResponse(
                error_body("malformed_json", f"request body is not valid JSON: {first['msg']}", None),
                400,
            )
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        return JSONResponse(error_body("validation_error", message, field), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail), None), exc.status_code, headers=exc.headers)

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
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error", None), 500)


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

    app = FastAPI(title="Storyloom", version=runtime.version, lifespan=lifespan)
    app.state.runtime = runtime  # read only by deps.get_runtime
    install_error_handlers(app)
    # Added innermost first: the request log wraps everything, so it times and ids every answer.
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(AllowedMethods, routes=app.router.routes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLogMiddleware)
    app.include_router(operations_router)
    app.include_router(characters_router)
    app.include_router(images_router)
    app.include_router(generation_router)
    app.include_router(usage_router)
    app.include_router(books_router)
    app.include_router(exports_router)
    mount_web(app)
    return app


app = create_app()
