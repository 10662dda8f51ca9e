"""POST /generate-image with the offline draft backend (the default without an OpenAI key)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from config import Settings
from tests.conftest import make_settings
from tests.imagegen import png, upload


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, rate_limit_per_minute=0, generations_per_minute=0)


def file_of(client: TestClient, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.content


def test_same_request_twice_gives_identical_bytes_and_the_same_library_image(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert upload(client, auth, png(1)).status_code == 201
    body = {"prompt": "Mia opens an umbrella in the rain", "reference_images": [0], "size": "1024x1024"}
    first = client.post("/generate-image", headers=auth, json=body)
    second = client.post("/generate-image", headers=auth, json=body)
    assert first.status_code == 200 and second.status_code == 200, second.text
    one, two = first.json(), second.json()
    assert one["backend"] == "draft" and one["id"] != two["id"]
    assert one["images"][0]["number"] == two["images"][0]["number"] == 1
    assert file_of(client, one["images"][0]["url"]) == file_of(client, two["images"][0]["url"])
    assert client.get("/images?kind=generated", headers=auth).json()["total"] == 1


def test_a_different_scene_gives_a_different_panel(client: TestClient, auth: dict[str, str]) -> None:
    first = client.post("/generate-image", headers=auth, json={"prompt": "A fox in the snow"}).json()
    second = client.post("/generate-image", headers=auth, json={"prompt": "A fox in the rain"}).json()
    assert first["images"][0]["number"] != second["images"][0]["number"]


@pytest.mark.parametrize("size", ["1536x1024", "1024x1536", "768x512"])
def test_panel_has_the_requested_size(client: TestClient, auth: dict[str, str], size: str) -> None:
    response = client.post("/generate-image", headers=auth, json={"prompt": "A lighthouse", "size": size})
    assert response.status_code == 200, response.text
    data = file_of(client, response.json()["image_url"])
    with Image.open(io.BytesIO(data)) as image:
        assert f"{image.width}x{image.height}" == size and image.format == "PNG"


def test_n_2_gives_two_distinct_images(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/generate-image", headers=auth, json={"prompt": "Two foxes", "n": 2})
    assert response.status_code == 200, response.text
    images = response.json()["images"]
    assert len(images) == 2 and images[0]["number"] != images[1]["number"]
    assert response.json()["usage"]["output_tokens"] == 0
