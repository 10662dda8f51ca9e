"""Image tags (issue 11, defect 2): a generated picture shows its scene's characters.

The tag is not a reference: the character's list stays as the author made it, but the Image
answers, `GET /images?character_id=` and the composer know whom the picture shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from config import Settings
from storage.db import alembic_config, make_engine
from tests.api.cast import generate
from tests.conftest import make_settings


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, rate_limit_per_minute=0, generations_per_minute=0)


def test_generated_pictures_are_tagged_with_the_scene_cast(
    client: TestClient, auth: dict[str, str], cast: dict[str, int]
) -> None:
    job = generate(client, auth, prompt="Mia and Otto at the pond", characters=["Mia", "Otto"])
    number = job["images"][0]["number"]
    shown = client.get(f"/images/{number}", headers=auth).json()
    assert shown["characters"] == sorted([cast["mia"], cast["otto"]])
    # The tag is not a reference: Otto's list is unchanged, but filters find the scene.
    assert client.get(f"/characters/{cast['otto']}", headers=auth).json()["reference_images"] == [2]
    otto_images = client.get(f"/images?character_id={cast['otto']}", headers=auth).json()
    assert [i["number"] for i in otto_images["items"]] == [number, 2] and otto_images["total"] == 2
    # Deleting a character drops its tags; the picture stays.
    assert client.delete(f"/characters/{cast['otto']}", headers=auth).status_code == 204
    assert client.get(f"/images/{number}", headers=auth).json()["characters"] == [cast["mia"]]


def test_the_migration_tags_scenes_made_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0003")
        connection.execute(
            sa.text(
                "INSERT INTO workspace (id, name, next_image_number, library_version,"
                " created_at) VALUES (1, 'a', 1, 1, '2026-01-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO character (id, workspace_id, name, name_key, description,"
                " created_at, updated_at) VALUES (5, 1, 'Mia', 'mia', 'd', '2026-01-01',"
                " '2026-01-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO generation (id, workspace_id, status, scene, prompt, backend, model, params,"
                " characters, reference_numbers, response_format, image_numbers, attempts, created_at)"
                " VALUES ('g1', 1, 'succeeded', 's', 'p', 'draft', 'm', '{}',"
                ' \'[{"id": 5, "name": "Mia"}, {"id": 9, "name": "Gone"}]\', \'[]\', \'url\', \'[0]\', 1,'
                " '2026-01-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO image (id, workspace_id, number, kind, format, width, height, bytes, sha256,"
                " phash, phash_int, file_key, thumb_key, generation_id, created_at)"
                " VALUES (1, 1, 0, 'generated', 'png', 1, 1, 1, 'x', '0', 0, 'k', 't', 'g1', '2026-01-01')"
            )
        )
        command.upgrade(cfg, "head")
        rows = connection.execute(sa.text("SELECT image_id, character_id FROM image_character")).all()
    assert [tuple(r) for r in rows] == [(1, 5)]
