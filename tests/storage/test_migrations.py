"""Migrations keep every row: a library made by an older version upgrades in place."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from storage.db import alembic_config, open_database


def _library_at(url: str, revision: str) -> None:
    """A database as revision `revision` left it, with a character, a reference and a job."""
    command.upgrade(alembic_config(url), revision)
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("INSERT INTO workspace VALUES (1, 'books', 1, 0, '2026-11-01 00:00:00', NULL)"))
        for cid, name in ((1, "Mia"), (2, "Rex"), (3, "Tom")):
            db.execute(
                text(
                    "INSERT INTO character VALUES (:id, 1, :name, :key, 'looks', NULL,"
                    " '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
                ),
                {"id": cid, "name": name, "key": name.lower()},
            )
        db.execute(
            text(
                "INSERT INTO image (id, workspace_id, number, kind, format, width, height, bytes, sha256,"
                " phash, phash_int, file_key, thumb_key, created_at) VALUES (1, 1, 0, 'upload', 'png',"
                " 8, 8, 10, 'aa', '00', 0, 'f', 't', '2026-11-01 00:00:00')"
            )
        )
        db.execute(text("INSERT INTO character_reference VALUES (1, 1, 0)"))
        # Character 3 is gone, but an old job still names character 5 (deleted before this test).
        db.execute(text("DELETE FROM character WHERE id = 3"))
        named = json.dumps([{"id": 5, "name": "Old"}])
        db.execute(
            text(
                "INSERT INTO generation (id, workspace_id, status, scene, prompt, backend, model, params,"
                " characters, reference_numbers, response_format, image_numbers, attempts, created_at)"
                " VALUES ('gen_1', 1, 'succeeded', 's', 'p', 'draft', 'm', '{}', :named, '[]', 'url',"
                " '[]', 1, '2026-11-01 00:00:00')"
            ),
            {"named": named},
        )
    engine.dispose()


def test_upgrade_keeps_characters_and_references_and_never_reuses_an_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _library_at(url, "0003")
    engine = open_database(url)
    try:
        with engine.begin() as db:
            kept = db.execute(text("SELECT id, name FROM character ORDER BY id")).all()
            assert kept == [(1, "Mia"), (2, "Rex")]
            assert db.execute(text("SELECT * FROM character_reference")).all() == [(1, 1, 0)]
            db.execute(
                text(
                    "INSERT INTO character (workspace_id, name, name_key, description, created_at,"
                    " updated_at) VALUES (1, 'New', 'new', 'd', '2026-11-30 00:00:00', '2026-11-30 00:00:00')"
                )
            )
            new_id = db.execute(text("SELECT id FROM character WHERE name = 'New'")).scalar_one()
            assert db.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        # Above the highest row left (2) and the id an old job still names (5).
        assert new_id == 6
    finally:
        engine.dispose()
