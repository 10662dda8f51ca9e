"""`GET /health`: is the database answering and the data directory writable?"""

from __future__ import annotations

import os
import tempfile

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


def _check_database(request: Request) -> str:
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the kind is reported
        return f"error: {type(exc).__name__}"


def _check_storage(request: Request) -> str:
    try:
        fd, path = tempfile.mkstemp(dir=request.app.state.settings.tmp_dir, prefix="health-")
        os.close(fd)
        os.unlink(path)
        return "ok"
    except OSError as exc:
        return f"error: {exc.strerror or type(exc).__name__}"


@router.get("/health")
def health(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    body = {
        "status": "ok",
        "database": _check_database(request),
        "storage": _check_storage(request),
        "backend": getattr(request.app.state, "backend_name", None)
        or ("openai" if settings.openai_api_key else "draft"),
        "model": settings.default_image_model,
        "version": request.app.state.version,
    }
    failing = [part for part in ("database", "storage") if body[part] != "ok"]
    if failing:
        body["status"] = "error"
        body["failing"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)
