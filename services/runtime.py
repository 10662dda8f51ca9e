"""The runtime: everything a running Storyloom holds, built once from `Settings`, without FastAPI.

`create_app(settings)` builds one and hands it to routes through `deps.RuntimeDep`; a worker
process, `manage.py` or a test builds the very same object with `build_runtime(settings)` and
drives it with `await runtime.start()` / `await runtime.stop()`. Services and job code take the
runtime (or the plain parts they need), never the web app, so nothing below the routes needs
a request to run.

The backend and the job queue bind to the event loop they start on, so they are made by
`start()`; reading them before that is a programming error and says so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from accounts.quotas import Clock
from books.illustrate import page_job_finished
from characters.sheet import sheet_finished
from config import Settings
from exports.runner import ExportRunner, ExportWork
from generation import jobs
from generation.backends import ImageBackend, backend_name, make_backend
from generation.capabilities import resolve_model
from generation.models import Generation
from generation.pool import LocalQueue
from generation.pricing import Price, load_prices
from generation.procrastinate_queue import SHUTDOWN_GRACE_SECONDS, ProcrastinateQueue
from generation.queue import JobQueue
from generation.runner import FinishHook, JobRunner
from library.fetcher import Resolver, system_resolver
from library.similarity import SimilarityCache
from library.sweep import sweep_unreferenced
from services.auth_throttle import FailedAuthThrottle
from services.metrics import JobCounts, Metrics
from services.ratelimit import KeyRateLimiter
from storage.db import make_engine, migrate_or_check, prepare_database_dir, write_session
from storage.decode_gate import DecodeGate
from storage.files import FileStore
from storage.scratch import ProcessScratch, remove_abandoned
from storage.space import ensure_reserve
from storage.stores import blob_stores
from storage.timeutil import utcnow

VERSION = "0.1.0"
log = logging.getLogger("storyloom")


class NotStarted(RuntimeError):
    """The backend or job queue was used before `Runtime.start()` (or after `stop()`)."""


class BlobStoreUnavailable(RuntimeError):
    """STORAGE_URL names a bucket that does not answer (missing, unreachable, access denied)."""


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: FileStore
    # Finished exports' PDFs, ZIPs and previews (keys in the Export row), next to the images.
    export_store: FileStore
    prices: dict[str, Price]
    metrics: Metrics
    limiter: KeyRateLimiter
    similarity: SimilarityCache
    auth_throttle: FailedAuthThrottle
    decode_gate: DecodeGate
    # The quota's and /usage's idea of "now"; tests replace it to cross midnight.
    clock: Clock = utcnow
    # DNS for URL imports, asked once per hop (library/fetcher.py); tests put a stub here.
    url_resolver: Resolver = system_resolver
    version: str = VERSION
    # `manage.py worker --concurrency N`: this process runs N procrastinate jobs at once
    # (None: an API process, which runs jobs only with the local pool or API_RUNS_JOBS).
    worker_concurrency: int | None = None
    _backend: ImageBackend | None = field(default=None, repr=False)
    _jobs: JobQueue | None = field(default=None, repr=False)
    _watchdog: asyncio.Task[None] | None = field(default=None, repr=False)
    _exports: ExportRunner | None = field(default=None, repr=False)
    _scratch: ProcessScratch | None = field(default=None, repr=False)

    @property
    def backend(self) -> ImageBackend:
        if self._backend is None:
            raise NotStarted("the runtime is not started: no image backend yet")
        return self._backend

    @property
    def jobs(self) -> JobQueue:
        if self._jobs is None:
            raise NotStarted("the runtime is not started: no job queue yet")
        return self._jobs

    @property
    def finish_hook(self) -> FinishHook:
        """Every domain's reaction to a job that ended (the runner's and cancel's)."""
        return FINISH_HOOK

    @property
    def exports(self) -> ExportRunner:
        """The book-export pool (issue 10): renders off the event loop, EXPORT_CONCURRENCY at once."""
        if self._exports is None:
            raise NotStarted("the runtime is not started: no export pool yet")
        return self._exports

    @property
    def scratch(self) -> ProcessScratch:
        """This process's own temp folder (uploads, export rendering) and its owner id (leases)."""
        if self._scratch is None:
            raise NotStarted("the runtime is not started: no scratch folder yet")
        return self._scratch

    @property
    def backend_name(self) -> str:
        """The backend's name, known from the settings even before `start()` (for /health)."""
        return self._backend.name if self._backend is not None else backend_name(self.settings)

    def session(self) -> Session:
        """A plain (read) session; writes go through `storage.db.write_transaction`."""
        return Session(self.engine, expire_on_commit=False)

    async def start(self) -> None:
        """Prepare the data directory, migrate, start the workers and resume unfinished jobs."""
        settings = self.settings
        settings.ensure_dirs()
        # A bucket that is missing or refuses these credentials would fail every upload: say so now.
        problem = self.store.check()
        if problem != "ok":
            raise BlobStoreUnavailable(f"the blob store ({settings.storage_url}) is not usable: {problem}")
        # Temp folders of processes that died (uploads cut off mid-write); live processes' stay.
        remove_abandoned(settings.tmp_dir)
        self._scratch = ProcessScratch.claim(settings.tmp_dir)
        prepare_database_dir(str(self.engine.url))
        migrate_or_check(self.engine, settings.migrate_on_start)
        log.info("storyloom %s: data in %s", self.version, settings.data_dir)
        # Files a crash or a failed insert left behind (no row names them), and the room
        # that lets deletes through on a full disk. The sweep spares files younger than its grace
        # period and re-checks each candidate under its file lock (library/sweep.py): another
        # process's upload may be about to commit the row that names one.
        with Session(self.engine, expire_on_commit=False) as session:
            swept = sweep_unreferenced(session, self.store)
        if swept.files:
            log.info("removed %d unreferenced file(s), %d bytes", swept.files, swept.bytes)
        ensure_reserve(settings.data_dir, settings.storage_reserve_bytes)
        # A retired default model would fail every scene: refuse to start, naming the successor.
        resolve_model(settings.default_image_model, self.clock().date(), field="default_image_model")
        backend = make_backend(settings, observer=self.metrics.observe_upstream)
        runner = JobRunner(
            self.engine,
            settings,
            self.store,
            backend,
            self.similarity,
            self.prices,
            self.decode_gate,
            on_finished=FINISH_HOOK,
            observe=self.metrics.observe_job,
        )
        queue = self._make_queue(runner)
        runner.enqueue = queue.submit
        self._backend, self._jobs = backend, queue
        await queue.start()
        self.metrics.set_job_source(lambda: self._job_counts(queue))
        leftover: list[str] = []
        if isinstance(queue, LocalQueue):
            # The pool is the only engine and this process its only runner: everything left
            # queued or running is ours. (procrastinate's workers recover theirs themselves.)
            with Session(self.engine) as session:
                leftover = jobs.resumable_job_ids(session)
            for job_id in leftover:
                queue.pool.submit(job_id)
            self._watchdog = asyncio.create_task(self._watch_jobs(queue), name="storyloom-job-watchdog")
        self._exports = ExportRunner(
            ExportWork(
                self.engine, settings, self.store, self.export_store, self._scratch.path, self._scratch.owner
            )
        )
        if self.worker_concurrency is None:  # exports are the API processes' (a worker serves none)
            self._exports.resume_unfinished()
        log.info(
            "image backend: %s (model %s); jobs: %s, %d run here at once; %d unfinished job(s) resumed",
            backend.name,
            settings.default_image_model,
            queue.kind,
            settings.generation_concurrency if isinstance(queue, LocalQueue) else queue.concurrency,
            len(leftover),
        )

    def _make_queue(self, runner: JobRunner) -> JobQueue:
        """The configured engine: the in-process pool, or procrastinate (working here or not)."""
        settings = self.settings
        if settings.resolved_job_queue == "local":
            return LocalQueue(runner, concurrency=settings.generation_concurrency)
        concurrency = self.worker_concurrency or (
            settings.generation_concurrency if settings.api_runs_jobs else 0
        )
        return ProcrastinateQueue(
            self.engine,
            stall_seconds=settings.job_stall_seconds,
            run_job=runner if concurrency else None,
            concurrency=concurrency,
            # A worker process finishes what it can on SIGTERM; an API process stops its jobs at
            # once (like the pool) and the reconciler runs them again.
            shutdown_grace=SHUTDOWN_GRACE_SECONDS if self.worker_concurrency else 0.0,
        )

    async def _watch_jobs(self, local: LocalQueue) -> None:
        """Every JOB_WATCHDOG_INTERVAL_SECONDS, fail `running` jobs past the deadline that no worker holds."""
        deadline = timedelta(seconds=self.settings.job_running_deadline_seconds)
        queue = local.pool
        while True:
            await asyncio.sleep(self.settings.job_watchdog_interval_seconds)
            try:
                ended, released = await to_thread.run_sync(self._fail_stalled, set(queue.held), deadline)
            except Exception:
                log.exception("job watchdog round failed")
                continue
            for job_id in ended:
                log.warning("job %s was running past its deadline with no worker; failed it", job_id)
                queue.ended_elsewhere(job_id)
            for job_id in released:  # a book's pages that waited for a stalled page
                queue.submit(job_id)

    def _fail_stalled(self, held: set[str], deadline: timedelta) -> tuple[list[str], list[str]]:
        """The stalled jobs failed, and the jobs their finish hooks released, in one transaction."""
        with write_session(self.engine) as session:
            ended = jobs.fail_stalled(session, held, deadline)
            released = [
                job_id
                for stalled in ended
                for job_id in FINISH_HOOK(session, session.get(Generation, stalled))  # type: ignore[arg-type]
            ]
        return ended, released

    def _job_counts(self, queue: JobQueue) -> JobCounts:
        """Jobs by status across all workspaces (operators' view) and the jobs waiting for a worker."""
        with Session(self.engine) as session:
            return JobCounts(by_state=jobs.count_by_status(session), queue_depth=queue.stats().depth)

    async def stop(self) -> None:
        """Stop the workers; jobs they held stay `running` and are resumed at the next start."""
        self.metrics.set_job_source(None)
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        if self._exports is not None:
            self._exports.shutdown()
            self._exports = None
        if self._jobs is not None:
            await self._jobs.stop()
        if self._backend is not None:
            await self._backend.aclose()
        self._backend, self._jobs = None, None
        if self._scratch is not None:
            self._scratch.release()
            self._scratch = None
        self.engine.dispose()


def all_of(*hooks: FinishHook) -> FinishHook:
    """One finish hook that runs each domain's in turn (books' pages, characters' sheets)."""

    def run(session: Session, job: Generation) -> list[str]:
        return [job_id for hook in hooks for job_id in hook(session, job)]

    return run


# Every domain's reaction to a job that ended (a constant: the hooks hold no state).
FINISH_HOOK = all_of(page_job_finished, sheet_finished)


def build_runtime(settings: Settings, *, worker_concurrency: int | None = None) -> Runtime:
    """Everything but what binds to an event loop; cheap, connects to nothing until `start()`.

    `worker_concurrency` builds a procrastinate worker's runtime (`manage.py worker`).
    """
    stores = blob_stores(settings)
    return Runtime(
        worker_concurrency=worker_concurrency,
        settings=settings,
        engine=make_engine(settings.resolved_database_url),
        store=stores.images,
        export_store=stores.exports,
        prices=load_prices(settings.price_overrides),
        metrics=Metrics(),
        limiter=KeyRateLimiter.from_settings(settings),
        similarity=SimilarityCache(),
        auth_throttle=FailedAuthThrottle.from_settings(settings),
        decode_gate=DecodeGate(settings.image_workers),
    )
