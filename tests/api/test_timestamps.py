"""Every timestamp in every JSON answer has one format: UTC with a `Z`."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.imagegen import png, upload

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def stamps(value: Any, path: str = "") -> dict[str, Any]:
    """Every `*_at` field anywhere in an answer, by its path."""
    found: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_at") and item is not None:
                found[f"{path}.{key}"] = item
            found.update(stamps(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(stamps(item, f"{path}[{index}]"))
    return found


def test_characters_images_and_generations_answer_utc_z_timestamps(
    client: TestClient, auth: dict[str, str]
) -> None:
    mia = client.post("/characters", headers=auth, json={"name": "Mia", "description": "red hair"}).json()
    uploaded = upload(client, auth, png(1))
    assert uploaded.status_code == 201, uploaded.text
    job = client.post("/generate-image", headers=auth, json={"prompt": "Mia in the rain", "size": "256x256"})
    assert job.status_code == 200, job.text
    answers = {
        "character": mia,
        "upload": uploaded.json(),
        "images": client.get("/images", headers=auth).json(),
        "image": client.get("/images/0", headers=auth).json(),
        "generation": job.json(),
        "generations": client.get("/generations", headers=auth).json(),
    }
    found = stamps(answers)
    assert {path.split(".")[1] for path in found} == set(answers)  # every answer has some
    wrong = {path: stamp for path, stamp in found.items() if not UTC_Z.match(str(stamp))}
    assert wrong == {}
