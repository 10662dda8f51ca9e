"""The in-process job pool (JOB_QUEUE=local, the SQLite default), and its `LocalQueue` face.

The pool holds only job ids; the truth (status, attempts) is the Generation row. So a crash
loses nothing: on start-up every job left queued or running is submitted again (the runtime
does it, for this engine only: one process owns every job), and a worker task that dies
mid-job has its job put back and is replaced. `LocalQueue` is the pool behind the small
interface of generation/queue.py that procrastinate implements too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from generation.queue import Finished, QueueStats, wait_polling

log = logging.getLogger("storyloom.jobs")

# A job's run returns None when it is finished, or a "tail": the rest of its work (storing the
# outputs), which the queue runs outside the worker slot so the slot's next upstream call can
# start at once. GENERATION_CONCURRENCY bounds upstream calls, not local image processing.
RunJob = Callable[[str], Awaitable[Awaitable[None] | None]]


class JobPool:
    def __init__(self, run_job: RunJob, *, concurrency: int) -> None:
        self._run_job = run_job
        self._concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: set[asyncio.Task[None]] = set()
        self._current: dict[asyncio.Task[None], str] = {}
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._tails: set[asyncio.Task[None]] = set()
        self._held: set[str] = set()  # submitted and not finished: waiting, running or storing
        self._cancelling: set[str] = set()  # cancelled by an author: their tasks end, nothing requeued
        self._stopping = False

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker (not counting those running)."""
        return self._queue.qsize()

    @property
    def running(self) -> int:
        return len(self._current)

    def worker_of(self, job_id: str) -> asyncio.Task[None] | None:
        """The worker task running `job_id` right now, if any (for diagnostics and crash tests)."""
        return next((task for task, current in self._current.items() if current == job_id), None)

    def start(self) -> None:
        self._stopping = False
        for _ in range(self._concurrency):
            self._spawn()

    async def stop(self) -> None:
        """Cancel the workers; jobs they held stay `running` in the database and resume next start."""
        self._stopping = True
        tasks = [*self._workers, *self._tails]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tails.clear()
        self._workers.clear()
        self._current.clear()

    @property
    def held(self) -> frozenset[str]:
        """Jobs this pool will still run or finish (the watchdog leaves these alone)."""
        return frozenset(self._held)

    def submit(self, job_id: str) -> None:
        self._held.add(job_id)
        self._queue.put_nowait(job_id)

    def cancel(self, job_id: str) -> None:
        """Stop the job's worker step or storing tail, if it has one; a queued id is skipped at claim.

        The row already says `cancelled` (and the runner's fence discards late outputs), so the
        interrupted job is neither requeued nor reported as a crashed worker.
        """
        running = [task for task, current in self._current.items() if current == job_id]
        tails = [task for task in self._tails if task.get_name() == f"storyloom-finish-{job_id}"]
        if running or tails:
            self._cancelling.add(job_id)
        for task in [*running, *tails]:
            task.cancel()
        if not running and not tails:
            self._notify(job_id)

    def ended_elsewhere(self, job_id: str) -> None:
        """A job ended outside the pool (the watchdog): wake whoever waits for it."""
        self._notify(job_id)

    def watch(self, job_id: str) -> asyncio.Event:
        """Register interest before checking the job's status, so a finish in between is not missed."""
        event = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(event)
        return event

    def unwatch(self, job_id: str, event: asyncio.Event) -> None:
        events = self._waiters.get(job_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiters[job_id]

    async def wait(self, event: asyncio.Event, within: float) -> bool:
        """True when the watched job finished within `within` seconds."""
        try:
            await asyncio.wait_for(event.wait(), within)
        except TimeoutError:
            return False
        return True

    def _notify(self, job_id: str) -> None:
        self._held.discard(job_id)
        for event in self._waiters.pop(job_id, set()):
            event.set()

    def _spawn(self) -> None:
        task = asyncio.create_task(self._work(), name="storyloom-worker")
        self._workers.add(task)
        task.add_done_callback(self._on_worker_exit)

    def _on_worker_exit(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        job_id = self._current.pop(task, None)
        if self._stopping:
            return
        if job_id is not None and job_id in self._cancelling:
            self._cancelling.discard(job_id)
            self._notify(job_id)
            self._spawn()
            return
        # A worker died on its own (cancelled from outside, or a bug): keep the pool full and
        # give its job back; the job row still says `running`, and its attempt count is kept.
        log.warning("worker exited unexpectedly; replacing it (job %s requeued)", job_id)
        if job_id is not None:
            self.submit(job_id)
        self._spawn()

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            job_id = await self._queue.get()
            self._current[task] = job_id
            tail = None
            try:
                tail = await self._run_job(job_id)
            except Exception:
                log.exception("job %s crashed its worker step", job_id)
            finally:
                self._queue.task_done()
            # Only a completed step clears the job; a cancellation above leaves it for requeue.
            self._current.pop(task, None)
            if tail is None:
                self._notify(job_id)
            else:
                self._start_tail(job_id, tail)

    def _start_tail(self, job_id: str, tail: Awaitable[None]) -> None:
        async def finish() -> None:
            try:
                await tail
            except Exception:
                log.exception("job %s crashed while storing its results", job_id)
            self._notify(job_id)

        task = asyncio.create_task(finish(), name=f"storyloom-finish-{job_id}")
        self._tails.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tails.discard(finished)
            if job_id in self._cancelling:
                self._cancelling.discard(job_id)
                self._notify(job_id)
                return
            if finished.cancelled() and not self._stopping:
                # Killed from outside mid-store: the row still says running; run it again.
                log.warning("finishing job %s was interrupted; requeued", job_id)
                self.submit(job_id)

        task.add_done_callback(done)


class LocalQueue:
    """The in-process pool as a `generation.queue.JobQueue`: one process runs every job."""

    kind = "local"

    def __init__(self, run_job: RunJob, *, concurrency: int) -> None:
        self.pool = JobPool(run_job, concurrency=concurrency)

    async def start(self) -> None:
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()

    async def submit(self, job_id: str) -> None:
        self.pool.submit(job_id)

    async def cancel(self, job_id: str) -> None:
        self.pool.cancel(job_id)

    async def wait(self, job_id: str, within: float, finished: Finished) -> bool:
        """The pool's own event wakes the waiter at once; the row is polled too (cheap, and exact)."""
        event = self.pool.watch(job_id)
        try:
            return await wait_polling(finished, within, event)
        finally:
            self.pool.unwatch(job_id, event)

    def stats(self) -> QueueStats:
        return QueueStats(kind=self.kind, depth=self.pool.depth, workers=1)
