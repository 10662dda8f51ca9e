"""IMAGE_BACKEND=diffusers end to end: the tiny model loaded from DIFFUSERS_MODEL, driven over HTTP."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api_server import create_app
from generation.backends import BackendConfigError
from generation.backends.diffusers_backend import INSTALL_COMMAND, StepInfo
from tests.conftest import ROOT, make_settings
from tests.imagegen import png, upload

Client = tuple[TestClient, dict[str, str], Any]


def draw(client: TestClient, auth: dict[str, str], **body: Any) -> tuple[dict[str, Any], bytes]:
    response = client.post("/generate-image", headers=auth, json={"prompt": "a fox in the snow", **body})
    assert response.status_code == 200, response.text
    read = response.json()
    assert read["status"] == "succeeded", read
    return read, client.get(read["images"][0]["url"]).content


def test_a_scene_is_a_stored_png_of_the_requested_size_and_free(local_client: Client) -> None:
    client, auth, _ = local_client
    read, data = draw(client, auth, size="64x48", steps=2, seed=3)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "PNG" and picture.size == (64, 48)
    assert read["backend"] == "diffusers" and read["model"] == "local-diffusion"
    assert read["seed"] == 3 and read["parameters"]["steps"] == 2
    assert read["estimated_cost_usd"] == 0
    number = read["images"][0]["number"]
    assert client.get(f"/images/{number}", headers=auth).status_code == 200  # in the library
    # "auto" is the model's native size (the tiny model: 64x64).
    _, native = draw(client, auth, steps=1, seed=3)
    with Image.open(io.BytesIO(native)) as picture:
        assert picture.size == (64, 64)


def test_the_seed_gives_the_same_bytes_and_another_seed_others(local_client: Client) -> None:
    client, auth, _ = local_client
    seven, seven_bytes = draw(client, auth, size="64x64", steps=2, seed=7)
    _, again_bytes = draw(client, auth, size="64x64", steps=2, seed=7)
    eight, eight_bytes = draw(client, auth, size="64x64", steps=2, seed=8)
    assert seven_bytes == again_bytes and seven["seed"] == 7
    assert seven_bytes != eight_bytes and eight["seed"] == 8
    # Without a seed one is chosen, stored with the job and returned: it draws the same again.
    chosen, chosen_bytes = draw(client, auth, size="64x64", steps=2)
    assert isinstance(chosen["seed"], int)
    assert client.get(f"/generations/{chosen['id']}", headers=auth).json()["seed"] == chosen["seed"]
    _, redrawn = draw(client, auth, size="64x64", steps=2, seed=chosen["seed"])
    assert redrawn == chosen_bytes


def test_guidance_scale_and_steps_reach_the_pipeline(local_client: Client) -> None:
    client, auth, rt = local_client
    seen: list[StepInfo] = []
    rt.backend.step_observer = seen.append
    draw(client, auth, size="64x64", steps=3, guidance_scale=5.5, seed=1)
    assert [info.step for info in seen] == [0, 1, 2]
    assert {info.guidance_scale for info in seen} == {5.5}
    seen.clear()
    draw(client, auth, size="64x64", steps=5, guidance_scale=1.0, seed=1, negative_prompt="rain")
    assert len(seen) == 5 and seen[0].guidance_scale == 1.0


def test_image_to_image_starts_from_the_first_reference(local_client: Client) -> None:
    client, auth, rt = local_client
    response = upload(client, auth, png(1, (64, 64)), png(2, (64, 64)), png(3, (96, 64)))
    assert response.status_code == 201, response.text
    a, b, c = (image["number"] for image in response.json()["images"])
    seen: list[StepInfo] = []
    rt.backend.step_observer = seen.append
    common = {"size": "64x64", "steps": 4, "strength": 0.5, "seed": 5}
    first_a, from_a = draw(client, auth, reference_images=[a, b], **common)
    assert len(seen) == 2  # image-to-image runs steps x strength of them
    assert first_a["reference_images"] == [a, b] and first_a["parameters"]["strength"] == 0.5
    _, from_a_too = draw(client, auth, reference_images=[a, c], **common)
    _, from_b = draw(client, auth, reference_images=[b, a], **common)
    _, from_c = draw(client, auth, reference_images=[c, a], **common)  # resized to the requested size
    assert from_a == from_a_too  # only input image 1 is the init image
    assert len({from_a, from_b, from_c}) == 3
    with Image.open(io.BytesIO(from_c)) as picture:
        assert picture.size == (64, 64)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"guidance_scale": 31}, "guidance_scale"),
        ({"steps": 151}, "steps"),
        ({"strength": 1.5}, "strength"),
        ({"strength": 0.5}, "strength"),  # no reference image to start from
        ({"size": "60x64"}, "size"),  # not a multiple of 8
        ({"n": 5}, "n"),
        ({"quality": "high"}, "quality"),
        ({"mask": 0}, "mask"),
        ({"model": "gpt-image-2"}, "model"),
    ],
)
def test_out_of_range_fields_are_422_naming_the_field(
    local_client: Client, extra: dict[str, Any], field: str
) -> None:
    client, auth, _ = local_client
    response = client.post("/generate-image", headers=auth, json={"prompt": "a fox", **extra})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_a_prompt_over_the_token_limit_is_shortened_and_the_dry_run_warns(local_client: Client) -> None:
    client, auth, _ = local_client
    mia = {"name": "Mia", "description": "a girl in a red raincoat"}
    assert client.post("/characters", headers=auth, json=mia).status_code == 201
    body = {"prompt": "Mia waves", "characters": ["Mia"], "dry_run": True}
    preview = client.post("/generate-image", headers=auth, json=body).json()
    assert preview["prompt"] == "Mia: a girl in a red raincoat. Mia waves"
    (note,) = preview["warnings"]
    assert "short form" in note and "77" in note
    # Still too long: the words that fit are sent, and the note quotes what was dropped.
    long_scene = "Mia waves at the little grey dog across the wide and rainy street"
    preview = client.post("/generate-image", headers=auth, json={**body, "prompt": long_scene}).json()
    assert long_scene.startswith(preview["prompt"].removeprefix("Mia: a girl in a red raincoat. "))
    (note,) = preview["warnings"]
    assert "dropped" in note and "street" in note
    # A prompt that fits goes out unchanged, without a note; the job stores what was sent.
    plain = client.post("/generate-image", headers=auth, json={"prompt": "a fox", "dry_run": True}).json()
    assert plain["prompt"] == "a fox" and plain["warnings"] == []
    read, _ = draw(client, auth, prompt="Mia waves", characters=["Mia"], steps=1, size="64x64")
    assert read["prompt"] == "Mia: a girl in a red raincoat. Mia waves"


def _start(tmp_path: Path, model: Path) -> None:
    settings = make_settings(tmp_path / "data", image_backend="diffusers", diffusers_model=model)
    with TestClient(create_app(settings)):
        pass


def test_a_missing_model_directory_fails_at_start_up_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(BackendConfigError, match=str(missing)):
        _start(tmp_path, missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendConfigError, match=f"{empty}.*model_index.json"):
        _start(tmp_path, empty)


def test_a_broken_model_directory_fails_at_start_up_naming_it(tmp_path: Path, tiny_model: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text((tiny_model / "model_index.json").read_text())
    (broken / "unet").mkdir()
    (broken / "unet" / "config.json").write_text("{not json")
    with pytest.raises(BackendConfigError, match=f"DIFFUSERS_MODEL={broken}: the model could not be loaded"):
        _start(tmp_path, broken)


def test_health_names_the_install_command_when_torch_is_missing(tmp_path: Path) -> None:
    """A fresh interpreter in which torch cannot be imported, as after a plain `make run`."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    script = f"""
import json, sys
sys.modules["torch"] = None  # what an interpreter without torch sees: ImportError
from fastapi.testclient import TestClient
from api_server import create_app
from tests.conftest import make_settings, new_key
from pathlib import Path
app = create_app(make_settings(Path({str(tmp_path / "data")!r}), image_backend="diffusers",
                               diffusers_model=Path({str(model)!r})))
with TestClient(app) as client:
    health = client.get("/health")
    auth = {{"Authorization": "Bearer " + new_key(app)}}
    scene = client.post("/generate-image", headers=auth, json={{"prompt": "a fox"}})
    print(json.dumps([health.status_code, health.json(), scene.status_code, scene.json()]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    health_status, health, scene_status, scene = json.loads(done.stdout.strip().splitlines()[-1])
    assert health["backend"] == "diffusers" and "backend" in health["failing"]
    assert "torch" in health["backend_error"] and INSTALL_COMMAND in health["backend_error"]
    assert health_status == 503
    assert scene_status == 503 and INSTALL_COMMAND in json.dumps(scene)
