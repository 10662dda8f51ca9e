"""Who is in a scene (issue 11): references bring their characters, outputs carry their cast.

Draft backend, real app: what the composer says about each input image, which characters a
request with references gets, the tags on generated pictures, and the reference-limit rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config import Settings
from tests.api.cast import character, generate
from tests.conftest import make_settings
from tests.imagegen import png, upload


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, rate_limit_per_minute=0, generations_per_minute=0)


def test_references_bring_their_character_into_the_scene(
    client: TestClient, auth: dict[str, str], cast: dict[str, int]
) -> None:
    dry = generate(client, auth, prompt="Mia runs", reference_images=[1, 0], dry_run=True)
    assert [c["name"] for c in dry["characters"]] == ["Mia"]
    assert dry["added_characters"] == [{"id": cast["mia"], "name": "Mia", "reference_images": [1, 0]}]
    assert "a girl in a yellow raincoat" in dry["prompt"]
    assert "shows no named character" not in dry["prompt"]
    # An explicit empty cast is respected: no description, but the picture still says whom it shows.
    bare = generate(client, auth, prompt="Mia runs", reference_images=[1, 0], characters=[], dry_run=True)
    assert bare["characters"] == [] and bare["added_characters"] == []
    assert "yellow raincoat" not in bare["prompt"]
    assert "shows Mia" in bare["prompt"]
    # A generated scene of Mia and Otto, reused as a reference, brings both along.
    scene = generate(client, auth, prompt="Mia and Otto at the pond", characters=["Mia", "Otto"])
    number = scene["images"][0]["number"]
    again = generate(client, auth, prompt="later", reference_images=[number], dry_run=True)
    assert [c["name"] for c in again["characters"]] == ["Mia", "Otto"]


def test_a_picture_of_someone_not_in_the_scene_says_whom_it_shows_and_warns(
    client: TestClient, auth: dict[str, str], cast: dict[str, int]
) -> None:
    dry = generate(
        client, auth, prompt="Mia alone", characters=["Mia"], reference_images=[0, 2], dry_run=True
    )
    assert "Input image 2 (library image 2) shows Otto, who is not in this scene" in dry["prompt"]
    assert "shows no named character" not in dry["prompt"]
    assert dry["warnings"] == ["Image 2 shows Otto, who is not in this scene."]
    assert generate(client, auth, prompt="Mia", characters=["Mia"], dry_run=True)["warnings"] == []


def test_two_full_reference_lists_are_shared_fairly_up_to_the_model_limit(
    client: TestClient, auth: dict[str, str]
) -> None:
    ana = character(client, auth, "Ana", "a tall girl", list(range(10, 19)))  # images 0-8
    bo = character(client, auth, "Bo", "a small boy", list(range(20, 29)))  # images 9-17
    dry = generate(client, auth, prompt="Ana and Bo", characters=[ana, bo], dry_run=True)
    assert dry["reference_images"] == [*range(0, 8), *range(9, 17)]
    assert dry["left_out_references"] == [8, 17]
    assert "Image 8 and image 17 were left out" in " ".join(dry["warnings"])
    job = generate(client, auth, prompt="Ana and Bo", characters=[ana, bo])
    assert job["reference_images"] == dry["reference_images"]
    assert job["left_out_references"] == [8, 17]


def test_a_character_list_longer_than_any_model_takes_is_refused(
    client: TestClient, auth: dict[str, str]
) -> None:
    cid = character(client, auth, "Cy", "a cat", [])
    for start in (40, 49):  # images 0-16, in two uploads
        assert upload(client, auth, *[png(s) for s in range(start, min(start + 9, 57))]).status_code == 201
    too_many = client.put(f"/characters/{cid}/references", headers=auth, json={"numbers": list(range(17))})
    assert too_many.status_code == 422
    error = too_many.json()["error"]
    assert error["field"] == "numbers" and "16" in error["message"]
    fits = client.put(f"/characters/{cid}/references", headers=auth, json={"numbers": list(range(16))})
    assert fits.status_code == 200
    # Appending a 17th (upload to the character) is refused too, and stores nothing.
    more = client.post(f"/characters/{cid}/references", headers=auth, files=[("files", ("x.png", png(60)))])
    assert more.status_code == 422 and "16" in more.json()["error"]["message"]
    assert client.get("/images", headers=auth).json()["total"] == 17


def test_generations_filter_by_character_and_refuse_unknown_filters(
    client: TestClient, auth: dict[str, str], cast: dict[str, int]
) -> None:
    with_otto = generate(client, auth, prompt="Mia and Otto", characters=["Mia", "Otto"])
    generate(client, auth, prompt="Mia alone", characters=["Mia"])
    generate(client, auth, prompt="nobody")
    otto = client.get(f"/generations?character_id={cast['otto']}", headers=auth).json()
    assert [g["id"] for g in otto["items"]] == [with_otto["id"]] and otto["total"] == 1
    mia = client.get(f"/generations?character_id={cast['mia']}", headers=auth).json()
    assert [g["scene"] for g in mia["items"]] == ["Mia alone", "Mia and Otto"] and mia["total"] == 2
    assert client.get("/generations?character_id=999", headers=auth).status_code == 404
    typo = client.get("/generations?charcter_id=2", headers=auth)
    assert typo.status_code == 422 and typo.json()["error"]["field"] == "charcter_id"


def test_a_name_clash_names_the_existing_character_as_it_is_spelled(
    client: TestClient, auth: dict[str, str], cast: dict[str, int]
) -> None:
    again = client.post("/characters", headers=auth, json={"name": "mia", "description": "another"})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "a character named 'Mia' already exists"
    renamed = client.patch(f"/characters/{cast['otto']}", headers=auth, json={"name": "MIA"})
    assert renamed.status_code == 409
    assert renamed.json()["error"]["message"] == "a character named 'Mia' already exists"
