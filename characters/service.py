"""Character service: plain functions over a session, always scoped to one workspace."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from characters.models import Character, CharacterReference
from characters.schemas import CharacterCreate, CharacterRead, CharacterUpdate
from errors import Conflict, InvalidInput, NotFound
from generation.capabilities import MAX_CHARACTER_REFERENCES
from library.models import Image, ImageCharacter
from storage.locks import lock_row, lock_workspace
from storage.timeutil import utcnow


def name_key(name: str) -> str:
    """Names compare without case ("Mia" and "MIA" are the same character)."""
    return name.strip().casefold()


def _flush_or_conflict(session: Session, character: Character) -> None:
    """Flush; a name clash is a 409 naming the existing character as it is spelled ('Mia')."""
    with session.no_autoflush:
        existing = session.exec(
            select(Character.name).where(
                Character.workspace_id == character.workspace_id,
                Character.name_key == character.name_key,
                Character.id != character.id,
            )
        ).first()
    if existing is not None:
        raise Conflict(f"a character named {existing!r} already exists", field="name")
    try:
        session.flush()
    except IntegrityError as exc:
        # A writer that skipped the workspace lock committed the name first; the caller's
        # write_transaction rolls back (on PostgreSQL the transaction is aborted anyway).
        raise Conflict(f"a character named {character.name!r} already exists", field="name") from exc


def create_character(session: Session, workspace_id: int, data: CharacterCreate) -> Character:
    lock_workspace(session, workspace_id)  # the name check below, one writer at once
    character = Character(
        workspace_id=workspace_id,
        name=data.name,
        name_key=name_key(data.name),
        description=data.description,
        style=data.style or None,
    )
    session.add(character)
    _flush_or_conflict(session, character)
    return character


def get_character(session: Session, workspace_id: int, character_id: int) -> Character:
    character = session.get(Character, character_id)
    if character is None or character.workspace_id != workspace_id:
        raise NotFound(f"no character with id {character_id}", field="id")
    return character


def find_character_by_name(session: Session, workspace_id: int, name: str) -> Character:
    stmt = select(Character).where(
        Character.workspace_id == workspace_id, Character.name_key == name_key(name)
    )
    character = session.exec(stmt).first()
    if character is None:
        raise NotFound(f"no character named {name!r}", field="name")
    return character


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_characters(
    session: Session, workspace_id: int, *, q: str | None, limit: int, offset: int
) -> tuple[list[Character], int]:
    where = [Character.workspace_id == workspace_id]
    if q:
        where.append(col(Character.name_key).like(f"%{_escape_like(name_key(q))}%", escape="\\"))
    total = session.exec(select(func.count()).select_from(Character).where(*where)).one()
    stmt = select(Character).where(*where).order_by(Character.name_key).offset(offset).limit(limit)
    return list(session.exec(stmt).all()), total


def update_character(session: Session, character: Character, data: CharacterUpdate) -> Character:
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes:
        lock_workspace(session, character.workspace_id)  # the name check, one writer at once
        character.name = changes["name"]
        character.name_key = name_key(changes["name"])
    if "description" in changes:
        character.description = changes["description"]
    if "style" in changes:
        character.style = changes["style"] or None
    character.updated_at = utcnow()
    session.add(character)
    _flush_or_conflict(session, character)
    return character


def delete_character(session: Session, character: Character) -> None:
    """Delete the character; its images stay in the library (only the links and tags go)."""
    session.exec(delete(CharacterReference).where(col(CharacterReference.character_id) == character.id))
    session.exec(delete(ImageCharacter).where(col(ImageCharacter.character_id) == character.id))
    session.delete(character)
    session.flush()


def reference_numbers(session: Session, character_ids: list[int]) -> dict[int, list[int]]:
    """Each character's reference list as library numbers, in the author's order."""
    result: dict[int, list[int]] = {cid: [] for cid in character_ids}
    if not character_ids:
        return result
    stmt = (
        select(CharacterReference.character_id, Image.number)
        .join(Image, col(Image.id) == CharacterReference.image_id)
        .where(col(CharacterReference.character_id).in_(character_ids))
        .order_by(CharacterReference.character_id, CharacterReference.position)
    )
    for character_id, number in session.exec(stmt):
        result[character_id].append(number)
    return result


def images_by_number(session: Session, workspace_id: int, numbers: list[int], field: str) -> list[Image]:
    """Library images for `numbers`, in that order; an unknown number is a 422 that names it."""
    stmt = select(Image).where(Image.workspace_id == workspace_id, col(Image.number).in_(numbers))
    found = {image.number: image for image in session.exec(stmt)}
    for index, number in enumerate(numbers):
        if number not in found:
            raise InvalidInput(
                f"image {number} is not in this library", field=f"{field}.{index}", code="unknown_image"
            )
    return [found[number] for number in numbers]


def _check_list_length(character: Character, count: int, field: str) -> None:
    if count > MAX_CHARACTER_REFERENCES:
        raise InvalidInput(
            f"{character.name} would have {count} reference images; a character keeps at most "
            f"{MAX_CHARACTER_REFERENCES} (the most any model takes). Remove some first.",
            field=field,
            code="too_many_references",
        )


def set_references(
    session: Session, character: Character, numbers: list[int], *, field: str = "numbers"
) -> None:
    """Replace the character's reference list with these library images, in this order."""
    lock_row(session, Character, character.id)  # type: ignore[arg-type]  # the cap and positions
    _check_list_length(character, len(numbers), field)
    if len(set(numbers)) != len(numbers):
        duplicate = next(n for i, n in enumerate(numbers) if n in numbers[:i])
        raise InvalidInput(f"image {duplicate} is listed twice", field=field)
    images = images_by_number(session, character.workspace_id, numbers, field)
    session.exec(delete(CharacterReference).where(col(CharacterReference.character_id) == character.id))
    for position, image in enumerate(images):
        session.add(CharacterReference(character_id=character.id, image_id=image.id, position=position))  # type: ignore[arg-type]
    character.updated_at = utcnow()
    session.add(character)
    session.flush()


def append_references(
    session: Session, character: Character, image_ids: list[int], *, field: str = "files"
) -> None:
    """Add images to the end of the character's list, skipping ones it already has."""
    lock_row(session, Character, character.id)  # type: ignore[arg-type]  # the cap and positions
    rows = session.exec(
        select(CharacterReference.image_id, CharacterReference.position).where(
            CharacterReference.character_id == character.id
        )
    ).all()
    present = {image_id for image_id, _ in rows}
    _check_list_length(character, len(present | set(image_ids)), field)
    position = max((pos for _, pos in rows), default=-1) + 1
    for image_id in image_ids:
        if image_id in present:
            continue
        session.add(CharacterReference(character_id=character.id, image_id=image_id, position=position))  # type: ignore[arg-type]
        present.add(image_id)
        position += 1
    character.updated_at = utcnow()
    session.add(character)
    session.flush()


def to_read(character: Character, numbers: list[int]) -> CharacterRead:
    return CharacterRead(
        id=character.id,  # type: ignore[arg-type]
        name=character.name,
        description=character.description,
        style=character.style,
        reference_images=numbers,
        created_at=character.created_at,
        updated_at=character.updated_at,
    )


def read_character(session: Session, character: Character) -> CharacterRead:
    return to_read(character, reference_numbers(session, [character.id])[character.id])  # type: ignore[index,list-item]


def referencing_image(session: Session, workspace_id: int, image_id: int) -> list[dict[str, Any]]:
    """Characters that have the image in their reference list (what deleting it changes)."""
    rows = session.exec(
        select(Character.id, Character.name)
        .join(CharacterReference, CharacterReference.character_id == Character.id)  # type: ignore[arg-type]
        .where(CharacterReference.image_id == image_id, Character.workspace_id == workspace_id)
        .order_by(Character.name_key)
    ).all()
    return [{"id": cid, "name": name} for cid, name in rows]


def names_by_id(session: Session, workspace_id: int, ids: set[int]) -> dict[int, str]:
    """Names of this workspace's characters among `ids` (others are simply absent)."""
    if not ids:
        return {}
    rows = session.exec(
        select(Character.id, Character.name).where(
            Character.workspace_id == workspace_id, col(Character.id).in_(sorted(ids))
        )
    ).all()
    return {cid: name for cid, name in rows if cid is not None}


def get_by_ref(session: Session, workspace_id: int, ref: int | str) -> Character:
    """A character by id or by name (any case): how requests name characters."""
    if isinstance(ref, int):
        return get_character(session, workspace_id, ref)
    return find_character_by_name(session, workspace_id, ref)
