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
