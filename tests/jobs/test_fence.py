"""The completion fence (generation/runner.py): a run stores its outputs only while it still holds
its job, on SQLite and on PostgreSQL (tests/jobs/conftest.py's `engine_kind`). A run overtaken
by another claim (its worker stalled and the job went elsewhere) or whose job was cancelled
keeps nothing: no image row, no file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from anyio import to_thread
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from accounts.service import authenticate
from config import Settings
from generation import jobs, service
from generation.models import Generation, JobStatus
from generation.runner import Claimed, JobRunner
from generation.schemas import GenerateRequest
from library.models import Image
from services.runtime import Runtime
from storage.db import write_session
from tests.fake_openai import FakeOpenAI
from tests.jobs.conftest import engine_settings


@pytest.fixture
def settings(data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], database_url: str | None) -> Settings:
    """No worker in the app: on PostgreSQL its reconciler would run the test's job behind its back."""
    return engine_settings(data_dir, fake_upstream[1], database_url, api_runs_jobs=False)


def runner_of(rt: Runtime) -> JobRunner:
    """A runner on the runtime's parts, with no queue: the test drives each step itself."""
    return JobRunner(rt.engine, rt.settings, rt.store, rt.backend, rt.similarity, rt.prices, rt.decode_gate)


def claimed_job(client: TestClient, rt: Runtime, auth: dict[str, str], runner: JobRunner) -> Claimed:
    """A job accepted but never handed to the engine, then claimed by `runner` (attempt 1)."""
    with Session(rt.engine) as session:
        caller = authenticate(session, auth["Authorization"].removeprefix("Bearer "))
    body = GenerateRequest.model_validate({"prompt": "A fox on a fence", "wait": False})

    async def accept_and_claim() -> Claimed:
        job, created = await to_thread.run_sync(service._accept, rt, caller, body, None)
        assert created
        claimed = await to_thread.run_sync(runner._claim, job.id)  # type: ignore[union-attr]
        assert claimed is not None
        return claimed

    return client.portal.call(accept_and_claim)  # type: ignore[union-attr]


def finish(client: TestClient, runner: JobRunner, claimed: Claimed) -> None:
    async def run() -> None:
        result = await runner.backend.generate(claimed.request)
        await runner._finish(claimed, result)

    client.portal.call(run)  # type: ignore[union-attr]


def outputs(rt: Runtime, job_id: str) -> list[Image]:
    with Session(rt.engine) as session:
        return list(session.exec(select(Image).where(col(Image.generation_id) == job_id)).all())


def files(rt: Runtime) -> list[Path]:
    return [p for p in rt.settings.images_dir.rglob("*") if p.is_file()]


def claimed_again(rt: Runtime, job_id: str) -> None:
    """What another worker's claim does after a stall: the attempt count moves on."""
    with write_session(rt.engine) as session:
        job = jobs.locked(session, job_id)
        assert job is not None
        job.attempts += 1
        session.add(job)


def cancelled(rt: Runtime, job_id: str) -> None:
    with write_session(rt.engine) as session:
        job = jobs.locked(session, job_id)
        assert job is not None
        jobs.mark_cancelled(job)
        session.add(job)


@pytest.mark.parametrize("overtake", [claimed_again, cancelled], ids=["claimed-again", "cancelled"])
def test_a_run_that_no_longer_holds_its_job_stores_nothing(
    client: TestClient, app: FastAPI, auth: dict[str, str], overtake: Callable[[Runtime, str], None]
) -> None:
    rt: Runtime = app.state.runtime
    runner = runner_of(rt)
    claimed = claimed_job(client, rt, auth, runner)
    assert claimed.attempt == 1
    overtake(rt, claimed.job_id)
    finish(client, runner, claimed)
    assert outputs(rt, claimed.job_id) == []
    assert files(rt) == []
    with Session(rt.engine) as session:
        job = session.get(Generation, claimed.job_id)
        assert job is not None and job.status != JobStatus.succeeded and job.image_numbers == []


def test_the_run_that_holds_its_job_stores_its_outputs_once(
    client: TestClient, app: FastAPI, auth: dict[str, str]
) -> None:
    rt: Runtime = app.state.runtime
    runner = runner_of(rt)
    claimed = claimed_job(client, rt, auth, runner)
    finish(client, runner, claimed)
    finish(client, runner, claimed)  # a duplicate completion of the same run: fenced out
    stored = outputs(rt, claimed.job_id)
    assert len(stored) == 1
    with Session(rt.engine) as session:
        job = session.get(Generation, claimed.job_id)
        assert job is not None and job.status == JobStatus.succeeded
        assert job.image_numbers == [stored[0].number]
