"""Whom a picture shows: a character's references plus the pictures tagged with that character.

A character's reference list is what the author curates (ordered, sent to the model); a tag
only says "this picture shows her" (a generated scene, a book page). Everything that asks
"whom does image 26 show" — the Image answers, `GET /images?character_id=`, the scene
composer, the pages — uses the union, through these functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import union
from sqlmodel import Session, col, select

from characters.models import Character, CharacterReference
from library.models import ImageCharacter


def tag_images(session: Session, image_ids: Iterable[int], character_ids: Iterable[int]) -> None:
    """Tag every image with every character (idempotent), inside the caller's transaction.

    The caller checks that both belong to its workspace; nothing is committed here, so tags
    appear together with the caller's other rows (the generated images, the finished job).
    A character deleted meanwhile (a scene's cast, while the job ran) is skipped, not an error.
    """
    images = sorted(set(image_ids))
    wanted = sorted(set(character_ids))
    if not images or not wanted:
        return
    characters = list(session.exec(select(Character.id).where(col(Character.id).in_(wanted))).all())
    present = set(
        session.exec(
            select(ImageCharacter.image_id, ImageCharacter.character_id).where(
                col(ImageCharacter.image_id).in_(images), col(ImageCharacter.character_id).in_(characters)
            )
        ).all()
    )
    for image_id in images:
        for character_id in characters:
            if (image_id, character_id) not in present:
                session.add(ImageCharacter(image_id=image_id, character_id=character_id))
    session.flush()


def images_showing(character_id: int) -> Any:
    """A SELECT of the ids of the images that show this character (for `Image.id IN (...)`)."""
    return union(
        select(CharacterReference.image_id).where(CharacterReference.character_id == character_id),
        select(ImageCharacter.image_id).where(ImageCharacter.character_id == character_id),
    )


def characters_shown(session: Session, image_ids: list[int]) -> dict[int, list[int]]:
    """Image id -> ids of the characters it shows (references ∪ tags), ascending."""
    result: dict[int, set[int]] = defaultdict(set)
    if not image_ids:
        return {}
    for model in (CharacterReference, ImageCharacter):
        stmt = select(model.image_id, model.character_id).where(col(model.image_id).in_(image_ids))
        for image_id, character_id in session.exec(stmt):
            result[image_id].add(character_id)
    return {image_id: sorted(ids) for image_id, ids in result.items()}
