"""One contract for both job engines (generation/queue.py): the in-process pool on SQLite and
procrastinate on PostgreSQL, through the real app, the real SDK and the fake upstream."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from generation import service
from generation.models import Generation, JobStatus
from generation.pool import LocalQueue
from generation.procrastinate_queue import ProcrastinateQueue
from library.models import Image
from services.runtime import Runtime
from tests.fake_openai import FakeOpenAI

DEADLINE = 20.0


def until(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll `check` until it answers something truthy; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def accept(client: TestClient, auth: dict[str, str], prompt: str = "A fox in the snow") -> str:
    response = client.post("/generate-image", headers=auth, json={"prompt": prompt, "wait": False})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def status_of(client: TestClient, auth: dict[str, str], job_id: str) -> str:
    return client.get(f"/generations/{job_id}", headers=auth).json()["status"]


def images_of(runtime: Runtime, job_id: str) -> list[Image]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Image).where(col(Image.generation_id) == job_id)).all())


def test_a_job_runs_once_even_when_submitted_again(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime, engine_kind: str
) -> None:
    answer = client.post("/generate-image", headers=auth, json={"prompt": "A fox"})
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["status"] == "succeeded" and len(job["images"]) == 1
    # A second hand-over of the finished job (a reconciler race, a duplicate defer) runs nothing.
    client.portal.call(runtime.jobs.submit, job["id"])  # type: ignore[union-attr]
    second = accept(client, auth, "A hare")
    until(lambda: status_of(client, auth, second) == "succeeded", "the next job")
    assert [r.fields["prompt"] for r in fake.requests].count(fake.requests[0].fields["prompt"]) == 1
    assert len(fake.requests) == 2
    assert runtime.jobs.kind == engine_kind
    assert len(images_of(runtime, job["id"])) == 1


def test_wait_sees_a_job_finish_and_reports_one_that_does_not(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime
) -> None:
    fake.hold()
    job_id = accept(client, auth)
    fake.wait_for_requests(1)
    assert client.portal.call(service.wait_for, runtime, job_id, 0.3) is False  # type: ignore[union-attr]
    fake.release()
    assert client.portal.call(service.wait_for, runtime, job_id, DEADLINE) is True  # type: ignore[union-attr]
    assert status_of(client, auth, job_id) == "succeeded"


def test_cancel_a_queued_job_it_never_calls_upstream_and_is_not_charged(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime
) -> None:
    fake.hold()
    first = accept(client, auth, "first scene")
    fake.wait_for_requests(1)  # GENERATION_CONCURRENCY=1: the second waits behind the first
    second = accept(client, auth, "second scene")
    assert status_of(client, auth, second) == "queued"
    cancelled = client.post(f"/generations/{second}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    fake.release()
    until(lambda: status_of(client, auth, first) == "succeeded", "the first job")
    third = accept(client, auth, "third scene")  # runs after the cancelled one would have
    until(lambda: status_of(client, auth, third) == "succeeded", "the third job")
    assert [r.fields["prompt"] for r in fake.requests if "second scene" in r.fields["prompt"]] == []
    assert status_of(client, auth, second) == "cancelled"
    usage = client.get("/usage", headers=auth).json()
    assert usage["total"]["generations"] == 2


def test_cancel_a_running_job_keeps_none_of_its_outputs(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime
) -> None:
    fake.hold()
    job_id = accept(client, auth)
    fake.wait_for_requests(1)
    assert status_of(client, auth, job_id) == "running"
    cancelled = client.post(f"/generations/{job_id}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The engine stops the run while the upstream answer is still held: the work is given up,
    # not merely thrown away when it ends.
    until(lambda: engine_run_ended(client, runtime, job_id), "the engine to stop the run")
    fake.release()
    after = accept(client, auth, "after the cancel")
    until(lambda: status_of(client, auth, after) == "succeeded", "the next job")
    assert status_of(client, auth, job_id) == "cancelled"
    assert images_of(runtime, job_id) == []
    listed = client.get("/generations", headers=auth, params={"status": "cancelled"}).json()
    assert [item["id"] for item in listed["items"]] == [job_id]


def engine_run_ended(client: TestClient, runtime: Runtime, job_id: str) -> bool:
    """The pool runs no task for the job; procrastinate's job for it is aborted."""
    queue = runtime.jobs
    if isinstance(queue, LocalQueue):
        return queue.pool.worker_of(job_id) is None and queue.pool.running == 0
    assert isinstance(queue, ProcrastinateQueue)
    found = client.portal.call(lambda: queue.app.job_manager.list_jobs_async(lock=job_id))  # type: ignore[union-attr]
    return [job.status for job in found] == ["aborted"]


def test_cancel_of_a_finished_job_is_409_naming_its_status_and_unknown_ids_are_404(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str], fake: FakeOpenAI
) -> None:
    done = client.post("/generate-image", headers=auth, json={"prompt": "A fox"}).json()
    again = client.post(f"/generations/{done['id']}/cancel", headers=auth)
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "generation_finished" and error["field"] == "id"
    assert "succeeded" in error["message"]
    assert client.post(f"/generations/{done['id']}/cancel", headers=other_auth).status_code == 404
    missing = client.post("/generations/gen_000000000000000000000000/cancel", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "id"
    assert status_of(client, auth, done["id"]) == "succeeded"


def test_a_job_row_the_engine_never_got_is_run(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime, engine_kind: str
) -> None:
    """A crash between the row's commit and the hand-over: the engine's recovery runs the job.

    The pool recovers at the next start (it is the only runner); procrastinate's workers
    reconcile at start and every half JOB_STALL_SECONDS.
    """
    caller = _caller(client, runtime, auth)
    from generation.schemas import GenerateRequest

    body = GenerateRequest.model_validate({"prompt": "A fox that nobody queued", "wait": False})
    job, created = client.portal.call(  # type: ignore[union-attr]
        _accept_only, runtime, caller, body
    )
    assert created and job.status == JobStatus.queued
    if engine_kind == "local":
        client.portal.call(runtime.stop)  # type: ignore[union-attr]
        client.portal.call(runtime.start)  # type: ignore[union-attr]
    until(lambda: status_of(client, auth, job.id) == "succeeded", "the orphaned row to run")
    assert len(fake.requests) == 1 and len(images_of(runtime, job.id)) == 1


async def _accept_only(runtime: Runtime, caller: Any, body: Any) -> tuple[Generation, bool]:
    from anyio import to_thread

    return await to_thread.run_sync(service._accept, runtime, caller, body, None)  # type: ignore[return-value]


def _caller(client: TestClient, runtime: Runtime, auth: dict[str, str]) -> Any:
    from accounts.service import authenticate

    token = auth["Authorization"].removeprefix("Bearer ")
    with Session(runtime.engine) as session:
        return authenticate(session, token)


def test_metrics_show_the_queue_depth_and_job_latencies(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime
) -> None:
    fake.hold()
    running = accept(client, auth, "first scene")
    fake.wait_for_requests(1)
    waiting = accept(client, auth, "second scene")  # GENERATION_CONCURRENCY=1: it waits
    text = until(
        lambda: (t := runtime.metrics.render().decode()) and "storyloom_queue_depth 1.0" in t and t,
        "a queue depth of 1",
    )
    assert 'storyloom_jobs{state="queued"} 1.0' in text
    fake.release()
    for job_id in (running, waiting):
        until(lambda job_id=job_id: status_of(client, auth, job_id) == "succeeded", "the jobs")
    # Observed right after each job's commit: poll, the status may show a moment earlier.
    text = until(
        lambda: (t := runtime.metrics.render().decode()) and "storyloom_job_run_seconds_count 2.0" in t and t,
        "two job durations",
    )
    assert "storyloom_job_queued_seconds_count 2.0" in text
    assert "storyloom_queue_depth 0.0" in text
    health = client.get("/health").json()["queue"]
    assert health["depth"] == 0 and health["workers"] == 1 and health["kind"] == runtime.jobs.kind


def test_postgresql_notifies_every_process_when_a_job_ends(
    client: TestClient, auth: dict[str, str], fake: FakeOpenAI, runtime: Runtime, engine_kind: str
) -> None:
    """Migration 0010's trigger NOTIFYs at commit: a listener of its own (as in any other API
    process) hears each finished job once, succeeded or cancelled, and nothing for a start."""
    if engine_kind == "local":
        pytest.skip("the pool wakes its waiters in-process (tests/services/test_job_queue.py)")
    from sqlalchemy import text

    from generation.procrastinate_queue import libpq_url
    from storage.job_engine import FINISHED_CHANNEL, listen_for_finished

    def listening() -> int:
        with runtime.engine.connect() as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN ' || :channel"
            return int(conn.execute(text(query), {"channel": FINISHED_CHANNEL}).scalar_one())

    before = until(listening, "the app's own listener")
    heard: list[str] = []
    listener = client.portal.start_task_soon(  # type: ignore[union-attr]
        lambda: listen_for_finished(libpq_url(runtime.engine), heard.append)
    )
    try:
        until(lambda: listening() == before + 1, "the test's listener to LISTEN")
        done = client.post("/generate-image", headers=auth, json={"prompt": "A fox"}).json()
        fake.hold()
        held = accept(client, auth, "held scene")
        fake.wait_for_requests(2)
        client.post(f"/generations/{held}/cancel", headers=auth)
        until(lambda: heard == [done["id"], held], "both notifications")
    finally:
        listener.cancel()
