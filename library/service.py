"""The image library: store (validate, number, file), list, get, delete, similar, and the API shape.

Numbers come from `workspace.next_image_number`, incremented by one UPDATE ... RETURNING
(storage/counters.py) inside the write transaction: racing uploads (threads or processes)
queue on SQLite's write lock and each gets the next number; MAX(number)+1 would hand out a
deleted number again.
All Pillow work and the file writes happen before that transaction opens, so the lock is
held only for a few small statements. Nothing here knows about HTTP: the generation worker
calls `store_image` from a thread with the PNG bytes it got back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from characters.service import append_references, get_character
from config import Settings
from errors import NotFound
from library.models import Image
from library.similarity import SimilarityCache
from library.tags import characters_shown, images_showing, tag_images
from services.signing import signed_url
from storage.counters import bump_library_version, take_image_number
from storage.db import write_transaction
from storage.decode_gate import DecodeGate
from storage.files import FileStore, content_key
from storage.imaging import EXTENSIONS, THUMBNAIL_FORMAT, ProcessedImage, process_image
from storage.locks import lock_file_keys, lock_workspace
from storage.timeutil import iso_utc

KINDS = ("upload", "generated")


@dataclass
class StoredImage:
    image: Image
    duplicate: bool = False
    similar_to: list[int] = field(default_factory=list)


def prepare(
    settings: Settings,
    data: bytes,
    *,
    gate: DecodeGate | None = None,
    name: str = "image",
    field: str = "files",
) -> ProcessedImage:
    """The heavy part of storing (decode, thumbnail, hash): call it outside any transaction.

    With the runtime's `gate`, at most IMAGE_WORKERS of these decode at once (storage/decode_gate.py).
    """

    def admit(cost: int) -> AbstractContextManager[None]:
        return nullcontext() if gate is None else gate.slot(settings.image_wait_seconds, cost)

    return process_image(
        data,
        max_pixels=settings.max_image_pixels,
        thumbnail_size=settings.thumbnail_size,
        max_side=settings.max_image_side,
        max_aspect=settings.max_image_aspect_ratio,
        name=name,
        field=field,
        admit=admit,
    )


def _keys(item: ProcessedImage) -> tuple[str, str]:
    return (
        content_key("originals", item.sha256, EXTENSIONS[item.format]),
        content_key("thumbs", item.sha256, THUMBNAIL_FORMAT),
    )


def _write_files(store: FileStore, item: ProcessedImage, written: set[str]) -> None:
    """Write what is missing, noting in `written` the keys this call created."""
    file_key, thumb_key = _keys(item)
    for key, data in ((file_key, item.data), (thumb_key, item.thumbnail)):
        if not store.exists(key):
            written.add(key)
            store.put(key, data)


def remove_unused_files(session: Session, store: FileStore, keys: Sequence[str]) -> None:
    """Delete each file that no row (in any workspace) names, under the write lock.

    Uploads re-check their files under that same lock before inserting, so a racing upload of
    the same bytes either sees the file gone and writes it again, or has its row in already.
    """
    if not keys:
        return
    with write_transaction(session):
        lock_file_keys(session, keys)
        for key in keys:
            if not _key_in_use(session, key):
                with contextlib.suppress(OSError):
                    store.delete(key)


def _key_in_use(session: Session, key: str) -> bool:
    stmt = select(Image.id).where((Image.file_key == key) | (Image.thumb_key == key)).limit(1)
    return session.exec(stmt).first() is not None


def store_processed(
    session: Session,
    settings: Settings,
    store: FileStore,
    similarity: SimilarityCache,
    workspace_id: int,
    items: Sequence[ProcessedImage],
    *,
    kind: str = "upload",
    generation_id: str | None = None,
    prompt: str | None = None,
    character_id: int | None = None,
    tags: Sequence[int] = (),
    before_commit: Callable[[Session, list[StoredImage]], None] | None = None,
) -> list[StoredImage]:
    """Number and insert already-validated images in ONE write transaction, then commit.

    All or nothing: if any insert fails, no row is kept. Identical bytes already in the
    workspace come back as that image with `duplicate=True` and use no number.
    `tags` are ids of characters (of this workspace) the images show (a scene's cast).
    `before_commit` runs inside that transaction, so a caller's own rows (a finished job)
    appear together with the images or not at all.
    """
    distance = settings.near_duplicate_distance
    index = similarity.get_index(session, workspace_id)
    near = [[n for n, _ in index.neighbours(item.phash_int, distance)] for item in items]
    # Files first, outside the lock (content-addressed). If the rows do not follow (a full
    # disk, any error), the files this call created and no row names are removed again.
    written: set[str] = set()
    try:
        return _store_rows(
            session,
            settings,
            store,
            similarity,
            workspace_id,
            items,
            near,
            written,
            kind=kind,
            generation_id=generation_id,
            prompt=prompt,
            character_id=character_id,
            tags=tags,
            before_commit=before_commit,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            remove_unused_files(session, store, sorted(written))
        raise


def _store_rows(
    session: Session,
    settings: Settings,
    store: FileStore,
    similarity: SimilarityCache,
    workspace_id: int,
    items: Sequence[ProcessedImage],
    near: list[list[int]],
    written: set[str],
    *,
    kind: str,
    generation_id: str | None,
    prompt: str | None,
    character_id: int | None,
    tags: Sequence[int],
    before_commit: Callable[[Session, list[StoredImage]], None] | None,
) -> list[StoredImage]:
    distance = settings.near_duplicate_distance
    for item in items:
        _write_files(store, item, written)

    results: list[StoredImage] = []
    added: list[tuple[int, int]] = []
    first_version: int | None = None
    last_version = 0
    with write_transaction(session):
        # One writer per workspace (the duplicate check and the numbers), and per file (a racing
        # delete of the same bytes in another workspace): SQLite's write lock, on PostgreSQL.
        lock_workspace(session, workspace_id)
        lock_file_keys(session, [key for item in items for key in _keys(item)])
        for item, candidates in zip(items, near, strict=True):
            existing = session.exec(
                select(Image).where(Image.workspace_id == workspace_id, Image.sha256 == item.sha256)
            ).first()
            if existing is not None:
                results.append(StoredImage(existing, duplicate=True))
                continue
            # A delete may have removed a shared file since we wrote it; under the lock, check again.
            _write_files(store, item, written)
            number, last_version = take_image_number(session, workspace_id)
            first_version = last_version if first_version is None else first_version
            file_key, thumb_key = _keys(item)
            image = Image(
                workspace_id=workspace_id,
                number=number,
                kind=kind,
                format=item.format,
                width=item.width,
                height=item.height,
                bytes=item.byte_count,
                sha256=item.sha256,
                phash=item.phash,
                phash_int=item.phash_int,
                file_key=file_key,
                thumb_key=thumb_key,
                generation_id=generation_id,
                prompt=prompt,
            )
            session.add(image)
            session.flush()
            # Near neighbours: the library as it was, plus earlier images of this same batch.
            batch = [n for n, h in added if bin((h ^ item.phash_int) & (2**64 - 1)).count("1") <= distance]
            results.append(StoredImage(image, similar_to=sorted({*candidates, *batch})))
            added.append((image.number, item.phash_int))
        _drop_deleted_neighbours(session, workspace_id, results)
        if character_id is not None:
            character = get_character(session, workspace_id, character_id)
            append_references(session, character, [r.image.id for r in results])  # type: ignore[misc]
        tag_images(session, [r.image.id for r in results], tags)  # type: ignore[misc]
        if before_commit is not None:
            before_commit(session, results)
    if first_version is not None:
        similarity.note_added(session, workspace_id, first_version - 1, last_version, added)
    return results


def _drop_deleted_neighbours(session: Session, workspace_id: int, results: list[StoredImage]) -> None:
    """The index was read before the lock; forget neighbours deleted since."""
    wanted = {n for r in results for n in r.similar_to}
    if not wanted:
        return
    alive = set(
        session.exec(
            select(Image.number).where(Image.workspace_id == workspace_id, col(Image.number).in_(wanted))
        ).all()
    )
    for r in results:
        r.similar_to = [n for n in r.similar_to if n in alive]


def store_image(
    session: Session,
    settings: Settings,
    store: FileStore,
    similarity: SimilarityCache,
    workspace_id: int,
    data: bytes,
    *,
    kind: str = "upload",
    generation_id: str | None = None,
    prompt: str | None = None,
) -> StoredImage:
    """Validate, number and store one image (committed). Safe to call from a worker thread."""
    item = prepare(settings, data, name=f"{kind} image")
    return store_processed(
        session,
        settings,
        store,
        similarity,
        workspace_id,
        [item],
        kind=kind,
        generation_id=generation_id,
        prompt=prompt,
    )[0]


def get_image(session: Session, workspace_id: int, number: int) -> Image:
    image = session.exec(
        select(Image).where(Image.workspace_id == workspace_id, Image.number == number)
    ).first()
    if image is None:
        raise NotFound(f"image {number} is not in this library", field="number")
    return image


def images_by_numbers(session: Session, workspace_id: int, numbers: list[int]) -> dict[int, Image]:
    """The workspace's images among `numbers`, by number; unknown numbers are simply absent."""
    if not numbers:
        return {}
    rows = session.exec(
        select(Image).where(Image.workspace_id == workspace_id, col(Image.number).in_(numbers))
    ).all()
    return {image.number: image for image in rows}


def list_images(
    session: Session,
    similarity: SimilarityCache,
    workspace_id: int,
    *,
    character_id: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Image], int]:
    """Newest first (highest number first), with the total that matches the filters."""
    conditions: list[Any] = [Image.workspace_id == workspace_id]
    if kind is not None:
        conditions.append(Image.kind == kind)
    if character_id is not None:
        get_character(session, workspace_id, character_id)
        conditions.append(col(Image.id).in_(images_showing(character_id)))
    total = similarity.cached_size(session, workspace_id) if len(conditions) == 1 else None
    if total is None:
        total = session.exec(select(func.count()).select_from(Image).where(*conditions)).one()
    rows = session.exec(
        select(Image).where(*conditions).order_by(col(Image.number).desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def delete_image(session: Session, store: FileStore, workspace_id: int, number: int) -> None:
    """Remove an image: its reference links go by FK cascade; its number is never handed out again.

    The row goes first (committed); only then are its files removed, each under a fresh write
    lock and only when no row in any workspace still uses it. Uploads re-check their files
    under that same lock, so neither a failed commit nor a racing upload of the same bytes can
    leave a row without its file.
    """
    with write_transaction(session):
        image = get_image(session, workspace_id, number)
        session.exec(delete(Image).where(col(Image.id) == image.id))  # type: ignore[call-overload]
        bump_library_version(session, workspace_id)
    # Files only after the row is gone, under a fresh write lock (the transaction changes no rows).
    remove_unused_files(session, store, [image.file_key, image.thumb_key])


def similar_images(
    session: Session,
    similarity: SimilarityCache,
    workspace_id: int,
    number: int,
    max_distance: int,
    limit: int = 100,
) -> list[tuple[int, int]]:
    image = get_image(session, workspace_id, number)
    index = similarity.get_index(session, workspace_id)
    return index.neighbours(image.phash_int, max_distance, exclude=number)[:limit]


def image_path(number: int, what: str) -> str:
    return f"/images/{number}/{what}"


def image_to_api(
    image: Image,
    settings: Settings,
    *,
    characters: list[int],
    duplicate: bool = False,
    similar_to: list[int] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The Image object of API.md; `url`/`thumbnail_url` are absolute and signed."""

    def url(what: str) -> str:
        return signed_url(
            settings.public_base_url,
            settings.signing_key,
            image.workspace_id,
            image_path(image.number, what),
            settings.signed_url_ttl_seconds,
            now,
        )

    return {
        "number": image.number,
        "kind": image.kind,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "bytes": image.bytes,
        "sha256": image.sha256,
        "phash": image.phash,
        "url": url("file"),
        "thumbnail_url": url("thumbnail"),
        "characters": characters,
        "generation_id": image.generation_id,
        "prompt": image.prompt,
        "duplicate": duplicate,
        "similar_to": similar_to or [],
        "created_at": iso_utc(image.created_at),
    }


def images_to_api(
    session: Session, settings: Settings, stored: Sequence[StoredImage | Image]
) -> list[dict[str, Any]]:
    """Many images at once: one query for all their character links."""
    items = [s if isinstance(s, StoredImage) else StoredImage(s) for s in stored]
    links = characters_shown(session, [s.image.id for s in items])  # type: ignore[misc]
    return [
        image_to_api(
            s.image,
            settings,
            characters=list(links.get(s.image.id, [])),  # type: ignore[arg-type]
            duplicate=s.duplicate,
            similar_to=s.similar_to,
        )
        for s in items
    ]
