"""The small job-queue interface every engine implements: the in-process pool and procrastinate.

The Generation row is the truth (status, attempts, outputs); an engine only moves job ids to
whoever runs them. So the interface is small: `submit` a job id after its row committed,
`cancel` one whose row already says `cancelled`, `wait` until a row is finished, and `stats`
for /health and /metrics. `start`/`stop` bind the engine to the runtime's event loop.
Both engines pass one set of contract tests (tests/generation/test_queue_contract.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

# Whether the job's row is finished (succeeded, failed or cancelled): the waiter's question.
Finished = Callable[[], Awaitable[bool]]

# How often a waiter re-reads the row: quick at first (most scenes take seconds), then at most
# once a second, so a hundred waiting requests cost a hundred tiny reads a second at worst.
POLL_START_SECONDS = 0.05
POLL_MAX_SECONDS = 1.0


@dataclass(frozen=True)
class QueueStats:
    """/health's `queue`: the engine, jobs waiting for a worker, worker processes seen lately."""

    kind: str
    depth: int
    workers: int


class JobQueue(Protocol):
    kind: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, job_id: str) -> None:
        """Hand a committed job to the engine (idempotent: a second submit never runs it twice)."""

    async def cancel(self, job_id: str) -> None:
        """Stop the job's run, queued or running; its row already says `cancelled`."""

    async def wait(self, job_id: str, within: float, finished: Finished) -> bool:
        """True when `finished()` held within `within` seconds (whichever process ran the job)."""

    def stats(self) -> QueueStats:
        """Depth and workers (may read the database: call it from a worker thread)."""


async def wait_polling(finished: Finished, within: float, woken: asyncio.Event | None = None) -> bool:
    """Poll `finished` with a growing pause until it holds or `within` passes; `woken` cuts a pause short.

    Polling the row works across processes (the job may run on any worker host); an engine that
    knows sooner (the in-process pool's event, PostgreSQL's NOTIFY) passes `woken` so its waiters
    answer at once; their row is then re-read only every POLL_MAX_SECONDS, as a fallback. (Reading
    it on the short schedule too cost the embedded path more CPU than the scenes themselves: 100
    waiters at concurrency 16 read their rows ~1,000 times.)
    """
    deadline = time.monotonic() + within
    pause = POLL_START_SECONDS if woken is None else POLL_MAX_SECONDS
    while True:
        if await finished():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if woken is None:
            await asyncio.sleep(min(pause, left))
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(pause, left))
            woken.clear()  # a wake is a hint to look now, not an answer: never spin on it
        pause = min(pause * 2, POLL_MAX_SECONDS)
