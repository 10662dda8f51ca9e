"""What `GET /health` reports: is the database answering and the data directory writable?"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from config import Settings
from storage.db import ping

if TYPE_CHECKING:
    from services.runtime import Runtime


def check_database(engine: Engine) -> str:
    try:
        ping(engine)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the kind is reported
        return f"error: {type(exc).__name__}"


def check_storage(settings: Settings) -> str:
    try:
        fd, path = tempfile.mkstemp(dir=settings.tmp_dir, prefix="health-")
        os.close(fd)
        os.unlink(path)
        return "ok"
    except OSError as exc:
        return f"error: {exc.strerror or type(exc).__name__}"


def health_report(rt: Runtime) -> dict[str, Any]:
    """The /health body; `failing` lists the parts that are down (absent when all are up)."""
    settings = rt.settings
    body: dict[str, Any] = {
        "status": "ok",
        "database": check_database(rt.engine),
        "storage": check_storage(settings),
        "backend": rt.backend_name,
        "model": settings.default_image_model,
        "version": rt.version,
    }
    failing = [part for part in ("database", "storage") if body[part] != "ok"]
    if failing:
        body["status"] = "error"
        body["failing"] = failing
    return body
