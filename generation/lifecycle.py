"""Start and stop scene generation with the app: backend, worker pool, and crash recovery.

Also wires the generation layer into the app's metrics: the backend reports every upstream
call to `Metrics.observe_upstream`, and the metrics' job source counts jobs by state (one
GROUP BY at scrape time) and reads the queue depth from the pool.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from generation import jobs
from generation.backends import make_backend
from generation.capabilities import resolve_model
from generation.models import Generation
from generation.queue import JobQueue
from generation.runner import JobRunner
from library.service import file_store
from services.metrics import JobCounts, Metrics

log = logging.getLogger("storyloom.jobs")


async def start_generation(app: FastAPI) -> None:
    settings = app.state.settings
    # A retired default model would fail every scene: refuse to start, naming the successor.
    resolve_model(settings.default_image_model, field="default_image_model")
    metrics: Metrics | None = getattr(app.state, "metrics", None)
    backend = make_backend(settings, observer=metrics.observe_upstream if metrics is not None else None)
    app.state.backend = backend
    app.state.backend_name = backend.name
    runner = JobRunner(
        app.state.engine, settings, file_store(settings), backend, getattr(app.state, "prices", None)
    )
    queue = JobQueue(runner, concurrency=settings.generation_concurrency)
    app.state.jobs = queue
    queue.start()
    if metrics is not None:
        metrics.set_job_source(lambda: job_counts(app.state.engine, queue))
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


def job_counts(engine: Engine, queue: JobQueue) -> JobCounts:
    """Jobs by status across all workspaces (operators' view) and the jobs waiting for a worker."""
    with Session(engine) as session:
        rows = session.exec(select(Generation.status, func.count()).group_by(Generation.status)).all()
    return JobCounts(by_state={status: count for status, count in rows}, queue_depth=queue.depth)


async def stop_generation(app: FastAPI) -> None:
    """Stop the workers; jobs they held stay `running` and are resumed at the next start."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is not None:
        metrics.set_job_source(None)
    await app.state.jobs.stop()
    await app.state.backend.aclose()
