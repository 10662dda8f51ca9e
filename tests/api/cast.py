"""A small cast for scene tests: Mia (images 0, 1) and Otto (image 2), made through the API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.imagegen import png


def character(client: TestClient, auth: dict[str, str], name: str, description: str, seeds: list[int]) -> int:
    made = client.post("/characters", headers=auth, json={"name": name, "description": description})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    if seeds:
        files = [("files", (f"{name}{s}.png", png(s), "image/png")) for s in seeds]
        stored = client.post(f"/characters/{cid}/references", headers=auth, files=files)
        assert stored.status_code == 201, stored.text
    return cid


def generate(client: TestClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/generate-image", headers=auth, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def make_cast(client: TestClient, auth: dict[str, str]) -> dict[str, int]:
    """Mia (images 0, 1) and Otto (image 2)."""
    mia = character(client, auth, "Mia", "a girl in a yellow raincoat", [1, 2])
    otto = character(client, auth, "Otto", "a grey dog with one black ear", [3])
    return {"mia": mia, "otto": otto}
