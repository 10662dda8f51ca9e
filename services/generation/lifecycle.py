"""Start and stop scene generation with the app: backend, worker pool, and crash recovery."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from sqlmodel import Session

from characters.images import file_store
from services.backends import make_backend
from services.capabilities import resolve_model
from services.generation import jobs
from services.generation.queue import JobQueue
from services.generation.runner import JobRunner

log = logging.getLogger("storyloom.jobs")


async def start_generation(app: FastAPI) -> None:
    settings = app.state.settings
    # A retired default model would fail every scene: refuse to start, naming the successor.
    resolve_model(settings.default_image_model, field="default_image_model")
    backend = make_backend(settings)
    app.state.backend = backend
    app.state.backend_name = backend.name
    runner = JobRunner(app.state.engine, settings, file_store(settings), backend)
    queue = JobQueue(runner, concurrency=settings.generation_concurrency)
    app.state.jobs = queue
    queue.start()
    with Session(app.state.engine) as session:
        leftover = jobs.resumable_job_ids(session)
    for job_id in leftover:
        queue.submit(job_id)
    log.info(
        "image backend: %s (model %s, %d workers); %d unfinished job(s) resumed",
        backend.name,
        settings.default_image_model,
        settings.generation_concurrency,
        len(leftover),
    )


async def stop_generation(app: FastAPI) -> None:
    """Stop the workers; jobs they held stay `running` and are resumed at the next start."""
    await app.state.jobs.stop()
    await app.state.backend.aclose()
