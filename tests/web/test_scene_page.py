"""The author's page, second pass (issue 11): what goes into a scene is visible, nothing is lost.

Template level, through the real app: the scene form's cast and reference thumbnails, the
form's error messages, upload mistakes on the character page, image detail and deletes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from config import Settings
from tests.api.cast import make_cast
from tests.conftest import make_settings
from tests.web.test_templates import log_in


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, rate_limit_per_minute=0, generations_per_minute=0)


@pytest.fixture
def author(client: TestClient, make_key: Callable[..., str]) -> tuple[dict[str, str], str, dict[str, int]]:
    """API headers, the browser session's CSRF token, and the cast (Mia: images 0, 1; Otto: 2)."""
    key = make_key("alpha")
    auth = {"Authorization": f"Bearer {key}"}
    cast = make_cast(client, auth)
    return auth, log_in(client, key), cast


def test_a_scene_preview_of_a_too_long_prompt_says_so(client: TestClient, author: tuple) -> None:
    _, token, _ = author
    long = client.post("/ui/api/preview", headers={"X-CSRF-Token": token}, json={"prompt": "a" * 32_001})
    assert long.status_code == 422
    error = long.json()["error"]
    assert error["field"] == "prompt"
    assert "32,001" in error["message"] and "32,000" in error["message"]
    assert "Write what happens" not in error["message"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([("files", ("notes.txt", b"just some words", "text/plain"))], "not a"),
        ([("files", ("", b"", "application/octet-stream"))], "Choose one or more pictures"),
    ],
)
def test_an_upload_mistake_comes_back_on_the_character_page(
    client: TestClient, author: tuple, files: list, expected: str
) -> None:
    _, token, cast = author
    response = client.post(
        f"/ui/characters/{cast['mia']}/references",
        data={"csrf_token": token},
        files=files,
        follow_redirects=False,
    )
    assert response.status_code in (415, 422)
    page = response.text
    assert "<h1>Mia</h1>" in page
    error = re.search(r'<p class="error" id="files-error" role="alert">([^<]+)</p>', page)
    assert error and expected.lower() in error.group(1).lower()
    assert 'alt="Image 0 — Mia"' in page and 'alt="Image 1 — Mia"' in page


def test_drawing_a_scene_with_her_references_ticks_her_and_shows_her_pictures(
    client: TestClient, author: tuple
) -> None:
    _, _, cast = author
    character_page = client.get(f"/ui/characters/{cast['mia']}").text
    link = re.search(r'href="(/ui/scene\?[^"]+)">Draw a scene with Mia’s references', character_page)
    assert link, "the character page has no scene link"
    page = client.get(link.group(1).replace("&amp;", "&")).text
    assert re.search(rf'value="{cast["mia"]}"\s+checked', page), "Mia is not ticked"
    assert not re.search(rf'value="{cast["otto"]}"\s+checked', page)
    assert page.index('alt="Image 0 — Mia"') < page.index('alt="Image 1 — Mia"')
    assert (
        'aria-label="Move image 1 earlier"' in page and 'aria-label="Remove image 0 from the scene"' in page
    )
    # Picked in the library: Otto's picture brings Otto along.
    picked = client.get("/ui/scene?picked=2+0").text
    assert re.search(rf'value="{cast["otto"]}"\s+checked', picked) and re.search(
        rf'value="{cast["mia"]}"\s+checked', picked
    )


def test_the_reference_strip_is_drawn_by_the_server_in_send_order(client: TestClient, author: tuple) -> None:
    _, _, cast = author
    data = client.get("/ui/api/references", params={"numbers": "2, 0, 99"}).json()
    assert data["numbers"] == [2, 0]
    assert data["characters"] == {"2": [cast["otto"]], "0": [cast["mia"]]}
    html = data["html"]
    assert html.index("image 2") < html.index("image 0")
    assert "Image 99 is not in this library." in html
    assert "#" not in re.sub(r"&#\d+;", "", html), "one notation: 'image 2', never '#2'"


def test_image_detail_shows_whom_and_what_made_it_and_deletes_after_a_confirm(
    client: TestClient, author: tuple
) -> None:
    auth, token, cast = author
    job = client.post(
        "/generate-image", headers=auth, json={"prompt": "Mia and Otto", "characters": ["Mia", "Otto"]}
    )
    number = job.json()["images"][0]["number"]
    detail = client.get(f"/ui/images/{number}").text
    assert f"<h1>Image {number}</h1>" in detail and "generated" in detail
    assert ">Mia</a>, <a" in detail and ">Otto</a>" in detail
    assert job.json()["id"] in detail and "Mia and Otto" in detail
    # Image 0 is Mia's reference: the confirm says so before anything is deleted.
    confirm = client.get("/ui/images/0?confirm=delete").text
    assert "Delete image 0?" in confirm and "It is a reference of Mia" in confirm
    assert client.get("/images/0", headers=auth).status_code == 200
    done = client.post("/ui/images/0/delete", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200 and "Deleted image 0." in done.text
    assert client.get("/images/0", headers=auth).status_code == 404
    assert client.get(f"/characters/{cast['mia']}", headers=auth).json()["reference_images"] == [1]


def test_a_character_is_deleted_from_its_page_after_a_confirm_and_its_pictures_stay(
    client: TestClient, author: tuple
) -> None:
    auth, token, cast = author
    confirm = client.get(f"/ui/characters/{cast['mia']}?confirm=delete").text
    assert "Delete Mia?" in confirm and "the 2 pictures stay in the library" in confirm
    done = client.post(
        f"/ui/characters/{cast['mia']}/delete", data={"csrf_token": token}, follow_redirects=True
    )
    assert done.status_code == 200 and "Deleted Mia." in done.text
    assert client.get(f"/characters/{cast['mia']}", headers=auth).status_code == 404
    assert client.get("/images", headers=auth).json()["total"] == 3
    refused = client.post(f"/ui/characters/{cast['otto']}/delete", data={"csrf_token": "forged"})
    assert refused.status_code == 403
