"""Generation jobs over two API processes and two workers on one PostgreSQL (issue 13).

Real processes, started with `make cluster`'s command lines: API processes that run no jobs
(`API_RUNS_JOBS=false`) and `manage.py worker` processes on procrastinate, all talking to the
fake OpenAI (tests/fake_openai.py) served by this test process on 127.0.0.1. What must hold:
every accepted job calls upstream exactly once, whichever process accepted or ran it, also
when another API process starts mid-run; numbers are unique; a daily quota is exact.
(A worker killed with -9 mid-job is the jobs part's own test.)
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import Proc, base_settings, make_key, needs_worker, prepare_database
from tests.conftest import postgres_database
from tests.fake_openai import FakeOpenAI
from tests.servers import serve

pytestmark = [pytest.mark.multiprocess, needs_worker]

SCENES = 30
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI(latency=0.2)
    fake.distinct_outputs = True  # every call's picture has its own bytes: no duplicate numbers
    with serve(fake.app) as url:
        yield fake, f"{url}/v1"
    fake.release()


def scaled_settings(tmp_path: Path, database_url: str, upstream_url: str, **extra: str) -> dict[str, str]:
    return base_settings(
        tmp_path / "data",
        database_url,
        IMAGE_BACKEND="openai",
        OPENAI_API_KEY="sk-fake-multiprocess",
        OPENAI_BASE_URL=upstream_url,
        JOB_QUEUE="procrastinate",
        API_RUNS_JOBS="false",
        MIGRATE_ON_START="false",
        RATE_LIMIT_PER_MINUTE="0",
        GENERATIONS_PER_MINUTE="0",
        MAX_ACTIVE_JOBS_PER_WORKSPACE="0",
        **extra,
    )


def start_topology(
    processes: tuple[Callable[..., Proc], Callable[..., Proc]], settings: dict[str, str]
) -> tuple[list[Proc], list[Proc]]:
    start_api, start_worker = processes
    apis = [start_api(settings, wait=False) for _ in range(2)]
    workers = [start_worker(settings, concurrency=4) for _ in range(2)]
    for api in apis:
        api.wait_healthy()
    return apis, workers


def scene(i: int) -> str:
    return f"scene-{i:02d}: a fox in the snow"


def submit(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post("/generate-image", json={"prompt": prompt, "wait": False})


def wait_all_finished(
    client: httpx.Client, ids: list[str], workers: list[Proc], timeout: float = 120
) -> dict[str, dict]:
    """Poll every job's row until each is finished; fail early, with the logs, if a worker died."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    rows: dict[str, dict] = {}  # type: ignore[type-arg]
    while pending:
        for job_id in sorted(pending):
            row = client.get(f"/generations/{job_id}").json()
            if row["status"] in FINISHED:
                rows[job_id] = row
                pending.discard(job_id)
        dead = [w for w in workers if w.process.poll() is not None]
        assert not dead, dead[0].log_text()[-3000:]
        assert time.monotonic() < deadline, f"{len(pending)} job(s) still not finished"
        if pending:
            time.sleep(0.2)
    return rows


def test_thirty_scenes_over_two_apis_run_once_each_even_when_a_third_api_starts_mid_run(
    tmp_path: Path,
    postgres: object,
    upstream: tuple[FakeOpenAI, str],
    processes: tuple[Callable[..., Proc], Callable[..., Proc]],
) -> None:
    fake, upstream_url = upstream
    database_url = postgres_database(postgres)  # type: ignore[arg-type]
    prepare_database(tmp_path / "data", database_url)
    settings = scaled_settings(tmp_path, database_url, upstream_url)
    apis, workers = start_topology(processes, settings)
    key = make_key(database_url, tmp_path / "data")
    clients = [api.client(key) for api in apis]
    try:
        fake.hold()  # jobs stay running (held upstream) while the third API process starts
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: submit(clients[i % 2], scene(i)), range(SCENES)))
        assert [a.status_code for a in answers] == [202] * SCENES, answers[0].text
        ids = [a.json()["id"] for a in answers]
        fake.wait_for_requests(2, timeout=60)  # workers hold jobs now

        third = processes[0](settings)
        clients.append(third.client(key))
        fake.release()
        rows = wait_all_finished(clients[2], ids, workers)
        listing = clients[0].get("/images", params={"limit": 100}).json()
    finally:
        fake.release()
        for client in clients:
            client.close()

    assert {row["status"] for row in rows.values()} == {"succeeded"}
    assert all(row["attempts"] == 1 for row in rows.values())
    prompts = [str(r.fields.get("prompt", "")) for r in fake.requests]
    assert len(prompts) == SCENES, f"{len(prompts)} upstream calls for {SCENES} jobs"
    for i in range(SCENES):  # each scene reached upstream exactly once
        assert sum(f"scene-{i:02d}:" in prompt for prompt in prompts) == 1, i
    numbers = [image["number"] for row in rows.values() for image in row["images"]]
    assert len(numbers) == SCENES and len(set(numbers)) == SCENES
    assert sorted(numbers) == list(range(SCENES))
    assert listing["total"] == SCENES


def test_a_daily_quota_of_ten_holds_exactly_for_thirty_concurrent_scenes_over_two_apis(
    tmp_path: Path,
    postgres: object,
    upstream: tuple[FakeOpenAI, str],
    processes: tuple[Callable[..., Proc], Callable[..., Proc]],
) -> None:
    fake, upstream_url = upstream
    database_url = postgres_database(postgres)  # type: ignore[arg-type]
    prepare_database(tmp_path / "data", database_url)
    settings = scaled_settings(tmp_path, database_url, upstream_url, DAILY_IMAGE_QUOTA="10")
    apis, workers = start_topology(processes, settings)
    key = make_key(database_url, tmp_path / "data")
    clients = [api.client(key) for api in apis]
    try:
        with concurrent.futures.ThreadPoolExecutor(SCENES) as pool:
            answers = list(pool.map(lambda i: submit(clients[i % 2], scene(i)), range(SCENES)))
        accepted = [a.json()["id"] for a in answers if a.status_code == 202]
        refused = [a.json()["error"]["code"] for a in answers if a.status_code == 429]
        rows = wait_all_finished(clients[0], accepted, workers)
        usage_after = clients[1].post("/generate-image", json={"prompt": "one more", "wait": False})
    finally:
        for client in clients:
            client.close()
    assert len(accepted) == 10 and refused == ["quota_exceeded"] * 20
    assert {row["status"] for row in rows.values()} == {"succeeded"}
    assert len(fake.requests) == 10
    assert usage_after.status_code == 429
