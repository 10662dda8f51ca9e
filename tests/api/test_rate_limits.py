"""Rate limits per API key: hit exactly at the configured number, with headers a client can obey."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from cluster.redis import start_redis
from config import Settings
from errors import TooManyRequests
from services.ratelimit import KeyRateLimiter, LimitStatus
from tests.conftest import make_settings, new_key

LIMIT = 3
LIMITER_STORAGES = ["memory", "redis"]


@pytest.fixture(params=LIMITER_STORAGES)
def rate_limit_storage(request: pytest.FixtureRequest) -> str:
    """Every limiter test runs on the in-process store and on a real redis-server (issue 13)."""
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture
def settings(data_dir: Path, database_url: str | None, rate_limit_storage: str) -> Settings:
    return make_settings(
        data_dir,
        rate_limit_per_minute=LIMIT,
        generations_per_minute=2,
        rate_limit_storage=rate_limit_storage,
        **({"database_url": database_url} if database_url else {}),
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_limit_admits_exactly_the_configured_number_then_answers_429(
    client: TestClient, auth: dict[str, str]
) -> None:
    statuses = [client.get("/characters", headers=auth).status_code for _ in range(LIMIT + 2)]
    assert statuses == [200] * LIMIT + [429, 429]


def test_admitted_requests_carry_ratelimit_headers_that_count_down(
    client: TestClient, auth: dict[str, str]
) -> None:
    remaining = []
    for _ in range(LIMIT):
        response = client.get("/characters", headers=auth)
        assert response.headers["RateLimit-Limit"] == str(LIMIT)
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]


def test_a_refused_request_says_when_to_retry_in_the_error_shape(
    client: TestClient, auth: dict[str, str]
) -> None:
    for _ in range(LIMIT):
        client.get("/characters", headers=auth)
    response = client.post("/characters", json={"name": "Mia", "description": "a girl"}, headers=auth)
    assert response.status_code == 429
    assert response.json() == {
        "error": {
            "code": "rate_limited",
            "message": "rate limit exceeded: 3 requests per minute for this API key; retry in "
            f"{response.headers['Retry-After']} s",
            "field": None,
        }
    }
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["RateLimit-Limit"] == "3"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) <= 60


def test_refused_requests_do_not_create_anything(client: TestClient, make_key: Callable[..., str]) -> None:
    key = make_key("alpha")
    for name in ["A", "B", "C", "D", "E"]:
        client.post("/characters", json={"name": name, "description": "x"}, headers=bearer(key))
    listing = client.get("/characters", headers=bearer(make_key("alpha", "reader"))).json()
    assert sorted(c["name"] for c in listing["items"]) == ["A", "B", "C"]


def test_other_keys_are_unaffected_in_the_same_and_other_workspaces(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    spent, same_workspace, other_workspace = make_key("alpha"), make_key("alpha", "two"), make_key("beta")
    for _ in range(LIMIT):
        client.get("/characters", headers=bearer(spent))
    assert client.get("/characters", headers=bearer(spent)).status_code == 429
    for key in (same_workspace, other_workspace):
        response = client.get("/characters", headers=bearer(key))
        assert response.status_code == 200
        assert response.headers["RateLimit-Remaining"] == str(LIMIT - 1)


def test_unauthenticated_requests_neither_count_nor_carry_headers(
    client: TestClient, auth: dict[str, str]
) -> None:
    for _ in range(LIMIT + 2):
        assert client.get("/characters", headers={"Authorization": "Bearer sl_unknown"}).status_code == 401
    health = client.get("/health")
    assert "RateLimit-Limit" not in health.headers
    assert client.get("/characters", headers=auth).headers["RateLimit-Remaining"] == str(LIMIT - 1)


def test_zero_means_unlimited_and_sends_no_headers(data_dir: Path, rate_limit_storage: str) -> None:
    app = create_app(make_settings(data_dir, rate_limit_per_minute=0, rate_limit_storage=rate_limit_storage))
    with TestClient(app) as client:
        headers = bearer(new_key(app))
        responses = [client.get("/characters", headers=headers) for _ in range(70)]
    assert {r.status_code for r in responses} == {200}
    assert "RateLimit-Limit" not in responses[-1].headers


def test_generation_limit_is_its_own_budget_per_key(rate_limit_storage: str) -> None:
    limiter = KeyRateLimiter({"api": 100, "generations": 2}, rate_limit_storage)
    first, second = limiter.check(7, "generations"), limiter.check(7, "generations")
    assert (first.remaining, second.remaining) == (1, 0)
    with pytest.raises(TooManyRequests) as refused:
        limiter.check(7, "generations")
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limited"
    assert "2 generation requests per minute" in refused.value.message
    assert refused.value.headers["RateLimit-Limit"] == "2"
    assert int(refused.value.headers["Retry-After"]) >= 1
    # The API budget of the same key, and the generation budget of another key, are untouched.
    assert limiter.check(7, "api").remaining == 99
    assert limiter.check(8, "generations").remaining == 1


def test_the_tighter_status_is_the_one_with_fewer_requests_left() -> None:
    api, generations = LimitStatus("api", 60, 40, 50), LimitStatus("generations", 10, 2, 55)
    assert api.tighter(generations) is generations
    assert generations.tighter(api) is generations
    assert api.tighter(LimitStatus("generations", 0, 0, 0)) is api
    assert LimitStatus("api", 0, 0, 0).tighter(generations) is generations


def test_refused_scene_requests_do_not_use_up_the_generation_limit(
    data_dir: Path, rate_limit_storage: str
) -> None:
    """An author fixing a typo in a reference number is not locked out (issue 11, defect 5)."""
    app = create_app(
        make_settings(
            data_dir, rate_limit_per_minute=0, generations_per_minute=2, rate_limit_storage=rate_limit_storage
        )
    )
    with TestClient(app) as client:
        headers = bearer(new_key(app))
        for _ in range(4):
            typo = client.post(
                "/generate-image", headers=headers, json={"prompt": "Mia", "reference_images": [7]}
            )
            assert typo.status_code == 422 and typo.json()["error"]["field"] == "reference_images.0"
        body = {"prompt": "Mia"}
        statuses = [client.post("/generate-image", headers=headers, json=body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_limit_is_one_budget_for_two_apps_sharing_a_redis(data_dir: Path, redis_url: str) -> None:
    """Two runtimes (as two processes would) on one database and one Redis share each key's budget."""
    settings = make_settings(data_dir, rate_limit_per_minute=LIMIT, rate_limit_storage=redis_url)
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as one, TestClient(second) as two:
        headers = bearer(new_key(first))
        statuses = [(one if i % 2 else two).get("/characters", headers=headers).status_code for i in range(6)]
    assert statuses == [200] * LIMIT + [429] * 3


def test_a_redis_that_is_down_fails_open_with_a_warning_and_health_says_so(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        settings = make_settings(data_dir, rate_limit_per_minute=LIMIT, rate_limit_storage=server.url)
        app = create_app(settings)
        with TestClient(app) as client:
            headers = bearer(new_key(app))
            assert client.get("/health").json()["limiter"] == "redis"
            assert client.get("/characters", headers=headers).headers["RateLimit-Remaining"] == "2"
            server.stop()
            with caplog.at_level(logging.WARNING, logger="storyloom.ratelimit"):
                statuses = [client.get("/characters", headers=headers).status_code for _ in range(LIMIT + 2)]
            health = client.get("/health")
    finally:
        server.stop()
    assert statuses == [200] * (LIMIT + 2)  # admitted: the database caps still bound spending
    warnings = [r.getMessage() for r in caplog.records if r.name == "storyloom.ratelimit"]
    assert len(warnings) == LIMIT + 2
    assert all("rate-limit storage unavailable" in w for w in warnings)
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["limiter"].startswith("error: ")


def test_health_names_the_limiter_storage(client: TestClient, rate_limit_storage: str) -> None:
    assert client.get("/health").json()["limiter"] == rate_limit_storage.split("://")[0]
