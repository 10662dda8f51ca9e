"""The OpenAI-compatible facade, driven by the real `openai` SDK pointed at a real Storyloom server.

Storyloom itself runs on the OpenAI backend against the fake upstream, so each test sees both
ends: what the SDK got back from Storyloom, and what Storyloom sent to "OpenAI" (the composed
prompt with the mentioned characters, every input image, the mask part).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.fake_openai import FakeOpenAI
from tests.imagegen import encode, png
from tests.servers import serve


def mask_png(size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste(Image.new("RGBA", (size[0] // 2, size[1] // 2), (0, 0, 0, 0)), (4, 4))
    return encode(image, "PNG")


class Storyloom:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def sdk(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(api_key=key or self.key, base_url=f"{self.url}/v1", max_retries=0, timeout=30)

    def character(self, name: str, description: str, *pictures: bytes) -> int:
        made = self.http.post("/characters", json={"name": name, "description": description})
        assert made.status_code == 201, made.text
        if pictures:
            files = [("files", (f"{i}.png", p, "image/png")) for i, p in enumerate(pictures)]
            stored = self.http.post("/images", files=files, data={"character_id": str(made.json()["id"])})
            assert stored.status_code == 201, stored.text
        return made.json()["id"]


def _storyloom(data_dir: Path, openai_base_url: str, **overrides: Any) -> Iterator[Storyloom]:
    values: dict[str, Any] = {
        "image_backend": "openai",
        "openai_api_key": "sk-upstream-secret",
        "openai_base_url": openai_base_url,
        "openai_max_retries": 0,
        "rate_limit_per_minute": 0,
        "generations_per_minute": 0,
    }
    values.update(overrides)
    app = create_app(make_settings(data_dir, **values))
    with serve(app) as url:
        loom = Storyloom(url, new_key(app))
        yield loom
        loom.http.close()


@pytest.fixture
def loom(data_dir: Path, openai_base_url: str, fake: FakeOpenAI) -> Iterator[Storyloom]:
    yield from _storyloom(data_dir, openai_base_url)


def _decoded(b64: str | None) -> Image.Image:
    assert b64 is not None
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_generate_with_mentions_is_an_ordinary_job(loom: Storyloom, fake: FakeOpenAI) -> None:
    mia_picture = png(1)
    loom.character("Mia", "a girl in a red coat", mia_picture)
    loom.character("Captain Bo", "a bearded sailor with a blue cap")
    result = loom.sdk().images.generate(
        model="gpt-image-2.5-flare", prompt='@Mia and @"Captain Bo" fly a kite', size="1024x1024", n=2
    )
    assert len(result.data) == 2 and result.created > 0
    assert _decoded(result.data[0].b64_json).size == (1024, 1024)
    assert result.usage is not None and result.usage.output_tokens == 2 * 1056
    [sent] = fake.requests
    # Mia has a reference picture, so the scene became an edit with it as input image 1.
    assert sent.endpoint == "edits" and [i.data for i in sent.images] == [mia_picture]
    prompt = sent.fields["prompt"]
    assert "a girl in a red coat" in prompt and "a bearded sailor with a blue cap" in prompt
    assert "Mia and Captain Bo fly a kite" in prompt and "@" not in prompt
    history = loom.http.get("/generations").json()
    assert history["total"] == 1 and [c["name"] for c in history["items"][0]["characters"]] == [
        "Mia",
        "Captain Bo",
    ]
    assert loom.http.get("/usage").status_code == 200


def test_edit_with_several_images_and_a_mask(loom: Storyloom, fake: FakeOpenAI) -> None:
    mia_picture = png(3)
    loom.character("Mia", "a girl in a red coat", mia_picture)
    first, second, mask = png(1), png(2), mask_png()
    result = loom.sdk().images.edit(
        model="gpt-image-2.5-flare",
        image=[("first.png", first, "image/png"), ("second.png", second, "image/png")],
        mask=("mask.png", mask, "image/png"),
        prompt="put @Mia's hat on the dog",
        size="1024x1024",
    )
    assert len(result.data) == 1 and _decoded(result.data[0].b64_json).format == "PNG"
    [sent] = fake.requests
    assert sent.endpoint == "edits"
    assert [i.data for i in sent.images] == [first, second, mia_picture]
    assert sent.mask is not None and sent.mask.content_type == "image/png" and sent.mask.data == mask
    assert "put Mia's hat on the dog" in sent.fields["prompt"]
    # The uploads went into the library like uploads (numbers, deduplicated).
    assert loom.http.get("/images").json()["total"] == 5  # Mia's picture, two inputs, the mask, the output
    again = loom.sdk().images.edit(
        image=[("again.png", first, "image/png")], prompt="a calm sea", size="1536x1024"
    )
    assert len(again.data) == 1
    assert loom.http.get("/images").json()["total"] == 6  # `first` was not stored twice


def test_url_answers_and_idempotency(loom: Storyloom, fake: FakeOpenAI) -> None:
    client = loom.sdk()
    headers = {"Idempotency-Key": "kite-1"}
    one = client.images.generate(prompt="a kite", response_format="url", extra_headers=headers)
    two = client.images.generate(prompt="a kite", response_format="url", extra_headers=headers)
    assert one.data[0].url == two.data[0].url and one.data[0].url is not None
    assert one.data[0].url.startswith("http://testserver/images/")  # PUBLIC_BASE_URL, signed
    signed = one.data[0].url.removeprefix("http://testserver")
    assert httpx.get(f"{loom.url}{signed}").status_code == 200  # works without the key
    assert len(fake.requests) == 1


def test_errors_raise_the_sdks_typed_exceptions(loom: Storyloom, fake: FakeOpenAI) -> None:
    client = loom.sdk()
    with pytest.raises(openai.BadRequestError) as unknown:
        client.images.generate(prompt="@Zed waves")
    assert unknown.value.status_code == 400
    assert unknown.value.body["param"] == "prompt" and unknown.value.body["code"] == "unknown_character"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as too_many:
        client.images.generate(prompt="a fox", n=11)
    assert too_many.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad_mask:
        client.images.edit(
            image=[("a.png", png(1), "image/png")],
            mask=("m.png", mask_png((32, 32)), "image/png"),
            prompt="x",
        )
    assert bad_mask.value.body["param"] == "mask"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError) as refused:
        loom.sdk("sl-not-a-key").images.generate(prompt="a fox")
    assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    fake.fail("moderation_blocked")
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(prompt="something the safety system dislikes")
    assert blocked.value.body["code"] == "content_policy"  # type: ignore[index]
    assert len(fake.requests) == 1  # only the moderated one reached upstream


def test_rate_limit_is_the_sdks_rate_limit_error(
    data_dir: Path, openai_base_url: str, fake: FakeOpenAI
) -> None:
    for loom in _storyloom(data_dir, openai_base_url, generations_per_minute=1):
        client = loom.sdk()
        client.images.generate(prompt="a fox")
        with pytest.raises(openai.RateLimitError) as limited:
            client.images.generate(prompt="another fox")
        assert limited.value.response.headers.get("retry-after") is not None
        assert limited.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert len(fake.requests) == 1
