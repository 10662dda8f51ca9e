"""A waiter for a job on procrastinate is woken by the worker's notification, not its next poll.

Waiting reads the Generation row with a growing pause (up to 1 s). The worker sends
`pg_notify('storyloom_job_finished', id)` after the finishing commit and every process LISTENs,
so a sync `POST /generate-image` answers as soon as its job is done, whichever process ran it.
The control half shows the same finish *without* a notification is only seen at the next poll,
which is what makes the first half's bound meaningful.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from cluster.postgres import PostgresCluster
from generation.procrastinate_queue import ProcrastinateQueue
from storage.db import make_engine
from tests.conftest import postgres_database

pytestmark = pytest.mark.anyio

# The row's pause has grown to its 1 s cap after this many looks (0.05, 0.1, … 0.8, 1.0).
LOOKS_BEFORE_LONG_PAUSE = 6


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def time_to_notice(queue: ProcrastinateQueue, announce: Callable[[], Awaitable[None]] | None) -> float:
    """Seconds from the job's finish to the waiter's return; the finish lands right after a look."""
    looks = 0
    done = False
    finished_at: list[float] = []

    async def finish() -> None:
        nonlocal done
        done = True
        finished_at.append(time.monotonic())
        if announce is not None:
            await announce()

    async def finished() -> bool:
        nonlocal looks
        looks += 1
        if looks == LOOKS_BEFORE_LONG_PAUSE:
            asyncio.get_running_loop().create_task(finish())  # just after this look said "no"
        return done

    assert await queue.wait("gen_wakeup", 30, finished)
    return time.monotonic() - finished_at[0]


async def test_a_notification_wakes_the_waiter_at_once_and_without_one_it_waits_for_the_poll(
    postgres: PostgresCluster,
) -> None:
    engine = make_engine(postgres_database(postgres))
    api, worker = ProcrastinateQueue(engine, stall_seconds=60), ProcrastinateQueue(engine, stall_seconds=60)
    await api.start()
    await worker.start()
    try:
        await asyncio.wait_for(api.listening.wait(), 30)
        notified = await time_to_notice(api, lambda: worker.announce_finished("gen_wakeup"))
        polled = await time_to_notice(api, None)
    finally:
        await worker.stop()
        await api.stop()
        engine.dispose()
    assert polled >= 0.8, polled  # the control: the next look comes a full pause later
    assert notified < 0.5, notified  # woken by the worker's notification
