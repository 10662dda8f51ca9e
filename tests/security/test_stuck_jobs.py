"""No job stays stuck (issue 12, defect 2): every failure path ends the job with a clear code,
the sync request answers with that error, and a watchdog ends `running` jobs nobody holds."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from config import Settings
from generation.models import Generation, JobStatus
from storage.db import write_session
from storage.timeutil import utcnow
from tests.conftest import make_settings
from tests.imagegen import png, upload


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(
        data_dir,
        rate_limit_per_minute=0,
        generations_per_minute=0,
        sync_wait_seconds=20,
        job_watchdog_interval_seconds=0.05,
        job_running_deadline_seconds=60,
    )


def test_a_reference_file_missing_on_disk_fails_the_job_at_once(
    client: TestClient, app: FastAPI, auth: dict[str, str], settings: Settings
) -> None:
    upload(client, auth, png(1))
    stored = [p for p in (settings.images_dir / "originals").rglob("*") if p.is_file()]
    assert len(stored) == 1
    stored[0].unlink()  # the file is lost on disk; its row remains
    started = time.monotonic()
    response = client.post(
        "/generate-image", headers=auth, json={"prompt": "Mia in the rain", "reference_images": [0]}
    )
    assert time.monotonic() - started < 15  # answered, not left waiting for SYNC_WAIT_SECONDS
    assert response.status_code != 202, response.text
    assert response.json()["error"]["code"] == "reference_missing"
    jobs = client.get("/generations", headers=auth).json()["items"]
    assert [job["status"] for job in jobs] == ["failed"]
    # Not counted as active: the next scene (without the lost reference) runs.
    assert client.post("/generate-image", headers=auth, json={"prompt": "A fox"}).status_code == 200


def test_the_watchdog_fails_running_jobs_that_no_worker_holds(
    client: TestClient, app: FastAPI, auth: dict[str, str]
) -> None:
    done = client.post("/generate-image", headers=auth, json={"prompt": "A fox"})
    assert done.status_code == 200
    job_id = done.json()["id"]
    # Make it look like a job whose worker vanished an hour ago (the row says running).
    with write_session(app.state.runtime.engine) as session:
        session.execute(
            text(
                "UPDATE generation SET status = 'running', finished_at = NULL, started_at = :t WHERE id = :id"
            ),
            {"t": utcnow() - timedelta(hours=1), "id": job_id},
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with write_session(app.state.runtime.engine) as session:
            job = session.get(Generation, job_id)
            assert job is not None
            if job.status != JobStatus.running:
                break
        time.sleep(0.05)
    assert job.status == JobStatus.failed and job.error_code == "job_stalled"


def test_a_recent_running_job_is_left_alone(client: TestClient, app: FastAPI, auth: dict[str, str]) -> None:
    from generation import jobs

    done = client.post("/generate-image", headers=auth, json={"prompt": "A fox"}).json()
    with write_session(app.state.runtime.engine) as session:
        session.execute(
            text("UPDATE generation SET status = 'running', started_at = :t WHERE id = :id"),
            {"t": utcnow(), "id": done["id"]},
        )
    with write_session(app.state.runtime.engine) as session:
        assert jobs.fail_stalled(session, set(), timedelta(minutes=30)) == []
        assert jobs.fail_stalled(session, {done["id"]}, timedelta(0), utcnow() + timedelta(hours=1)) == []
        assert jobs.fail_stalled(session, set(), timedelta(0), utcnow() + timedelta(hours=1)) == [done["id"]]
