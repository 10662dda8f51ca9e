"""IMAGE_BACKEND=replicate: the real `replicate` client against a fake Replicate on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api_server import create_app
from tests.conftest import make_settings, new_key
from tests.fake_replicate import TOKEN, FakeReplicate
from tests.imagegen import png, upload
from tests.netguard import loopback_only
from tests.servers import serve


@pytest.fixture(scope="module")
def replicate_server() -> Iterator[FakeReplicate]:
    fake = FakeReplicate()
    with serve(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def fake(replicate_server: FakeReplicate) -> Iterator[FakeReplicate]:
    replicate_server.reset()
    with loopback_only() as blocked:
        yield replicate_server
    assert blocked == []


def _client(
    data_dir: Path, fake: FakeReplicate, **overrides: Any
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    values: dict[str, Any] = {
        "image_backend": "replicate",
        "replicate_api_token": TOKEN,
        "replicate_base_url": fake.base_url,
        "replicate_poll_seconds": 0.01,
        "url_import_allow_hosts": [fake.base_url.removeprefix("http://")],
        "rate_limit_per_minute": 0,
        "generations_per_minute": 0,
    }
    values.update(overrides)
    app = create_app(make_settings(data_dir, **values))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {new_key(app)}"}


@pytest.fixture
def loom(data_dir: Path, fake: FakeReplicate) -> Iterator[tuple[TestClient, dict[str, str]]]:
    yield from _client(data_dir, fake)


def test_prediction_created_polled_and_outputs_stored(loom: Any, fake: FakeReplicate) -> None:
    client, auth = loom
    body = {
        "prompt": "a fox in the snow",
        "n": 2,
        "size": "1536x1024",
        "seed": 5,
        "guidance_scale": 3.5,
        "steps": 20,
    }
    response = client.post("/generate-image", headers=auth, json=body)
    assert response.status_code == 200, response.text
    read = response.json()
    assert (
        read["backend"] == "replicate" and read["model"] == "black-forest-labs/flux-dev" and read["seed"] == 5
    )
    assert len(read["images"]) == 2
    [created] = fake.created
    assert created.model == "black-forest-labs/flux-dev" and created.authorization == f"Bearer {TOKEN}"
    assert created.input["aspect_ratio"] == "3:2" and created.input["num_outputs"] == 2
    assert (created.input["seed"], created.input["guidance"], created.input["num_inference_steps"]) == (
        5,
        3.5,
        20,
    )
    assert created.input["output_format"] == "png" and "a fox in the snow" in created.input["prompt"]
    [prediction] = fake.predictions.values()
    assert prediction.polls >= 2 and prediction.status == "succeeded"
    stored = client.get(f"/images/{read['images'][0]['number']}", headers=auth).json()
    assert stored["kind"] == "generated" and (stored["width"], stored["height"]) == (64, 42)
    file = client.get(read["images"][1]["url"]).content
    assert file == fake.files[f"{prediction.id}-1.png"]


def test_seed_is_chosen_when_missing_and_stored(loom: Any, fake: FakeReplicate) -> None:
    client, auth = loom
    response = client.post("/generate-image", headers=auth, json={"prompt": "an owl"})
    assert response.status_code == 200, response.text
    seed = response.json()["seed"]
    assert isinstance(seed, int) and fake.created[0].input["seed"] == seed


def test_reference_image_goes_as_the_models_image_input(loom: Any, fake: FakeReplicate) -> None:
    client, auth = loom
    picture = png(4)
    assert upload(client, auth, picture).status_code == 201
    body = {
        "prompt": "the same fox at night",
        "reference_images": [0],
        "model": "black-forest-labs/flux-kontext-pro",
    }
    response = client.post("/generate-image", headers=auth, json=body)
    assert response.status_code == 200, response.text
    sent = fake.created[0].input["input_image"]
    assert sent == "data:image/png;base64," + base64.b64encode(picture).decode()
    assert "num_outputs" not in fake.created[0].input


@pytest.mark.parametrize(
    ("outcome", "code"), [("failed", "upstream_failed"), ("canceled", "upstream_canceled")]
)
def test_failed_and_cancelled_predictions(loom: Any, fake: FakeReplicate, outcome: str, code: str) -> None:
    client, auth = loom
    fake.outcome = outcome
    response = client.post("/generate-image", headers=auth, json={"prompt": "a fox"})
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == code
    if outcome == "failed":
        assert "CUDA out of memory" in response.json()["error"]["message"]
    assert client.get("/images", headers=auth).json()["total"] == 0


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("invalid_input", 422, "upstream_rejected"),
        ("no_model", 422, "model_not_found"),
        ("throttled", 503, "upstream_unavailable"),
        ("down", 503, "upstream_unavailable"),
    ],
)
def test_replicate_errors_are_mapped(
    loom: Any, fake: FakeReplicate, fault: str, status: int, code: str
) -> None:
    client, auth = loom
    fake.fail(fault)
    response = client.post("/generate-image", headers=auth, json={"prompt": "a fox"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    if status == 503:
        assert response.headers["Retry-After"] == "30"


def test_refused_token_is_a_502(data_dir: Path, fake: FakeReplicate) -> None:
    for client, auth in _client(data_dir, fake, replicate_api_token="r8_wrong"):
        response = client.post("/generate-image", headers=auth, json={"prompt": "a fox"})
        assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_auth"
        assert "r8_wrong" not in response.text


def test_a_prediction_that_runs_too_long_is_cancelled(data_dir: Path, fake: FakeReplicate) -> None:
    fake.outcome = "running"
    for client, auth in _client(data_dir, fake, replicate_timeout_seconds=0.3):
        response = client.post("/generate-image", headers=auth, json={"prompt": "a fox"})
        assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
    assert fake.cancelled == [next(iter(fake.predictions))]


def test_capabilities_refuse_before_spending(loom: Any, fake: FakeReplicate) -> None:
    client, auth = loom
    assert upload(client, auth, png(1)).status_code == 201
    cases = [
        ({"model": "black-forest-labs/flux-schnell", "guidance_scale": 3}, "guidance_scale"),
        ({"model": "black-forest-labs/flux-schnell", "steps": 8}, "steps"),
        ({"model": "black-forest-labs/flux-schnell", "reference_images": [0]}, "reference_images"),
        ({"model": "gpt-image-2.5-flare"}, "model"),
        ({"n": 5}, "n"),
        ({"quality": "high"}, "quality"),
        ({"size": "1000x1000"}, "size"),
        ({"reference_images": [0], "mask": 0}, "mask"),
    ]
    for extra, field in cases:
        response = client.post("/generate-image", headers=auth, json={"prompt": "a fox", **extra})
        assert response.status_code == 422, (extra, response.text)
        assert response.json()["error"]["field"] == field, (extra, response.json())
    assert fake.created == []


def test_health_names_the_replicate_default_model(loom: Any, fake: FakeReplicate) -> None:
    client, _ = loom
    health = client.get("/health").json()
    assert (health["backend"], health["model"]) == ("replicate", "black-forest-labs/flux-dev")
