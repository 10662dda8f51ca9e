"""Job-engine tests: every contract test runs on the in-process pool (SQLite) and on procrastinate
(PostgreSQL, the test app running a worker itself: API_RUNS_JOBS=true)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config import Settings
from services.runtime import Runtime
from tests.conftest import make_settings, postgres_database
from tests.fake_openai import FakeOpenAI

ENGINES = ["local", "procrastinate"]


def engine_settings(
    data_dir: Path, upstream_url: str, database_url: str | None, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "image_backend": "openai",
        "openai_api_key": "sk-test-secret",
        "openai_base_url": f"{upstream_url}/v1",
        "openai_max_retries": 0,
        "openai_timeout_seconds": 30,
        "rate_limit_per_minute": 0,
        "generations_per_minute": 0,
        "max_active_jobs_per_workspace": 0,
        "generation_concurrency": 1,
        "sync_wait_seconds": 20,
    }
    if database_url is not None:
        values.update(database_url=database_url, api_runs_jobs=True, job_stall_seconds=2)
    values.update(overrides)
    return make_settings(data_dir, **values)


@pytest.fixture(params=ENGINES)
def engine_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(request: pytest.FixtureRequest, engine_kind: str) -> str | None:
    if engine_kind == "local":
        return None
    return postgres_database(request.getfixturevalue("postgres"))


@pytest.fixture
def settings(data_dir: Path, fake_upstream: tuple[FakeOpenAI, str], database_url: str | None) -> Settings:
    return engine_settings(data_dir, fake_upstream[1], database_url)


@pytest.fixture
def runtime(app: FastAPI, client: TestClient) -> Iterator[Runtime]:
    """The started app's runtime (the client fixture starts it)."""
    yield app.state.runtime
