"""Generation metrics: upstream calls timed, errors counted by kind, jobs by state, retries logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.fake_openai import FakeOpenAI

TOKEN = "metrics-token"
MODEL = "gpt-image-2.5-flare"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_upstream_calls_jobs_and_retries_are_counted(
    data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = fake_upstream
    fake.reset()
    settings = make_settings(
        data_dir,
        image_backend="openai",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=f"{url}/v1",
        openai_max_retries=1,
        metrics_token=TOKEN,
    )
    caplog.set_level(logging.INFO, logger="storyloom.openai")
    app = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {new_key(app)}"}
        before = scrape(client)
        assert sample(before, "storyloom_jobs", state="succeeded") == 0

        fake.fail("server_error", times=1)  # one SDK retry, then success
        assert client.post("/generate-image", headers=auth, json={"prompt": "a"}).status_code == 200
        fake.fail("server_error", times=2)  # both attempts fail: a 503 after one retry
        assert client.post("/generate-image", headers=auth, json={"prompt": "b"}).status_code == 503
        fake.fail("unauthorized")
        assert client.post("/generate-image", headers=auth, json={"prompt": "c"}).status_code == 502

        samples = scrape(client)
    generate = {"model": MODEL, "endpoint": "generate"}
    assert sample(samples, "storyloom_upstream_request_duration_seconds_count", **generate) == 3
    errors = "storyloom_upstream_errors_total"
    assert sample(samples, errors, **generate, kind="upstream_unavailable") == 1
    assert sample(samples, errors, **generate, kind="upstream_auth") == 1
    assert sample(samples, errors, **generate, kind="ok") == 0
    jobs = {
        s: sample(samples, "storyloom_jobs", state=s) for s in ("queued", "running", "succeeded", "failed")
    }
    assert jobs == {"queued": 0, "running": 0, "succeeded": 1, "failed": 2}
    assert sample(samples, "storyloom_queue_depth") == 0
    assert len(fake.requests) == 5

    lines = [r.getMessage() for r in caplog.records if r.name == "storyloom.openai"]
    assert [line.rsplit(" ", 2)[1:] for line in lines] == [
        ["outcome=ok", "retries=1"],
        ["outcome=upstream_unavailable", "retries=1"],
        ["outcome=upstream_auth", "retries=0"],
    ]
