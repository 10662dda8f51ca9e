"""POST /images/{number}/variations: an edit of the picture itself, keeping its characters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.fake_openai import FakeOpenAI
from tests.imagegen import png, upload


@pytest.fixture
def openai_client(data_dir: Path, openai_base_url: str, fake: FakeOpenAI) -> Any:
    settings = make_settings(
        data_dir,
        image_backend="openai",
        openai_api_key="sk-test",
        openai_base_url=openai_base_url,
        openai_max_retries=0,
        rate_limit_per_minute=0,
        generations_per_minute=0,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {new_key(app)}"}


def _mia_with_reference(client: TestClient, auth: dict[str, str]) -> tuple[int, int]:
    mia = client.post(
        "/characters", headers=auth, json={"name": "Mia", "description": "a girl in a red coat"}
    )
    assert mia.status_code == 201, mia.text
    response = upload(client, auth, png(1), character_id=str(mia.json()["id"]))
    assert response.status_code == 201, response.text
    return mia.json()["id"], response.json()["images"][0]["number"]


def test_variations_edit_the_source_with_its_characters(openai_client: Any, fake: FakeOpenAI) -> None:
    client, auth = openai_client
    mia, source = _mia_with_reference(client, auth)
    response = client.post(f"/images/{source}/variations", headers=auth, json={"n": 2})
    assert response.status_code == 200, response.text
    read = response.json()
    assert [c["id"] for c in read["characters"]] == [mia] and read["reference_images"] == [source]
    assert len(read["images"]) == 2
    [sent] = fake.requests
    assert sent.endpoint == "edits" and sent.fields["n"] == "2"
    assert [image.data for image in sent.images] == [
        client.get(f"/images/{source}/file", headers=auth).content
    ]
    assert (
        "a girl in a red coat" in sent.fields["prompt"]
        and "variation of input image 1" in sent.fields["prompt"]
    )
    # Every output is an ordinary generated picture of this job.
    for image in read["images"]:
        shown = client.get(f"/images/{image['number']}", headers=auth).json()
        assert shown["kind"] == "generated" and shown["generation_id"] == read["id"]
        assert shown["characters"] == [mia]  # tagged like the source


def test_variation_prompt_and_a_generated_source_keep_the_scene_cast(
    openai_client: Any, fake: FakeOpenAI
) -> None:
    client, auth = openai_client
    mia, _ = _mia_with_reference(client, auth)
    scene = client.post(
        "/generate-image", headers=auth, json={"prompt": "Mia on a swing", "characters": ["Mia"]}
    )
    assert scene.status_code == 200, scene.text
    drawn = scene.json()["images"][0]["number"]
    response = client.post(
        f"/images/{drawn}/variations", headers=auth, json={"n": 1, "prompt": "the same, but at night"}
    )
    assert response.status_code == 200, response.text
    assert [c["id"] for c in response.json()["characters"]] == [mia]
    assert response.json()["reference_images"] == [drawn]
    assert "the same, but at night" in fake.requests[-1].fields["prompt"]


def test_variation_errors(openai_client: Any, fake: FakeOpenAI) -> None:
    client, auth = openai_client
    _, source = _mia_with_reference(client, auth)
    missing = client.post("/images/42/variations", headers=auth, json={"n": 1})
    assert missing.status_code == 404
    too_many = client.post(f"/images/{source}/variations", headers=auth, json={"n": 11})
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "n"
    seeded = client.post(f"/images/{source}/variations", headers=auth, json={"seed": 3})
    assert seeded.status_code == 422 and seeded.json()["error"]["field"] == "seed"
    assert fake.requests == []
