"""The in-process job pool: bounded concurrency, waiting, and surviving a killed worker."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from generation.pool import JobPool as JobQueue


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_never_runs_more_jobs_than_its_concurrency() -> None:
    gate = asyncio.Event()
    two_running = asyncio.Event()
    running = 0
    peak = 0
    done: list[str] = []

    async def run(job_id: str) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            two_running.set()
        await gate.wait()
        running -= 1
        done.append(job_id)

    queue = JobQueue(run, concurrency=2)
    queue.start()
    events = {f"j{i}": queue.watch(f"j{i}") for i in range(5)}
    for job_id in events:
        queue.submit(job_id)
    await two_running.wait()
    assert queue.running == 2
    assert queue.depth == 3
    gate.set()
    for event in events.values():
        assert await queue.wait(event, within=5)
    await queue.stop()
    assert peak == 2
    assert sorted(done) == sorted(events)


@pytest.mark.anyio
async def test_wait_reports_an_unfinished_job_as_not_done() -> None:
    never = asyncio.Event()

    async def run(job_id: str) -> None:
        await never.wait()

    queue = JobQueue(run, concurrency=1)
    queue.start()
    event = queue.watch("slow")
    queue.submit("slow")
    assert await queue.wait(event, within=0.05) is False
    queue.unwatch("slow", event)
    await queue.stop()


@pytest.mark.anyio
async def test_a_killed_worker_is_replaced_and_its_job_runs_again() -> None:
    calls: Counter[str] = Counter()
    first_call_started = asyncio.Event()
    block_first_call = asyncio.Event()

    async def run(job_id: str) -> None:
        calls[job_id] += 1
        if calls[job_id] == 1:
            first_call_started.set()
            await block_first_call.wait()  # never set: this call is killed

    queue = JobQueue(run, concurrency=1)
    queue.start()
    event = queue.watch("job")
    queue.submit("job")
    await first_call_started.wait()
    worker = queue.worker_of("job")
    assert worker is not None
    worker.cancel()
    assert await queue.wait(event, within=5)
    assert calls["job"] == 2
    assert queue.worker_of("job") is None
    await queue.stop()


@pytest.mark.anyio
async def test_a_job_that_raises_does_not_take_its_worker_down() -> None:
    seen: list[str] = []

    async def run(job_id: str) -> None:
        seen.append(job_id)
        if job_id == "bad":
            raise RuntimeError("boom")

    queue = JobQueue(run, concurrency=1)
    queue.start()
    bad, good = queue.watch("bad"), queue.watch("good")
    queue.submit("bad")
    queue.submit("good")
    assert await queue.wait(bad, within=5) and await queue.wait(good, within=5)
    assert seen == ["bad", "good"]
    await queue.stop()


@pytest.mark.anyio
async def test_storing_results_does_not_hold_the_worker_slot() -> None:
    """With one slot, job B's upstream step starts while job A is still storing its results."""
    store_a = asyncio.Event()
    started: list[str] = []

    async def tail_of_a() -> None:
        await store_a.wait()

    async def run(job_id: str):  # type: ignore[no-untyped-def]
        started.append(job_id)
        return tail_of_a() if job_id == "a" else None

    queue = JobQueue(run, concurrency=1)
    queue.start()
    done_a, done_b = queue.watch("a"), queue.watch("b")
    queue.submit("a")
    queue.submit("b")
    assert await queue.wait(done_b, within=5)
    assert started == ["a", "b"]
    assert not done_a.is_set()  # A is only finished when its tail is
    store_a.set()
    assert await queue.wait(done_a, within=5)
    await queue.stop()


@pytest.mark.anyio
async def test_a_killed_storing_step_requeues_its_job() -> None:
    calls: Counter[str] = Counter()
    storing = asyncio.Event()
    never = asyncio.Event()

    async def slow_tail() -> None:
        storing.set()
        await never.wait()

    async def run(job_id: str):  # type: ignore[no-untyped-def]
        calls[job_id] += 1
        return slow_tail() if calls[job_id] == 1 else None

    queue = JobQueue(run, concurrency=1)
    queue.start()
    event = queue.watch("job")
    queue.submit("job")
    await storing.wait()
    (tail,) = [t for t in asyncio.all_tasks() if t.get_name() == "storyloom-finish-job"]
    tail.cancel()
    assert await queue.wait(event, within=5)
    assert calls["job"] == 2
    await queue.stop()
