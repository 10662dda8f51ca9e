"""What `GET /health` reports: database answering, data directory writable, backend able to draw?"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from config import Settings
from generation.backends import backend_problem, default_model
from storage.db import ping
from storage.space import ensure_reserve, free_bytes

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


def check_space(settings: Settings) -> tuple[str, int | None]:
    """("ok" | "degraded", free bytes): degraded under STORAGE_DEGRADED_FREE_BYTES.

    With room again, the reserve that lets deletes through on a full disk is made again.
    """
    try:
        free = free_bytes(settings.data_dir)
    except OSError:
        return "ok", None
    if free >= settings.storage_degraded_free_bytes:
        ensure_reserve(settings.data_dir, settings.storage_reserve_bytes)
        return "ok", free
    return "degraded", free


def check_queue(rt: Runtime) -> dict[str, Any]:
    """The job engine, jobs waiting for a worker and worker processes seen in the last minute."""
    try:
        stats = rt.jobs.stats()
    except Exception as exc:  # noqa: BLE001 - not started yet, or the engine's tables unreadable
        kind = rt.settings.resolved_job_queue
        return {"kind": kind, "depth": None, "workers": None, "error": type(exc).__name__}
    return {"kind": stats.kind, "depth": stats.depth, "workers": stats.workers}


def health_report(rt: Runtime) -> dict[str, Any]:
    """The /health body; `failing` lists the parts that are down (absent when all are up).

    Low free space is `degraded` (reads and deletes still work), not a failure.
    """
    settings = rt.settings
    storage = check_storage(settings)
    if storage == "ok":  # the data directory is fine: is the blob store (a bucket) reachable too?
        storage = rt.store.check()
    space, free = check_space(settings)
    body: dict[str, Any] = {
        "status": "ok",
        "database": check_database(rt.engine),
        "database_kind": rt.engine.dialect.name,  # "sqlite" or "postgresql" (issue 13)
        "storage": space if storage == "ok" else storage,
        "storage_free_bytes": free,
        "blob_store": rt.store.kind,
        "backend": rt.backend_name,
        "model": default_model(settings, rt.backend_name),
        "version": rt.version,
        "queue": check_queue(rt),
        # Scale-out (issue 13): where rate limits are counted. A Redis that does not answer
        # degrades (requests are admitted, the database caps still bound spending), not fails.
        "limiter": rt.limiter.storage_health(),
    }
    failing = [part for part in ("database", "storage") if body[part] not in ("ok", "degraded")]
    if body["storage"] == "degraded" or body["limiter"].startswith("error"):
        body["status"] = "degraded"
    problem = backend_problem(settings)
    if problem is not None:  # e.g. IMAGE_BACKEND=diffusers without torch: says what to install
        body["backend_error"] = problem
        failing.append("backend")
    if failing:
        body["status"] = "error"
        body["failing"] = failing
    return body
