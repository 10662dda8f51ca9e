"""Real `manage.py worker` processes on PostgreSQL: the API runs no jobs, two workers do; one is
killed with SIGKILL while it holds jobs, and every job still ends `succeeded` exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from api_server import create_app
from cluster.postgres import PostgresCluster
from generation.models import Generation
from library.models import Image
from tests.conftest import ROOT, new_key, postgres_database
from tests.fake_openai import FakeOpenAI
from tests.jobs.conftest import engine_settings
from tests.jobs.test_queue_contract import until

STALL_SECONDS = 2
JOBS = 6
PER_WORKER = 3


@pytest.fixture
def pg_url(postgres: PostgresCluster) -> str:
    return postgres_database(postgres)


def worker_env(data_dir: Path, database_url: str, upstream_url: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",  # the API's (tests/conftest.py make_settings)
        "IMAGE_BACKEND": "openai",
        "OPENAI_API_KEY": "sk-test-secret",
        "OPENAI_BASE_URL": f"{upstream_url}/v1",
        "OPENAI_MAX_RETRIES": "0",
        "JOB_STALL_SECONDS": str(STALL_SECONDS),
        "LOG_FORMAT": "text",
    }


class Workers:
    """Worker subprocesses, each matched to its procrastinate worker id as it registers."""

    def __init__(self, engine: Engine, env: dict[str, str], logs: Path) -> None:
        self.engine, self.env, self.logs = engine, env, logs
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def registered(self) -> set[int]:
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(text("SELECT id FROM procrastinate_workers"))}

    def start(self) -> int:
        """Start one worker and wait until its row appears: the id is the new one."""
        before = self.registered()
        log = (self.logs / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "worker", "--concurrency", str(PER_WORKER)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.logs,
        )
        new = until(lambda: self.registered() - before, "the worker to register", deadline=60)
        assert len(new) == 1
        worker_id = new.pop()
        self.processes[worker_id] = process
        return worker_id

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path, pg_url: str, fake_upstream: tuple[FakeOpenAI, str]) -> Iterator[Workers]:
    from storage.db import make_engine

    engine = make_engine(pg_url)
    group = Workers(engine, worker_env(tmp_path / "data", pg_url, fake_upstream[1]), tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
        engine.dispose()


def doing_by_worker(engine: Engine) -> dict[int, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT worker_id, lock FROM procrastinate_jobs WHERE status = 'doing'"))
        held: dict[int, set[str]] = {}
        for worker_id, lock in rows:
            held.setdefault(worker_id, set()).add(lock)
        return held


def test_a_killed_worker_s_jobs_are_taken_over_and_stored_exactly_once(
    tmp_path: Path, pg_url: str, fake: FakeOpenAI, fake_upstream: tuple[FakeOpenAI, str], workers: Workers
) -> None:
    settings = engine_settings(tmp_path / "data", fake_upstream[1], pg_url, api_runs_jobs=False)
    app = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        first, second = workers.start(), workers.start()
        health = client.get("/health").json()["queue"]
        assert health == {"kind": "procrastinate", "depth": 0, "workers": 2}

        # The API process runs no jobs, yet `wait: true` sees the worker's result.
        done = client.post("/generate-image", headers=auth, json={"prompt": "a warm-up scene"})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "succeeded" and len(done.json()["images"]) == 1

        fake.distinct_outputs = True  # every call draws new bytes: a second copy would be visible
        fake.hold()
        ids = []
        for i in range(JOBS):
            answer = client.post(
                "/generate-image", headers=auth, json={"prompt": f"scene number {i}", "wait": False}
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        held = until(
            lambda: (h := doing_by_worker(workers.engine)) and sum(map(len, h.values())) == JOBS and h,
            "both workers to hold their jobs",
        )
        fake.wait_for_requests(1 + JOBS)
        assert set(held) == {first, second}
        victim = first
        victims = held[victim]
        assert len(victims) == PER_WORKER
        os.kill(workers.processes[victim].pid, signal.SIGKILL)
        workers.processes[victim].wait(timeout=10)
        fake.release()

        def all_succeeded() -> bool:
            with Session(app.state.runtime.engine) as session:
                rows = session.exec(select(Generation).where(col(Generation.id).in_(ids))).all()
                return all(job.status == "succeeded" for job in rows)

        until(all_succeeded, "every job to succeed after the takeover", deadline=60)

        with Session(app.state.runtime.engine) as session:
            rows = session.exec(select(Generation).where(col(Generation.id).in_(ids))).all()
            jobs = {job.id: job for job in rows}
            images = session.exec(select(Image).where(col(Image.generation_id).in_(ids))).all()
        for job_id, job in jobs.items():
            assert len(job.image_numbers) == 1, job_id
            assert job.attempts == (2 if job_id in victims else 1), job_id
        # Each job's pictures stored once: no image row for these jobs beyond their own outputs.
        recorded = sorted(n for job in jobs.values() for n in job.image_numbers)
        assert sorted(image.number for image in images) == recorded
        assert len({image.number for image in images}) == JOBS
        prompts = [r.fields["prompt"] for r in fake.requests]
        for i, job_id in enumerate(ids):
            calls = sum(1 for p in prompts if f"scene number {i}" in p)
            assert calls == (2 if job_id in victims else 1), (job_id, calls)
        assert client.get("/health").json()["queue"]["depth"] == 0
