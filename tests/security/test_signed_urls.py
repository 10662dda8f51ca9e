"""Signed URLs: lifetimes bounded by TTL + 10 %, and malformed parameters refused with 403, never 500."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from config import Settings
from services.signing import Forbidden, expiry, sign_query, verify
from tests.imagegen import png, upload


@pytest.mark.parametrize("ttl", [1, 5, 9, 10, 59, 60, 61, 3600, 86_400])
def test_a_signed_url_lives_at_most_ttl_plus_ten_percent(ttl: int) -> None:
    for step in range(200):
        now = 1_700_000_000 + step * 0.37
        lifetime = expiry(ttl, now) - now
        assert lifetime <= ttl * 1.1, (ttl, now, lifetime)
        assert lifetime > ttl - 1


def test_a_one_second_url_is_refused_a_minute_later() -> None:
    now = 1_700_000_000.5
    query = parse_qs(sign_query(b"k", 3, "/images/0/file", ttl=1, now=now))
    args = (b"k", "/images/0/file", query["w"][0], query["exp"][0], query["sig"][0])
    assert verify(*args, now=now + 0.5) == 3
    with pytest.raises(Forbidden):
        verify(*args, now=now + 56)
    with pytest.raises(Forbidden):
        verify(*args, now=now + 1.2)


@pytest.mark.parametrize(
    "changed",
    [
        {"exp": "²"},
        {"exp": "١٢٣"},
        {"w": "³"},
        {"exp": "9" * 400},
        {"w": "99999999999999999999"},
        {"exp": "-5"},
        {"sig": "é" * 64},
    ],
)
def test_unicode_digits_and_huge_numbers_are_403(
    client: TestClient, auth: dict[str, str], changed: dict[str, str]
) -> None:
    image = upload(client, auth, png(1)).json()["images"][0]
    good = {key: values[0] for key, values in parse_qs(urlsplit(image["url"]).query).items()}
    response = client.get(f"/images/0/file?{urlencode({**good, **changed})}")
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "invalid_signature"


def test_the_api_signs_with_the_configured_ttl(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    upload(client, auth, png(1))
    url = client.get("/images/0", headers=auth).json()["url"]
    exp = int(parse_qs(urlsplit(url).query)["exp"][0])
    ttl = settings.signed_url_ttl_seconds
    assert time.time() + ttl - 1 <= exp <= time.time() + ttl * 1.1
