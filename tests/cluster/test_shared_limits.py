"""Rate limits hold exactly across real API processes that share one redis-server (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.conftest import Proc, base_settings, make_key, prepare_database

pytestmark = pytest.mark.multiprocess


def test_thirty_requests_round_robin_over_two_processes_admit_exactly_ten(
    tmp_path: Path, redis_url: str, processes: tuple[Callable[..., Proc], Callable[..., Proc]]
) -> None:
    start_api, _ = processes
    data_dir = tmp_path / "data"
    prepare_database(data_dir, None)
    settings = base_settings(data_dir, None, RATE_LIMIT_STORAGE=redis_url, RATE_LIMIT_PER_MINUTE="10")
    apis = [start_api(settings), start_api(settings)]
    key = make_key(None, data_dir)
    clients = [api.client(key) for api in apis]
    try:
        answers = [clients[i % 2].get("/characters") for i in range(30)]
        health = [client.get("/health").json()["limiter"] for client in clients]
    finally:
        for client in clients:
            client.close()
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    assert statuses == [200] * 10 + [429] * 20  # in order: the budget is one, not one per process
    # Each process counted down the same budget: remaining 9, 8, … 0 across both.
    assert [int(a.headers["RateLimit-Remaining"]) for a in answers[:10]] == list(range(9, -1, -1))
    assert health == ["redis", "redis"]


def test_without_redis_each_process_has_its_own_budget(
    tmp_path: Path, processes: tuple[Callable[..., Proc], Callable[..., Proc]]
) -> None:
    """The control: the same traffic on memory:// admits 10 per process, which is why Redis is needed."""
    start_api, _ = processes
    data_dir = tmp_path / "data"
    prepare_database(data_dir, None)
    settings = base_settings(data_dir, None, RATE_LIMIT_PER_MINUTE="10")
    apis = [start_api(settings), start_api(settings)]
    key = make_key(None, data_dir)
    clients = [api.client(key) for api in apis]
    try:
        statuses = [clients[i % 2].get("/characters").status_code for i in range(30)]
    finally:
        for client in clients:
            client.close()
    assert statuses.count(200) == 20
