"""Library numbers: per workspace, from 0, never reused, and unique under racing uploads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from api_server import create_app
from tests.conftest import make_settings, new_key, temp_files
from tests.imagegen import png, upload
from tests.servers import serve


def test_numbers_are_never_reused_after_delete(client: TestClient, auth: dict[str, str]) -> None:
    upload(client, auth, png(1), png(2), png(3))
    assert client.delete("/images/2", headers=auth).status_code == 204
    assert client.delete("/images/1", headers=auth).status_code == 204
    assert upload(client, auth, png(4)).json()["images"][0]["number"] == 3
    # Even the very same bytes as a deleted image get a new number.
    assert upload(client, auth, png(3)).json()["images"][0]["number"] == 4


def test_each_workspace_counts_from_zero(
    client: TestClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    upload(client, auth, png(1), png(2))
    assert upload(client, other_auth, png(1)).json()["images"][0]["number"] == 0
    assert upload(client, auth, png(3)).json()["images"][0]["number"] == 2


def test_twenty_racing_uploads_over_real_http_get_distinct_numbers(
    data_dir: Path,
) -> None:
    settings = make_settings(data_dir, rate_limit_per_minute=0)
    app = create_app(settings)
    with serve(app) as base_url:
        headers = {"Authorization": f"Bearer {new_key(app)}"}

        def send(seed: int) -> httpx.Response:
            files = [("files", (f"race{seed}.png", png(seed), "image/png"))]
            return httpx.post(f"{base_url}/images", headers=headers, files=files, timeout=60)

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(send, range(100, 120)))
        assert all(r.status_code == 201 for r in responses), [
            r.text for r in responses if r.status_code != 201
        ]
        numbers = sorted(r.json()["images"][0]["number"] for r in responses)
        assert numbers == list(range(20))
        listed = httpx.get(f"{base_url}/images?limit=50", headers=headers).json()
        assert listed["total"] == 20
    assert temp_files(settings) == []
