"""Exports of a book: validate and record a request, build the engine's spec, keep or drop files.

Plain functions over a session and settings (no HTTP, no app): the routes and the runner call
them. Files live in the export blob store under `<workspace>/<export folder>/` (a folder of
`DATA_DIR/exports` or objects in S3, storage/stores.py); the row names them only once they are
in place, and a row whose book has changed since (its fingerprint differs) is out
of date: the API stops serving it and the next export of that book deletes it with its files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from books import service as books
from books.models import Book, Page
from characters.models import Character
from config import Settings
from errors import InvalidInput, NotFound
from exports.archive import picture_name
from exports.models import Export, ExportStatus
from exports.preview import preview_name
from exports.schemas import ExportRead, ExportRequest, ExportWarningRead
from exports.spec import BookSpec, CoverSpec, PageSpec, Picture
from library import service as library
from library.models import Image
from services.signing import signed_url
from storage.db import write_transaction
from storage.files import CHUNK, FileStore

log = logging.getLogger("storyloom.exports")
FILE_NAMES = {"pdf": "interior.pdf", "zip": "book.zip"}
COVER_NAME = "cover.pdf"


def fingerprint(session: Session, book: Book, pages: list[Page]) -> str:
    """A hash of everything an export shows of the book, so any change makes old exports stale."""
    cast = session.exec(select(Character.id, Character.name).where(col(Character.id).in_(book.cast))).all()
    content = {
        "title": book.title,
        "trim": book.trim,
        "text_position": book.text_position,
        "style": book.style,
        "style_images": book.style_images,
        "cast": sorted([list(row) for row in cast]),
        "pages": [[p.id, p.text, p.image] for p in pages],
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _library_number(session: Session, workspace_id: int, number: int, field: str) -> None:
    try:
        library.get_image(session, workspace_id, number)
    except NotFound as exc:
        raise InvalidInput(f"image {number} is not in this workspace's library", field=field) from exc


def create_export(
    session: Session, workspace_id: int, book_id: int, body: ExportRequest
) -> tuple[Export, list[Path]]:
    """Check the request against the book and record a queued export (in the caller's write
    transaction). Also answers the directories of this book's stale exports, whose rows it
    deletes: the caller removes them once the transaction has committed."""
    book = books.get_book(session, workspace_id, book_id)
    pages = books.pages_of(session, book_id)
    if not pages:
        raise InvalidInput(
            "the book has no pages yet; add pages before exporting", field="pages", code="empty_book"
        )
    if body.cover is not None:
        if body.format != "pdf":
            raise InvalidInput("a cover is made with format 'pdf' only", field="cover")
        _library_number(session, workspace_id, body.cover.image, "cover.image")
        if body.cover.back_image is not None:
            _library_number(session, workspace_id, body.cover.back_image, "cover.back_image")
    current = fingerprint(session, book, pages)
    stale = [e for e in exports_of(session, book) if e.fingerprint != current]
    for export in stale:
        session.delete(export)
    export = Export(
        workspace_id=workspace_id,
        book_id=book_id,
        format=body.format,
        profile=body.profile,
        paper=body.paper,
        cover_image=body.cover.image if body.cover else None,
        back_image=body.cover.back_image if body.cover else None,
        fingerprint=current,
        pages=len(pages),
    )
    session.add(export)
    session.flush()
    return export, [_dir_of(e) for e in stale]


def accept_export(
    engine: Engine, store: FileStore, workspace_id: int, book_id: int, body: ExportRequest
) -> int:
    """Record a queued export in its own write transaction, then remove the folders it retired
    (stale exports of this book, and those of deleted books). Answers the new export's id."""
    with Session(engine, expire_on_commit=False) as session:
        with write_transaction(session):
            export, stale = create_export(session, workspace_id, book_id, body)
        old = stale + orphan_dirs(session, store, workspace_id)
    remove_dirs(store, old)
    return export.id  # type: ignore[return-value]


def _dir_of(export: Export) -> Path:
    """The export's folder in the export store: `<workspace>/<folder>`."""
    return Path(str(export.workspace_id)) / export.folder


def folder_of(export: Export) -> Path:
    return _dir_of(export)


def preview_key(export: Export, number: int) -> str:
    """The key of page `number`'s (1-based) preview thumbnail."""
    return f"{_dir_of(export).as_posix()}/{preview_name(number - 1)}"


def remove_dirs(store: FileStore, dirs: list[Path]) -> None:
    """Best effort, after the rows are gone: a folder left behind is found again by `orphan_dirs`."""
    for relative in dirs:
        try:
            store.delete_prefix(relative.as_posix())
        except OSError:
            log.warning("could not remove export files under %s; the next export retries", relative)


def orphan_dirs(session: Session, store: FileStore, workspace_id: int) -> list[Path]:
    """Export folders of this workspace with no row (their book was deleted, rows cascaded)."""
    names = sorted(
        {obj.key.split("/")[1] for obj in store.scan(f"{workspace_id}/") if obj.key.count("/") >= 2}
    )
    if not names:
        return []
    known = set(session.exec(select(Export.folder).where(col(Export.folder).in_(names))).all())
    return [Path(str(workspace_id)) / n for n in names if n not in known]


def exports_of(session: Session, book: Book) -> list[Export]:
    stmt = (
        select(Export)
        .where(Export.book_id == book.id)
        .order_by(col(Export.created_at).desc(), col(Export.id).desc())
    )
    return list(session.exec(stmt).all())


def current_exports(session: Session, book: Book) -> list[Export]:
    current = fingerprint(session, book, books.pages_of(session, book.id))  # type: ignore[arg-type]
    return [e for e in exports_of(session, book) if e.fingerprint == current]


def get_export(session: Session, workspace_id: int, book_id: int, export_id: int) -> tuple[Book, Export]:
    """The export if it still shows the book as it is; an out-of-date one is a 404 saying why."""
    book = books.get_book(session, workspace_id, book_id)
    export = session.get(Export, export_id)
    if export is None or export.book_id != book.id:
        raise NotFound(f"no export with id {export_id} for book {book_id}", field="export_id")
    if export.fingerprint != fingerprint(session, book, books.pages_of(session, book.id)):  # type: ignore[arg-type]
        raise NotFound(
            f"export {export_id} is out of date: the book changed after it was made; export again",
            field="export_id",
            code="export_outdated",
        )
    return book, export


# --- the answer -------------------------------------------------------------------------------


def export_path(book_id: int, export_id: int, what: str = "") -> str:
    return f"/books/{book_id}/exports/{export_id}" + (f"/{what}" if what else "")


def export_to_api(export: Export, settings: Settings) -> ExportRead:
    def url(what: str) -> str:
        path = export_path(export.book_id, export.id, what)  # type: ignore[arg-type]
        ttl = settings.signed_url_ttl_seconds
        return signed_url(settings.public_base_url, settings.signing_key, export.workspace_id, path, ttl)

    done = export.status == ExportStatus.SUCCEEDED
    return ExportRead(
        id=export.id,  # type: ignore[arg-type]
        book_id=export.book_id,
        status=export.status,
        format=export.format,
        profile=export.profile,
        paper=export.paper,
        pages=export.pages,
        bytes=export.bytes,
        url=url("file") if done and export.file_key else None,
        cover_url=url("cover") if done and export.cover_key else None,
        cover_bytes=export.cover_bytes,
        preview_urls=[url(f"preview/{n}") for n in range(1, export.previews + 1)] if done else [],
        warnings=[ExportWarningRead.model_validate(w) for w in export.warnings],
        spine_in=export.spine_in,
        error=export.error,
        status_url=settings.public_base_url + export_path(export.book_id, export.id),  # type: ignore[arg-type]
        created_at=export.created_at,
        finished_at=export.finished_at,
    )


# --- what the engine is given ------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    spec: BookSpec
    manifest: dict[str, object]


def _pictures(session: Session, workspace_id: int, numbers: set[int]) -> dict[int, Image]:
    if not numbers:
        return {}
    rows = session.exec(
        select(Image).where(Image.workspace_id == workspace_id, col(Image.number).in_(sorted(numbers)))
    ).all()
    return {row.number: row for row in rows}


def local_copy(store: FileStore, key: str, folder: Path) -> Path:
    """A path the engine can open: the file itself on a local store, else a copy in `folder`."""
    path = store.local_path(key)
    if path is not None:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / key.replace("/", "_")
    if not copy.exists():
        with store.open(key) as source, copy.open("wb") as target:
            shutil.copyfileobj(source, target, CHUNK)
    return copy


def build_job(session: Session, store: FileStore, export: Export, pictures_dir: Path) -> Job:
    """The engine's spec and the ZIP's manifest, read in one go so rendering needs no session.

    Pictures in a remote store are copied into `pictures_dir` (the export's scratch folder)."""
    book = session.get(Book, export.book_id)
    if book is None:
        raise NotFound("the book was deleted", field="book_id")
    pages = books.pages_of(session, book.id)  # type: ignore[arg-type]
    wanted = {p.image for p in pages if p.image is not None}
    wanted |= {n for n in (export.cover_image, export.back_image) if n is not None}
    images = _pictures(session, book.workspace_id, wanted)

    def picture(number: int | None) -> Picture | None:
        image = images.get(number) if number is not None else None
        if image is None:
            return None
        path = local_copy(store, image.file_key, pictures_dir)
        return Picture(path=path, size=(image.width, image.height), number=image.number)

    specs = tuple(PageSpec(p.position + 1, p.text, picture(p.image)) for p in pages)
    cover = None
    front = picture(export.cover_image)
    if front is not None:
        cover = CoverSpec(front=front, back=picture(export.back_image))
    spec = BookSpec(
        title=book.title,
        trim=book.trim,
        pages=specs,
        text_position=book.text_position,
        profile=export.profile,
        paper=export.paper,
        cover=cover,
    )
    cast = session.exec(select(Character.id, Character.name).where(col(Character.id).in_(book.cast))).all()
    names = dict(cast)
    manifest: dict[str, object] = {
        "title": book.title,
        "trim": book.trim,
        "text_position": book.text_position,
        "style": book.style,
        "style_images": book.style_images,
        "cast": [{"id": cid, "name": names[cid]} for cid in book.cast if cid in names],
        "pages": [
            {
                "number": p.position + 1,
                "text": p.text,
                "scene": p.scene,
                "image": p.image,
                "file": picture_name(p.position + 1, len(pages)) if p.image in images else None,
                "prompt": images[p.image].prompt if p.image in images else None,
                "candidates": p.candidates,
            }
            for p in pages
        ],
    }
    return Job(spec=spec, manifest=manifest)
