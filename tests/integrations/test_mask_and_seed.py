"""Masked edits reaching the fake OpenAI as a `mask` part via the real SDK; seeds checked per backend."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.fake_openai import FakeOpenAI
from tests.imagegen import encode, jpeg, png, upload

KEY = "sk-test-secret"


def mask_png(size: tuple[int, int] = (64, 48), *, alpha: bool = True) -> bytes:
    """Opaque everywhere but a transparent square in the middle (the area to redraw)."""
    image = Image.new("RGBA" if alpha else "RGB", size, (0, 0, 0, 255) if alpha else (0, 0, 0))
    if alpha:
        hole = Image.new("RGBA", (size[0] // 2, size[1] // 2), (0, 0, 0, 0))
        image.paste(hole, (size[0] // 4, size[1] // 4))
    return encode(image, "PNG")


@pytest.fixture
def openai_client(data_dir: Path, openai_base_url: str, fake: FakeOpenAI) -> Any:
    settings = make_settings(
        data_dir,
        image_backend="openai",
        openai_api_key=KEY,
        openai_base_url=openai_base_url,
        openai_max_retries=0,
        rate_limit_per_minute=0,
        generations_per_minute=0,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {new_key(app)}"}


@pytest.fixture
def draft_client(tmp_path: Path) -> Any:
    app = create_app(make_settings(tmp_path / "draft", rate_limit_per_minute=0, generations_per_minute=0))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {new_key(app)}"}


def _numbers(client: TestClient, auth: dict[str, str], *blobs: bytes) -> list[int]:
    response = upload(client, auth, *blobs)
    assert response.status_code == 201, response.text
    return [image["number"] for image in response.json()["images"]]


def test_masked_edit_reaches_upstream_as_a_png_mask_part(openai_client: Any, fake: FakeOpenAI) -> None:
    client, auth = openai_client
    first, second, mask = _numbers(client, auth, png(1), png(2), mask_png())
    body = {"prompt": "give Mia a yellow hat", "reference_images": [first, second], "mask": mask}
    response = client.post("/generate-image", headers=auth, json=body)
    assert response.status_code == 200, response.text
    read = response.json()
    assert read["mask"] == mask and read["parameters"]["mask"] == mask
    [sent] = fake.requests
    assert sent.endpoint == "edits" and len(sent.images) == 2
    assert sent.mask is not None and sent.mask.content_type == "image/png"
    assert sent.mask.data == client.get(f"/images/{mask}/file", headers=auth).content
    assert sent.mask.filename == f"mask-{mask}.png"
    assert "mask" not in sent.fields  # a file part, not a form field
    assert client.get(f"/generations/{read['id']}", headers=auth).json()["mask"] == mask


def test_bad_masks_are_refused_before_anything_is_sent(openai_client: Any, fake: FakeOpenAI) -> None:
    client, auth = openai_client
    first, opaque, wrong_size, as_jpeg = _numbers(
        client, auth, png(1), mask_png(alpha=False), mask_png((32, 32)), jpeg(5)
    )
    cases = [
        ({"reference_images": [first], "mask": opaque}, "alpha"),
        ({"reference_images": [first], "mask": wrong_size}, "same size"),
        ({"reference_images": [first], "mask": as_jpeg}, "PNG"),
        ({"reference_images": [first], "mask": 99}, "not in this library"),
        ({"mask": first}, "input image"),
    ]
    for extra, words in cases:
        response = client.post("/generate-image", headers=auth, json={"prompt": "fix the sky", **extra})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "mask" and words in error["message"], error
    assert fake.requests == []


def test_openai_models_take_no_seed_guidance_or_steps(openai_client: Any, fake: FakeOpenAI) -> None:
    client, auth = openai_client
    for name, value in (("seed", 42), ("guidance_scale", 7.5), ("steps", 30)):
        response = client.post("/generate-image", headers=auth, json={"prompt": "a fox", name: value})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == name and error["code"] == "unsupported_parameter"
        assert "gpt-image-2.5-flare on the openai backend takes no" in error["message"]
    assert fake.requests == []


def test_draft_backend_honours_the_seed_and_stores_it(draft_client: Any) -> None:
    client, auth = draft_client

    def draw(seed: int | None) -> tuple[dict[str, Any], bytes]:
        body: dict[str, Any] = {"prompt": "a fox in the snow", "size": "1024x1024"}
        if seed is not None:
            body["seed"] = seed
        response = client.post("/generate-image", headers=auth, json=body)
        assert response.status_code == 200, response.text
        read = response.json()
        return read, client.get(read["images"][0]["url"]).content

    seven, seven_bytes = draw(7)
    again, again_bytes = draw(7)
    other, other_bytes = draw(8)
    unseeded, _ = draw(None)
    assert seven["seed"] == 7 and seven["parameters"]["seed"] == 7 and unseeded["seed"] is None
    assert seven_bytes == again_bytes and seven["images"][0]["number"] == again["images"][0]["number"]
    assert seven_bytes != other_bytes and other["seed"] == 8
    with Image.open(io.BytesIO(seven_bytes)) as a, Image.open(io.BytesIO(other_bytes)) as b:
        background = [max(img.convert("RGB").getcolors(1 << 22) or [])[1] for img in (a, b)]
    assert background[0] != background[1]  # another seed, another tint
    assert client.get(f"/generations/{seven['id']}", headers=auth).json()["seed"] == 7
    # The draft backend draws no guidance or steps: saying so beats ignoring them.
    refused = client.post("/generate-image", headers=auth, json={"prompt": "x", "guidance_scale": 3})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "guidance_scale"
