"""Jobs on procrastinate (JOB_QUEUE=procrastinate, the default on PostgreSQL): any process, any host.

A generation is one procrastinate job of the task `storyloom.generate` with `lock` and
`queueing_lock` set to the generation id: two engine jobs for one generation never run at
once, and a second defer while one waits is refused (`AlreadyEnqueued`, which is fine).

Nothing accepted is lost between the Generation row and the engine: the row commits first and
is deferred right after; and every process that runs a worker also runs `maintain()` (at start
and every half JOB_STALL_SECONDS), which
- hands back to the queue the engine jobs of workers whose heartbeat stopped JOB_STALL_SECONDS
  ago (procrastinate's stalled-jobs API: `get_stalled_jobs` + `retry_job`), and
- defers every queued or running row that has no live (`todo`/`doing`) engine job: a crash
  between commit and defer, a worker stopped mid-job, a lost follow-up of a book page.
A job that another live worker holds is never touched: its engine job is `doing` and its
worker heart-beats. Outputs are stored once because the runner fences its completion on the
attempt it claimed (generation/runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from anyio import to_thread
from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from sqlalchemy import Engine
from sqlmodel import Session

from generation import jobs
from generation.queue import Finished, QueueStats, wait_polling
from storage import job_engine

log = logging.getLogger("storyloom.jobs")

TASK_NAME = "storyloom.generate"
QUEUE_NAME = "generations"
LIVE = (Status.TODO.value, Status.DOING.value)
# "Workers seen in the last minute" (/health).
WORKERS_SEEN_SECONDS = 60.0
# On a worker process's stop (SIGTERM), running jobs get this long to finish; then they are
# aborted and a reconciler runs them again (their rows still say `running`). An API process
# that runs jobs (API_RUNS_JOBS) stops them at once, as the in-process pool does.
SHUTDOWN_GRACE_SECONDS = 10.0
# Connections procrastinate's own pool may open per process (defers, heartbeats, LISTEN).
POOL_MAX_SIZE = 8

RunJob = Callable[[str], Awaitable[Awaitable[None] | None]]


def libpq_url(engine: Engine) -> str:
    """Our SQLAlchemy URL (postgresql+psycopg://…) as the plain conninfo psycopg's pool takes."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateQueue:
    kind = "procrastinate"

    def __init__(
        self,
        engine: Engine,
        *,
        stall_seconds: float,
        run_job: RunJob | None = None,
        concurrency: int = 0,
        shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    ) -> None:
        """`run_job` and `concurrency` > 0 make this process a worker; without, it only defers."""
        self.engine = engine
        self.shutdown_grace = shutdown_grace
        self.stall_seconds = stall_seconds
        self.concurrency = concurrency if run_job is not None else 0
        self._run_job = run_job
        self.app = App(
            connector=PsycopgConnector(conninfo=libpq_url(engine), min_size=1, max_size=POOL_MAX_SIZE)
        )
        self.app.task(name=TASK_NAME, queue=QUEUE_NAME, pass_context=False)(self._run)
        self._worker: asyncio.Task[None] | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @property
    def runs_jobs(self) -> bool:
        return self.concurrency > 0

    async def _run(self, generation_id: str) -> None:
        if self._run_job is None:  # a deferring-only process never starts a worker
            raise RuntimeError("this process runs no jobs")
        tail = await self._run_job(generation_id)
        if tail is not None:
            await tail

    async def start(self) -> None:
        await self.app.open_async()
        self._listener = asyncio.create_task(
            job_engine.listen_for_finished(libpq_url(self.engine), self._wake), name="storyloom-job-listener"
        )
        if not self.runs_jobs:
            return
        await self.maintain()  # before the first fetch: what a crash left behind goes first
        self._worker = asyncio.create_task(
            self.app.run_worker_async(
                queues=[QUEUE_NAME],
                concurrency=self.concurrency,
                name=f"storyloom-{socket.gethostname()}-{os.getpid()}",
                install_signal_handlers=False,  # the process (uvicorn, manage.py worker) owns signals
                update_heartbeat_interval=min(10.0, max(0.2, self.stall_seconds / 4)),
                # New jobs arrive by NOTIFY at once; a stalled job put back (an UPDATE) is only
                # seen by polling, so poll as often as the maintenance loop looks for stalls.
                fetch_job_polling_interval=self.maintenance_interval,
                stalled_worker_timeout=self.stall_seconds,
                shutdown_graceful_timeout=self.shutdown_grace,
                delete_jobs="successful",
            ),
            name="storyloom-procrastinate-worker",
        )
        self._worker.add_done_callback(self._worker_ended)
        self._maintenance = asyncio.create_task(self._maintain_forever(), name="storyloom-job-maintenance")

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        """A worker that ends while the queue runs lost its database or hit a bug: say so loudly
        (manage.py worker exits on it; an API process with API_RUNS_JOBS keeps serving without)."""
        if task is self._worker and not task.cancelled():
            log.error("the procrastinate worker stopped (%r): no more jobs run here", task.exception())

    @property
    def worker_task(self) -> asyncio.Task[None] | None:
        """The running worker (manage.py worker waits on it: a worker that dies ends the process)."""
        return self._worker

    async def stop(self) -> None:
        for task in (self._maintenance, self._listener):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._maintenance = self._listener = None
        if self._worker is not None:
            # Cancelling run_worker_async is procrastinate's graceful stop: running jobs get
            # `shutdown_grace` seconds, then are aborted (their rows are picked up again).
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        await self.app.close_async()

    async def submit(self, job_id: str) -> None:
        deferrer = self.app.configure_task(TASK_NAME, lock=job_id, queueing_lock=job_id)
        with contextlib.suppress(AlreadyEnqueued):  # one is waiting already: it will run the job
            await deferrer.defer_async(generation_id=job_id)

    async def cancel(self, job_id: str) -> None:
        """Cancel a waiting engine job; ask the worker running one to abort it (it cancels the task)."""
        manager = self.app.job_manager
        for job in await manager.list_jobs_async(task=TASK_NAME, lock=job_id):
            if job.status in LIVE and job.id is not None:
                await manager.cancel_job_by_id_async(job.id, abort=True)

    async def wait(self, job_id: str, within: float, finished: Finished) -> bool:
        """Woken by the row's NOTIFY at commit (any process); polling covers a lost connection."""
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        try:
            return await wait_polling(finished, within, event)
        finally:
            events = self._waiters.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[job_id]

    def _wake(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()

    def stats(self) -> QueueStats:
        return QueueStats(
            kind=self.kind,
            depth=job_engine.queue_depth(self.engine, QUEUE_NAME),
            workers=job_engine.workers_seen(self.engine, WORKERS_SEEN_SECONDS),
        )

    # --- recovery ------------------------------------------------------------------------------

    @property
    def maintenance_interval(self) -> float:
        return min(30.0, max(0.5, self.stall_seconds / 2))

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_interval)
            try:
                await self.maintain()
            except Exception:
                log.exception("job maintenance round failed")

    async def maintain(self) -> tuple[list[int], list[str]]:
        """One round: retry stalled engine jobs, then defer rows with no live engine job."""
        return await self.retry_stalled(), await self.reconcile()

    async def retry_stalled(self) -> list[int]:
        """Engine jobs whose worker stopped heart-beating JOB_STALL_SECONDS ago go back to `todo`."""
        manager = self.app.job_manager
        retried = []
        for job in await manager.get_stalled_jobs(
            queue=QUEUE_NAME, task_name=TASK_NAME, seconds_since_heartbeat=self.stall_seconds
        ):
            try:
                await manager.retry_job(job)
            except Exception as exc:  # noqa: BLE001 - another worker retried it first
                log.info("stalled job %s not retried here: %s", job.id, type(exc).__name__)
                continue
            assert job.id is not None
            retried.append(job.id)
            log.warning("generation %s: its worker stopped; the job goes to another worker", job.lock)
        return retried

    async def reconcile(self) -> list[str]:
        """Defer every queued or running generation that no `todo`/`doing` engine job carries."""
        # Rows first: a row's engine job that finishes between the two reads is at worst deferred
        # again, and that run finds the row finished and does nothing.
        rows = await to_thread.run_sync(self._unfinished)
        manager = self.app.job_manager
        live: set[str] = set()
        for status in LIVE:
            live.update(
                job.lock for job in await manager.list_jobs_async(task=TASK_NAME, status=status) if job.lock
            )
        orphans = [job_id for job_id in rows if job_id not in live]
        for job_id in orphans:
            log.warning("generation %s had no engine job; deferred it", job_id)
            await self.submit(job_id)
        return orphans

    def _unfinished(self) -> list[str]:
        with Session(self.engine) as session:
            return jobs.resumable_job_ids(session, runnable_only=True)
