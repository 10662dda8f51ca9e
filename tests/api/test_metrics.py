"""`GET /metrics`: Prometheus text that parses and counts what happened, behind an operator token."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api_server import create_app
from config import Settings
from services.metrics import JobCounts
from tests.conftest import make_settings

TOKEN = "operator-token-123"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, metrics_token=TOKEN)


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_and_status(client: TestClient, auth: dict[str, str]) -> None:
    for _ in range(3):
        client.get("/characters", headers=auth)
    client.get("/characters/999", headers=auth)
    client.get("/characters/998", headers=auth)
    client.get("/characters")
    client.get("/nowhere/at/all")

    samples = scrape(client)
    total = "storyloom_http_requests_total"
    assert sample(samples, total, method="GET", route="/characters", status="200") == 3
    assert sample(samples, total, method="GET", route="/characters", status="401") == 1
    assert sample(samples, total, method="GET", route="/characters/{character_id}", status="404") == 2
    assert sample(samples, total, method="GET", route="unmatched", status="404") == 1
    latency = "storyloom_http_request_duration_seconds_count"
    assert sample(samples, latency, method="GET", route="/characters") == 4
    assert sample(samples, latency, method="GET", route="/characters/{character_id}") == 2


def test_upstream_latency_and_errors_by_kind(app: FastAPI, client: TestClient) -> None:
    metrics = app.state.runtime.metrics
    metrics.observe_upstream("gpt-image-2.5-flare", "edit", 42.0, "ok")
    metrics.observe_upstream("gpt-image-2.5-flare", "edit", 300.0, "timeout")
    metrics.observe_upstream("gpt-image-2.5-flare", "generate", 1.5, "moderation_blocked")

    samples = scrape(client)
    edit = {"model": "gpt-image-2.5-flare", "endpoint": "edit"}
    assert sample(samples, "storyloom_upstream_request_duration_seconds_count", **edit) == 2
    assert sample(samples, "storyloom_upstream_request_duration_seconds_sum", **edit) == 342.0
    assert sample(samples, "storyloom_upstream_request_duration_seconds_bucket", **edit, le="60.0") == 1
    errors = "storyloom_upstream_errors_total"
    assert sample(samples, errors, **edit, kind="timeout") == 1
    assert sample(samples, errors, **edit, kind="ok") == 0
    generate = {"model": "gpt-image-2.5-flare", "endpoint": "generate"}
    assert sample(samples, errors, **generate, kind="moderation_blocked") == 1


def test_jobs_by_state_and_queue_depth_come_from_the_job_source(app: FastAPI, client: TestClient) -> None:
    before = scrape(client)  # the app's own source (lifecycle.py): a fresh library has no jobs
    assert sample(before, "storyloom_jobs", state="queued") == 0
    assert sample(before, "storyloom_queue_depth") == 0
    app.state.runtime.metrics.set_job_source(
        lambda: JobCounts({"queued": 4, "running": 2, "failed": 1}, queue_depth=4)
    )

    samples = scrape(client)
    jobs = {
        state: sample(samples, "storyloom_jobs", state=state)
        for state in ("queued", "running", "succeeded", "failed")
    }
    assert jobs == {"queued": 4, "running": 2, "succeeded": 0, "failed": 1}
    assert sample(samples, "storyloom_queue_depth") == 4


def test_a_failing_job_source_does_not_break_the_scrape(
    app: FastAPI, client: TestClient, auth: dict[str, str]
) -> None:
    def broken() -> JobCounts:
        raise RuntimeError("database is locked")

    app.state.runtime.metrics.set_job_source(broken)
    client.get("/characters", headers=auth)
    samples = scrape(client)
    assert (
        sample(samples, "storyloom_http_requests_total", method="GET", route="/characters", status="200") == 1
    )
    assert not any(name == "storyloom_jobs" for name, _ in samples)


def test_each_app_counts_only_its_own_requests(
    client: TestClient, auth: dict[str, str], tmp_path: Path
) -> None:
    client.get("/characters", headers=auth)
    other = create_app(make_settings(tmp_path / "other", metrics_token=TOKEN))
    with TestClient(other) as other_client:
        samples = scrape(other_client)
    assert (
        sample(samples, "storyloom_http_requests_total", method="GET", route="/characters", status="200") == 0
    )


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_metrics_need_the_operator_token(client: TestClient, header: str | None) -> None:
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "storyloom_" not in response.text


def test_an_api_key_is_not_a_metrics_token(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/metrics", headers=auth).status_code == 401


def test_metrics_are_off_when_no_token_is_set(data_dir: Path) -> None:
    with TestClient(create_app(make_settings(data_dir))) as client:
        response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found", "field": None}}
