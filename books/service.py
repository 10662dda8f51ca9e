"""Books and pages: plain functions over a session, always scoped to one workspace.

Writes run in the caller's unit of work (`storage.db.write_transaction`); nothing here
commits, so a manuscript's pages, a reorder or a delete land together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from books import manuscript
from books.models import Book, Page
from books.printing import BLEED_IN, TRIMS, effective_dpi, generate_size, print_px
from books.schemas import (
    BookCreate,
    BookRead,
    BookUpdate,
    CastMember,
    PageCreate,
    PageError,
    PageRead,
    PageUpdate,
    Progress,
)
from characters import service as characters
from characters.models import Character
from config import Settings
from errors import InvalidInput, NotFound, StoryloomError
from generation import jobs
from generation.capabilities import MODELS, resolve_model
from generation.models import Generation, JobStatus
from generation.schemas import CharacterRef
from library import service as library
from library.models import Image
from storage.locks import lock_row
from storage.timeutil import utcnow


def check_look(model: str | None, quality: str, default_model: str) -> None:
    """A book's model and quality must be ones the model takes (422 naming the field)."""
    caps = resolve_model(model or default_model, field="model")
    if quality not in caps.qualities:
        raise InvalidInput(
            f"quality {quality!r} is not offered by {caps.name}; use one of: {', '.join(caps.qualities)}",
            field="quality",
        )


def resolve_characters(
    session: Session, workspace_id: int, refs: Sequence[CharacterRef], field: str
) -> list[int]:
    """Ids for ids-or-names, without repeats; an unknown one is a 404 naming its place."""
    found: list[int] = []
    for index, ref in enumerate(refs):
        try:
            character = characters.get_by_ref(session, workspace_id, ref)
        except NotFound as exc:
            raise NotFound(exc.message, field=f"{field}.{index}", code="unknown_character") from exc
        if character.id not in found:
            found.append(character.id)  # type: ignore[arg-type]
    return found


def check_images(session: Session, workspace_id: int, numbers: Sequence[int], field: str) -> None:
    """Every number must be in this workspace's library (404 naming it), none twice (422)."""
    if len(set(numbers)) != len(numbers):
        duplicate = next(n for i, n in enumerate(numbers) if n in numbers[:i])
        raise InvalidInput(f"image {duplicate} is listed twice", field=field)
    present = set(
        session.exec(
            select(Image.number).where(Image.workspace_id == workspace_id, col(Image.number).in_(numbers))
        ).all()
    )
    for index, number in enumerate(numbers):
        if number not in present:
            raise NotFound(
                f"image {number} is not in this library", field=f"{field}.{index}", code="unknown_image"
            )


# --- books ------------------------------------------------------------------------------------


def create_book(session: Session, workspace_id: int, data: BookCreate, default_model: str) -> Book:
    check_look(data.model, data.quality, default_model)
    check_images(session, workspace_id, data.style_images, "style_images")
    book = Book(
        workspace_id=workspace_id,
        title=data.title,
        trim=data.trim,
        style=data.style or None,
        style_images=list(data.style_images),
        cast=resolve_characters(session, workspace_id, data.cast, "cast"),
        chain=data.chain,
        text_position=data.text_position,
        model=data.model,
        quality=data.quality,
    )
    session.add(book)
    session.flush()
    return book


def get_book(session: Session, workspace_id: int, book_id: int) -> Book:
    book = session.get(Book, book_id)
    if book is None or book.workspace_id != workspace_id:
        raise NotFound(f"no book with id {book_id}", field="id")
    return book


def list_books(session: Session, workspace_id: int, *, limit: int, offset: int) -> tuple[list[Book], int]:
    where = Book.workspace_id == workspace_id
    total = session.exec(select(func.count()).select_from(Book).where(where)).one()
    stmt = select(Book).where(where).order_by(col(Book.created_at).desc(), col(Book.id).desc())
    return list(session.exec(stmt.offset(offset).limit(limit)).all()), total


def update_book(session: Session, book: Book, data: BookUpdate, default_model: str) -> Book:
    changes = data.model_dump(exclude_unset=True)
    check_look(changes.get("model", book.model), changes.get("quality", book.quality), default_model)
    if "style_images" in changes:
        check_images(session, book.workspace_id, changes["style_images"], "style_images")
        book.style_images = list(changes["style_images"])
    if "cast" in changes:
        book.cast = resolve_characters(session, book.workspace_id, data.cast or [], "cast")
    for name in ("title", "trim", "chain", "text_position", "model", "quality"):
        if name in changes:
            setattr(book, name, changes[name])
    if "style" in changes:
        book.style = changes["style"] or None
    book.updated_at = utcnow()
    session.add(book)
    session.flush()
    return book


def delete_book(session: Session, book: Book) -> None:
    """The book and its pages go; library images stay. Page jobs not started yet are called off."""
    _call_off(session, book.workspace_id, select(Generation).where(Generation.book_id == book.id), "book")
    session.exec(delete(Page).where(col(Page.book_id) == book.id))
    session.delete(book)
    session.flush()


def _call_off(session: Session, workspace_id: int, stmt: object, what: str) -> None:
    """Fail the queued (never started) jobs of a deleted book or page: nothing is spent on them."""
    error = StoryloomError(f"the {what} was deleted before this page was drawn", code=f"{what}_deleted")
    for job in session.exec(stmt.where(Generation.status == JobStatus.queued)).all():  # type: ignore[attr-defined]
        if job.workspace_id == workspace_id:
            jobs.mark_failed(job, error, status=410)
            job.waiting_on = None
            session.add(job)


# --- pages ------------------------------------------------------------------------------------


def pages_of(session: Session, book_id: int) -> list[Page]:
    stmt = select(Page).where(Page.book_id == book_id).order_by(col(Page.position), col(Page.id))
    return list(session.exec(stmt).all())


def get_page(session: Session, book: Book, page_id: int) -> Page:
    page = session.get(Page, page_id)
    if page is None or page.book_id != book.id:
        raise NotFound(f"no page with id {page_id} in book {book.id}", field="page_id")
    return page


def _renumber(session: Session, pages: Iterable[Page]) -> None:
    for position, page in enumerate(pages):
        if page.position != position:
            page.position = position
            session.add(page)


def _touch(session: Session, book: Book) -> None:
    book.updated_at = utcnow()
    session.add(book)


def _cast_names(session: Session, book: Book) -> list[tuple[int, str]]:
    rows = {c.id: c.name for c in _characters(session, book.cast)}
    return [(cid, rows[cid]) for cid in book.cast if cid in rows]


def _characters(session: Session, ids: Iterable[int]) -> list[Character]:
    wanted = list(set(ids))
    if not wanted:
        return []
    return list(session.exec(select(Character).where(col(Character.id).in_(wanted))).all())


def add_page(session: Session, book: Book, data: PageCreate) -> Page:
    lock_row(session, Book, book.id)  # type: ignore[arg-type]  # positions follow the page list
    if not data.text and not data.scene:
        raise InvalidInput("a page needs its text or a scene to draw", field="text")
    check_images(session, book.workspace_id, data.reference_images, "reference_images")
    if data.characters is None:
        cast = manuscript.names_in(f"{data.text}\n{data.scene or ''}", _cast_names(session, book))
    else:
        cast = resolve_characters(session, book.workspace_id, data.characters, "characters")
    pages = pages_of(session, book.id)  # type: ignore[arg-type]
    page = Page(
        book_id=book.id,  # type: ignore[arg-type]
        workspace_id=book.workspace_id,
        position=len(pages),
        text=data.text,
        scene=data.scene or None,
        characters=cast,
        reference_images=list(data.reference_images),
    )
    session.add(page)
    session.flush()
    at = len(pages) if data.position is None else min(data.position - 1, len(pages))
    pages.insert(at, page)
    _renumber(session, pages)
    _touch(session, book)
    session.flush()
    return page


def import_manuscript(session: Session, book: Book, text: str, *, replace: bool) -> list[Page]:
    """One page per block, appended (or replacing every page); characters found by cast name."""
    lock_row(session, Book, book.id)  # type: ignore[arg-type]  # positions follow the page list
    blocks = manuscript.split_pages(text)
    names = _cast_names(session, book)
    if replace:
        for page in pages_of(session, book.id):  # type: ignore[arg-type]
            _delete_page_rows(session, book, page)
        start = 0
    else:
        start = len(pages_of(session, book.id))  # type: ignore[arg-type]
    created = []
    for offset, block in enumerate(blocks):
        page = Page(
            book_id=book.id,  # type: ignore[arg-type]
            workspace_id=book.workspace_id,
            position=start + offset,
            text=block,
            characters=manuscript.names_in(block, names),
        )
        session.add(page)
        created.append(page)
    _touch(session, book)
    session.flush()
    return created


def update_page(session: Session, book: Book, page: Page, data: PageUpdate) -> Page:
    changes = data.model_dump(exclude_unset=True)
    if changes.get("position") is not None:  # before any write: the lock comes first
        lock_row(session, Book, book.id)  # type: ignore[arg-type]  # positions follow the page list
    if "text" in changes:
        page.text = changes["text"] or ""
    if "scene" in changes:
        page.scene = changes["scene"] or None
    if "characters" in changes:
        page.characters = resolve_characters(session, book.workspace_id, data.characters or [], "characters")
    if "reference_images" in changes:
        numbers = changes["reference_images"] or []
        check_images(session, book.workspace_id, numbers, "reference_images")
        page.reference_images = list(numbers)
    if "image" in changes:
        choose_image(session, page, changes["image"])
    if not page.text and not page.scene:
        raise InvalidInput("a page needs its text or a scene to draw", field="text")
    page.updated_at = utcnow()
    session.add(page)
    if changes.get("position") is not None:
        pages = [p for p in pages_of(session, book.id) if p.id != page.id]  # type: ignore[arg-type]
        pages.insert(min(changes["position"] - 1, len(pages)), page)
        _renumber(session, pages)
    _touch(session, book)
    session.flush()
    return page


def choose_image(session: Session, page: Page, number: int | None) -> None:
    """One of the page's candidates or any picture of this workspace's library; null clears it."""
    if number is not None and number not in page.candidates:
        check_images(session, page.workspace_id, [number], "image")
    page.image = number


def _delete_page_rows(session: Session, book: Book, page: Page) -> None:
    _call_off(session, book.workspace_id, select(Generation).where(Generation.page_id == page.id), "page")
    session.delete(page)


def delete_page(session: Session, book: Book, page: Page) -> None:
    lock_row(session, Book, book.id)  # type: ignore[arg-type]  # positions follow the page list
    _delete_page_rows(session, book, page)
    session.flush()
    _renumber(session, pages_of(session, book.id))  # type: ignore[arg-type]
    _touch(session, book)
    session.flush()


def set_order(session: Session, book: Book, page_ids: list[int]) -> None:
    """Reorder with one call: every page of the book exactly once, else a 422 naming the id."""
    lock_row(session, Book, book.id)  # type: ignore[arg-type]  # positions follow the page list
    pages = {p.id: p for p in pages_of(session, book.id)}  # type: ignore[arg-type]
    seen: set[int] = set()
    for index, page_id in enumerate(page_ids):
        if page_id not in pages:
            raise InvalidInput(f"page {page_id} is not in this book", field=f"page_ids.{index}")
        if page_id in seen:
            raise InvalidInput(f"page {page_id} is listed twice", field=f"page_ids.{index}")
        seen.add(page_id)
    missing = [page_id for page_id in pages if page_id not in seen]
    if missing:
        raise InvalidInput(
            f"page {missing[0]} is missing: list every page of the book exactly once", field="page_ids"
        )
    _renumber(session, [pages[page_id] for page_id in page_ids])
    _touch(session, book)
    session.flush()


# --- answers ----------------------------------------------------------------------------------


def _page_status(page: Page, job: Generation | None) -> str:
    if job is not None and job.status in (JobStatus.queued, JobStatus.running):
        return str(job.status)
    if job is not None and job.status == JobStatus.failed:
        return "failed"
    return "illustrated" if page.image is not None else "empty"


def page_reads(session: Session, settings: Settings, book: Book, pages: Sequence[Page]) -> list[PageRead]:
    """Every page at once: one query each for their jobs, characters and chosen pictures."""
    job_ids = [p.generation_id for p in pages if p.generation_id]
    found = session.exec(select(Generation).where(col(Generation.id).in_(job_ids))).all() if job_ids else []
    by_job = {job.id: job for job in found}
    names = {c.id: c.name for c in _characters(session, (cid for p in pages for cid in p.characters))}
    chosen = [p.image for p in pages if p.image is not None]
    images = (
        session.exec(
            select(Image).where(Image.workspace_id == book.workspace_id, col(Image.number).in_(chosen))
        ).all()
        if chosen
        else []
    )
    by_number = {image.number: image for image in images}
    reads = []
    for page in pages:
        job = by_job.get(page.generation_id) if page.generation_id else None
        status = _page_status(page, job)
        image = by_number.get(page.image) if page.image is not None else None
        urls = library.image_to_api(image, settings, characters=[]) if image is not None else None
        error = None
        if status == "failed" and job is not None:
            error = PageError(code=job.error_code or "failed", message=job.error_message or "")
        reads.append(
            PageRead(
                id=page.id,  # type: ignore[arg-type]
                number=page.position + 1,
                text=page.text,
                scene=page.scene,
                characters=[CastMember(id=c, name=names[c]) for c in page.characters if c in names],
                reference_images=page.reference_images,
                image=page.image,
                candidates=page.candidates,
                status=status,  # type: ignore[arg-type]
                generation_id=page.generation_id,
                error=error,
                prompt=job.prompt if job is not None else None,
                effective_dpi=effective_dpi(image.width, image.height, book.trim) if image else None,
                image_url=urls["url"] if urls else None,
                thumbnail_url=urls["thumbnail_url"] if urls else None,
            )
        )
    return reads


def progress_of(pages: Sequence[PageRead]) -> Progress:
    def count(status: str) -> int:
        return sum(1 for p in pages if p.status == status)

    return Progress(
        pages=len(pages),
        illustrated=count("illustrated"),
        queued=count("queued"),
        running=count("running"),
        failed=count("failed"),
    )


def book_read(session: Session, settings: Settings, book: Book, *, with_pages: bool = True) -> BookRead:
    # Read the table directly: a book made before its model's shutdown must still open.
    caps = MODELS.get(book.model or settings.default_image_model) or resolve_model(
        settings.default_image_model
    )
    width, height = TRIMS[book.trim]
    pages = page_reads(session, settings, book, pages_of(session, book.id)) if with_pages else None  # type: ignore[arg-type]
    return BookRead(
        id=book.id,  # type: ignore[arg-type]
        title=book.title,
        trim=book.trim,
        trim_in=[width, height],
        bleed_in=BLEED_IN,
        style=book.style,
        style_images=book.style_images,
        cast=[CastMember(id=cid, name=name) for cid, name in _cast_names(session, book)],
        chain=book.chain,
        text_position=book.text_position,
        model=caps.name,
        quality=book.quality,
        print_px=list(print_px(book.trim)),
        generate_size=generate_size(caps, book.trim),
        pages=pages,
        progress=progress_of(pages) if pages is not None else None,
        created_at=book.created_at,
        updated_at=book.updated_at,
    )
