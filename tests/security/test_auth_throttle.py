"""A brake on failed authentication (issue 12, defect 9): 429 + Retry-After per address and per key
prefix, while valid keys are admitted as before."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from errors import TooManyRequests, Unauthorized
from services.auth_throttle import FailedAuthThrottle


def test_a_flood_of_wrong_keys_is_throttled_but_a_valid_key_is_not(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    good = {"Authorization": f"Bearer {make_key('alpha')}"}
    statuses = [
        client.get("/images", headers={"Authorization": f"Bearer sl_{i:07d}-wrong"}).status_code
        for i in range(60)
    ]
    assert statuses[:20] == [401] * 20  # AUTH_FAILURES_PER_MINUTE = 20 per address
    assert set(statuses[20:]) == {429}
    refused = client.get("/images", headers={"Authorization": "Bearer sl_another-wrong-key"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_auth_failures"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The same address with a valid key: admitted, not slowed.
    assert client.get("/images", headers=good).status_code == 200


def test_the_login_form_counts_failures_too(client: TestClient) -> None:
    page = client.get("/ui/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    statuses = [
        client.post("/ui/login", data={"api_key": f"sl_{i:07d}-nope", "csrf_token": token}).status_code
        for i in range(25)
    ]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}


def test_failures_are_also_counted_per_key_prefix_across_addresses() -> None:
    throttle = FailedAuthThrottle(per_address=1000, per_prefix=10)
    error = Unauthorized("unknown or revoked API key", field="Authorization")
    answers = [throttle.refuse(error, f"10.0.0.{i}", f"sl_AbCdEfG{i:04d}") for i in range(12)]
    assert all(a is error for a in answers[:10])
    assert isinstance(answers[10], TooManyRequests) and "Retry-After" in answers[10].headers
    # Another prefix from a fresh address is not affected.
    assert throttle.refuse(error, "10.0.1.1", "sl_ZZZZZZZ0000") is error
