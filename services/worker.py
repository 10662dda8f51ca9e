"""`python manage.py worker [--concurrency N]`: a procrastinate worker process (PostgreSQL only).

It builds the very Runtime the API builds (`build_runtime`, in worker mode), so a job runs
with the same backend, file store, similarity cache and finish hooks as anywhere else. Run as
many as you like, on any host that reaches the database and the same DATA_DIR / storage, with
the same SECRET_KEY as the API processes. SIGTERM or Ctrl-C stops it gracefully (running jobs
get a grace period; what is left is run again by another worker).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from config import Settings
from generation.procrastinate_queue import ProcrastinateQueue
from services.request_log import configure_logging
from services.runtime import build_runtime

log = logging.getLogger("storyloom.worker")


async def run_worker(settings: Settings, concurrency: int) -> int:
    """Run until a signal (0) or until the worker itself ends on an error (1)."""
    configure_logging(settings.log_level, settings.log_format)
    runtime = build_runtime(settings, worker_concurrency=concurrency)
    await runtime.start()
    queue = runtime.jobs
    assert isinstance(queue, ProcrastinateQueue) and queue.worker_task is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    log.info("worker: %d job(s) at once, stall timeout %.0f s", concurrency, settings.job_stall_seconds)
    try:
        await asyncio.wait({stopping, queue.worker_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        crashed = queue.worker_task.done() and not stop.is_set()
        stopping.cancel()
        await runtime.stop()
    if crashed:
        log.error("the procrastinate worker ended on its own; stopping")
        return 1
    return 0
